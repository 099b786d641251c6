"""Questions about the articles themselves: recognised, routed to metadata or the summary, and cited."""

from __future__ import annotations

import pytest

from index.answering.about import about_question, named_article
from index.answering.engine import ABSTAIN_PHRASE
from index.answering.extractive import ExtractiveEngine
from index.indexing.indexer import update_index
from index.retrieval.retriever import Retriever
from index.types import ArticleInfo, Turn
from tests.conftest import write_article, write_small_corpus


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("who wrote this?", "author"),
        ("whos the author of the north korea piece", "author"),
        ("whose summary is this", "author"),
        ("which magazine is this from", "source"),
        ("is this original reporting or a summary of something", "source"),
        ("what's this one called", "title"),
        ("when was the article published", "date"),
        ("what is this article about?", "summary"),
        ("tldr?", "summary"),
        ("Summarize the article", "summary"),
        ("what's the main point of the piece", "summary"),
        ("what do you have on climate finance?", "list"),
        ("any articles about sanctions", "list"),
    ],
)
def test_questions_about_an_article_are_recognised(question, kind):
    about = about_question(question)
    assert about is not None and about.kind == kind


@pytest.mark.parametrize(
    "question",
    ["how many warheads does north korea have", "why did the hanoi summit collapse", "what did china say about the source of the crisis"],
)
def test_questions_about_content_are_not(question):
    assert about_question(question) is None


def info(article_id: str, title: str, **fields: str) -> ArticleInfo:
    return ArticleInfo(article_id, title, "", 1, "", "", "h", **fields)


def test_the_named_article_must_stand_out():
    articles = [info("kenya", "Kenya at the UN General Debate, 2023"), info("japan", "Japan at the UN General Debate, 2024")]
    assert named_article(("kenya",), articles).article_id == "kenya"
    assert named_article(("2024",), articles).article_id == "japan"
    assert named_article(("debat",), articles) is None  # both match equally
    assert named_article(("brazil",), articles) is None


@pytest.fixture
def engine(tmp_path, fake_embedder):
    corpus = write_small_corpus(tmp_path / "corpus")
    _, store = update_index(corpus, tmp_path / "index", fake_embedder)
    yield ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder)
    store.close()


def test_author_source_and_title_come_from_the_front_matter(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    write_article(
        corpus,
        "ports.md",
        "Ports and tariffs",
        "Tariffs on steel rose again this year.\n\nBy Jane Doe",
        author="Jane Doe",
        source="The Harbour Review",
        url="https://example.org/ports",
    )
    _, store = update_index(corpus, tmp_path / "index", fake_embedder)
    try:
        engine = ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder)
        author = engine.ask("who wrote this?")
        assert not author.abstained and "Jane Doe" in author.text and author.text.endswith("[1]")
        [citation] = author.citations
        assert citation.article_id == "ports" and citation.url == "https://example.org/ports"
        text = store.article_text("ports")
        assert text[citation.start : citation.end] == citation.quote
        assert "The Harbour Review" in engine.ask("which magazine is this from").text
        assert "Ports and tariffs" in engine.ask("what's this one called").text
        undated = engine.ask("when was this published?")
        assert undated.abstained and undated.text.startswith(ABSTAIN_PHRASE)
    finally:
        store.close()


def test_in_a_library_the_question_or_the_conversation_names_the_article(engine):
    named = engine.ask("who wrote the carbon tax article?")
    assert not named.abstained and named.citations[0].article_id == "carbon-tax"
    followed = engine.ask("who wrote it?", [Turn("what does the zoning reform allow near train stations?")])
    assert followed.citations and followed.citations[0].article_id == "housing-zoning"
    # Nothing says which of the four articles is meant: the question goes to the passages instead.
    assert engine.answer_about("who wrote this?", about_question("who wrote this?"), ()) is None


def test_what_is_it_about_takes_the_summary_path(engine):
    answer = engine.ask("what is the school meals article about?")
    assert not answer.abstained and answer.citations
    assert {c.article_id for c in answer.citations} == {"school-meals"}


def test_what_do_you_have_on_lists_matching_articles(engine):
    answer = engine.ask("what do you have on rents and zoning?")
    assert not answer.abstained
    assert answer.citations[0].article_id == "housing-zoning"
    assert "“Zoning reform to build more homes” [1]" in answer.text
