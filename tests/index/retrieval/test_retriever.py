"""The retriever over a real small index: modes, k, and one keyword index however many answers ask at once."""

from __future__ import annotations

import threading

import pytest

import index.retrieval.retriever as retriever_module
from index.indexing.indexer import update_index
from index.retrieval.retriever import Retriever


@pytest.fixture
def store(small_corpus, tmp_path, fake_embedder):
    _, store = update_index(small_corpus, tmp_path / "index", fake_embedder)
    yield store
    store.close()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_every_mode_returns_ranked_hits_that_quote_the_store(store, fake_embedder, mode):
    hits = Retriever(store, fake_embedder, mode).search("carbon tax per tonne", 3)
    assert 1 <= len(hits) <= 3
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    for hit in hits:
        assert store.article_text(hit.chunk.article_id)[hit.chunk.start : hit.chunk.end] == hit.chunk.text


def test_bad_arguments_are_refused(store, fake_embedder):
    with pytest.raises(ValueError, match="RETRIEVAL"):
        Retriever(store, fake_embedder, "fuzzy")
    with pytest.raises(ValueError, match="k must be"):
        Retriever(store, fake_embedder).search("tax", 0)


def test_concurrent_first_questions_build_the_keyword_index_once(store, fake_embedder, monkeypatch):
    built = []
    real = retriever_module.KeywordIndex

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(retriever_module, "KeywordIndex", counting)
    retriever = Retriever(store, fake_embedder)
    start = threading.Barrier(6)

    def ask():
        start.wait()
        retriever.search("carbon tax", 3)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
