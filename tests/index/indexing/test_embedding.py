"""The real model shared by threads: a reindex counting tokens beside a question being embedded."""

from __future__ import annotations

import threading

import numpy as np


def test_counting_tokens_and_embedding_at_once_from_threads(embedder):
    long_text = "word " * 300
    short = ["What did the summit achieve?", "Sanctions relief for a freeze in exchange for inspections at Yongbyon."]
    errors: list[BaseException] = []
    expected = embedder.embed(short)

    def count():
        try:
            for _ in range(400):
                assert embedder.count_tokens([long_text, "two words"] * 20)[:2] == [300, 2]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def embed():
        try:
            for _ in range(150):
                assert np.allclose(embedder.embed(short)[:2], expected, atol=1e-5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=count), threading.Thread(target=embed), threading.Thread(target=embed)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
