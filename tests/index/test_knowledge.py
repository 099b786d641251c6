"""The knowledge base: questions during a reindex are answered from the old or the new index, never an error."""

from __future__ import annotations

import threading

import pytest

from index.knowledge import KnowledgeBase, ReindexRunningError
from tests.conftest import extractive_engines, write_article


def knowledge_over(corpus, tmp_path, embedder) -> KnowledgeBase:
    kb = KnowledgeBase(corpus, tmp_path / "index", embedder, extractive_engines(embedder))
    report = kb.load()
    assert report is not None and len(report.added) == 4
    return kb


def test_load_builds_a_missing_index_then_answers_and_summarises(small_corpus, tmp_path, embedder):
    kb = knowledge_over(small_corpus, tmp_path, embedder)
    assert kb.stats()[0] == 4 and kb.stats()[1] > 0 and kb.stats()[2]
    answer = kb.ask("How are carbon tax revenues returned to households?")
    assert answer.citations and answer.citations[0].article_id == "carbon-tax"
    summary = kb.summarize("carbon-tax", "short")
    assert summary.citations
    with pytest.raises(LookupError):
        kb.summarize("no such article")
    # A second load opens the index without rebuilding it.
    again = KnowledgeBase(small_corpus, tmp_path / "index", embedder, extractive_engines(embedder))
    assert again.load() is None and again.stats()[0] == 4


def test_match_articles_prefers_title_prefixes(small_corpus, tmp_path, fake_embedder):
    kb = knowledge_over(small_corpus, tmp_path, fake_embedder)
    assert [a.article_id for a in kb.match_articles("zon")] == ["housing-zoning"]
    assert [a.article_id for a in kb.match_articles("tax")] == ["carbon-tax"]
    assert len(kb.match_articles("")) == 4
    assert kb.match_articles("nothing like this") == []


def test_an_id_names_its_article_even_when_another_title_reads_the_same(small_corpus, tmp_path, fake_embedder):
    write_article(small_corpus, "news.md", "Carbon-tax", "A note whose title reads like another article's id.")
    kb = KnowledgeBase(small_corpus, tmp_path / "index", fake_embedder, extractive_engines(fake_embedder))
    kb.load()
    assert kb.find_article("carbon-tax").title == "A carbon tax with a dividend"
    assert kb.summarize("carbon-tax", "short").citations[0].article_id == "carbon-tax"


def test_passage_is_the_cited_paragraph(small_corpus, tmp_path, embedder):
    kb = knowledge_over(small_corpus, tmp_path, embedder)
    answer = kb.ask("How many storeys may apartment blocks have near train stations?")
    citation = answer.citations[0]
    paragraph = kb.passage(citation)
    assert citation.quote in paragraph and "\n\n" not in paragraph
    assert paragraph.startswith("The city council voted")


def test_questions_during_reindex_never_fail_and_old_stores_close(small_corpus, tmp_path, embedder):
    kb = knowledge_over(small_corpus, tmp_path, embedder)
    first = kb._snapshot
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask_repeatedly():
        while not stop.is_set():
            try:
                answer = kb.ask("How are carbon tax revenues returned to households?")
                assert answer.citations
            except BaseException as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)
                return

    askers = [threading.Thread(target=ask_repeatedly) for _ in range(3)]
    for thread in askers:
        thread.start()
    for i in range(6):
        write_article(small_corpus, f"extra-{i}.md", f"Extra article {i}", f"Paragraph about topic {i} and ports.")
        kb.reindex()
    stop.set()
    for thread in askers:
        thread.join()
    assert errors == []
    assert kb.stats()[0] == 10
    assert first.retired and first.readers == 0 and first.store._db is None


def test_one_reindex_at_a_time(small_corpus, tmp_path, fake_embedder):
    kb = knowledge_over(small_corpus, tmp_path, fake_embedder)
    started, release = threading.Event(), threading.Event()

    def slow_progress(done, total):
        started.set()
        release.wait(10)

    write_article(small_corpus, "new.md", "New", "A new article about bridges.")
    worker = threading.Thread(target=kb.reindex, args=(slow_progress,))
    worker.start()
    assert started.wait(10)
    with pytest.raises(ReindexRunningError):
        kb.reindex()
    release.set()
    worker.join()
    assert kb.stats()[0] == 5


def test_unchanged_reindex_keeps_the_snapshot(small_corpus, tmp_path, fake_embedder):
    kb = knowledge_over(small_corpus, tmp_path, fake_embedder)
    before = kb._snapshot
    report = kb.reindex()
    assert not report.changed and kb._snapshot is before and not before.retired


def test_reindex_picks_up_an_index_another_process_wrote(small_corpus, tmp_path, fake_embedder):
    from index.indexing.indexer import update_index

    kb = knowledge_over(small_corpus, tmp_path, fake_embedder)
    write_article(small_corpus, "ferries.md", "Ferries", "The island ferry sails hourly.")
    update_index(small_corpus, tmp_path / "index", fake_embedder)[1].close()  # as `policybot add` would
    assert kb.stats()[0] == 4
    report = kb.reindex()
    assert not report.changed and kb.stats()[0] == 5


def test_keyword_index_is_built_at_load_and_reindex_not_at_the_first_question(small_corpus, tmp_path, fake_embedder, monkeypatch):
    import index.retrieval.retriever as retriever_module
    from index.retrieval.keywords import KeywordIndex

    built: list[int] = []  # the chunk count of every keyword index built, in order

    class CountingKeywordIndex(KeywordIndex):
        def __init__(self, chunk_ids, texts):
            super().__init__(chunk_ids, texts)
            built.append(len(chunk_ids))

    monkeypatch.setattr(retriever_module, "KeywordIndex", CountingKeywordIndex)

    def keyword_generation(kb: KnowledgeBase) -> tuple[int, int]:
        with kb.reading() as snapshot:
            retriever = snapshot.engine.retriever
            assert retriever._keyword is not None, "no keyword index before the first question"
            return retriever._keyword_generation, snapshot.store.generation

    knowledge_over(small_corpus, tmp_path, fake_embedder).close()  # writes the index on disk
    built.clear()
    kb = KnowledgeBase(small_corpus, tmp_path / "index", fake_embedder, extractive_engines(fake_embedder))
    assert kb.load() is None  # opened, not built
    assert len(built) == 1 and built[0] == kb.stats()[1]
    loaded_generation, store_generation = keyword_generation(kb)
    assert loaded_generation == store_generation
    kb.ask("How are carbon tax revenues returned to households?")  # the stand-in model may abstain; only the build counts
    assert len(built) == 1  # the question used the index built at load

    write_article(small_corpus, "ferries.md", "Island ferries", "The island ferry sails hourly from the harbour.")
    assert kb.reindex().changed
    assert len(built) == 2 and built[1] == kb.stats()[1] > built[0]
    new_generation, store_generation = keyword_generation(kb)
    assert new_generation == store_generation and new_generation != loaded_generation
    assert kb.search("How often does the island ferry sail?", 1)[0].chunk.article_id == "ferries"
    assert len(built) == 2

    # Commands that never search leave the keyword index to the first search.
    lazy = KnowledgeBase(small_corpus, tmp_path / "index", fake_embedder, extractive_engines(fake_embedder), warm_search=False)
    assert lazy.load() is None and len(built) == 2
    lazy.close()
    kb.close()
