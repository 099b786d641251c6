"""`watch_corpus`: a change to the corpus folder is indexed once it settles; nothing happens otherwise."""

from __future__ import annotations

import threading
import time

from index.indexing.watch import corpus_fingerprint, watch_corpus
from index.knowledge import KnowledgeBase
from tests.conftest import extractive_engines, write_article


def test_fingerprint_changes_with_edits_additions_and_removals(small_corpus):
    before = corpus_fingerprint(small_corpus)
    path = write_article(small_corpus, "new.md", "New", "Text about ferries.")
    added = corpus_fingerprint(small_corpus)
    assert added != before and str(path) in added
    path.unlink()
    assert corpus_fingerprint(small_corpus) == before


def test_watching_reindexes_after_a_change_and_stops_when_asked(small_corpus, tmp_path, fake_embedder):
    knowledge = KnowledgeBase(small_corpus, tmp_path / "index", fake_embedder, extractive_engines(fake_embedder))
    knowledge.load()
    reports = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_corpus, args=(small_corpus, knowledge.reindex, reports.append, stop, 0.05, 0.05))
    watcher.start()
    try:
        time.sleep(0.3)
        assert reports == []
        write_article(small_corpus, "ferries.md", "Ferry timetables", "The island ferry now sails hourly in summer.")
        deadline = time.monotonic() + 10
        while not reports and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.added for r in reports] == [["ferries"]]
    finally:
        stop.set()
        watcher.join(5)
    assert not watcher.is_alive()
    assert knowledge.stats()[0] == 5
