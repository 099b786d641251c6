"""Reindex when files in the corpus folder change (`policybot watch`), by polling: no extra dependency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from index.indexing.corpus import corpus_files
from index.types import IndexReport

Fingerprint = dict[str, tuple[int, int]]


def corpus_fingerprint(corpus_dir: Path) -> Fingerprint:
    """Each article file's modification time and size: any edit, addition or removal changes it."""
    found: Fingerprint = {}
    for path in corpus_files(corpus_dir):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed between listing and stat
            continue
        found[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return found


def watch_corpus(
    corpus_dir: Path,
    reindex: Callable[[], IndexReport],
    on_report: Callable[[IndexReport], None],
    stop: threading.Event,
    interval: float = 2.0,
    settle: float = 1.0,
) -> None:
    """Until `stop` is set: when the corpus changes and then stays still for `settle` seconds, reindex."""
    last = corpus_fingerprint(corpus_dir)
    while not stop.wait(interval):
        current = corpus_fingerprint(corpus_dir)
        if current == last:
            continue
        # A file being copied or saved changes again within moments; index it once it is whole.
        while not stop.wait(settle):
            settled = corpus_fingerprint(corpus_dir)
            if settled == current:
                break
            current = settled
        if stop.is_set():
            return
        on_report(reindex())
        last = current
