"""Extractive summaries: lengths, article order, exact quotes and paragraph numbers."""

from __future__ import annotations

import re

import pytest

from index.answering.summary import (
    SUMMARY_SENTENCES,
    article_sentences,
    informativeness,
    summarize_text,
)
from index.indexing.chunking import paragraph_spans
from index.indexing.corpus import read_article
from index.indexing.indexer import IndexOptions, chunk_article
from index.text import leans_back
from tests.conftest import ROOT, SMALL_CORPUS, FakeEmbedder, write_article

SEED = ROOT / "corpus" / "north-korea-trump-second-term.md"
MARKER = re.compile(r"\[(\d+)\]")

# Twelve paragraphs on distinct subjects, two sentences each, every sentence long enough to be eligible.
TOPICS = [
    ("harbour", "ferries", "cranes"),
    ("orchard", "apples", "frost"),
    ("library", "books", "readers"),
    ("railway", "signals", "tracks"),
    ("hospital", "nurses", "wards"),
    ("airport", "runways", "noise"),
    ("forest", "wildfires", "rangers"),
    ("museum", "paintings", "visitors"),
    ("bakery", "bread", "ovens"),
    ("stadium", "tickets", "supporters"),
    ("vineyard", "grapes", "harvest"),
    ("observatory", "telescopes", "comets"),
]
LONG_TEXT = "\n\n".join(
    f"The {place} council reviewed {a} budgets and {b} schedules for the coming season. "
    f"Local {a} groups asked for more {b} near the {place} before the winter."
    for place, a, b in TOPICS
)


def assert_cited_summary(summary, text: str, article_id: str, expected_count: int) -> None:
    assert not summary.abstained
    citations = summary.citations
    assert len(citations) == expected_count
    assert [c.n for c in citations] == list(range(1, expected_count + 1))
    # The text is the cited sentences in order, each followed by its own marker.
    assert [int(m) for m in MARKER.findall(summary.text)] == [c.n for c in citations]
    starts = [c.start for c in citations]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), "not in article order"
    for previous, c in zip(citations, citations[1:]):
        assert previous.end <= c.start, "overlapping quotes"
    paragraphs = paragraph_spans(text)
    for c in citations:
        assert text[c.start : c.end] == c.quote and c.quote.strip()
        assert c.article_id == article_id
        span = paragraphs[c.paragraph - 1]
        assert span.start <= c.start and c.end <= span.end, (c.paragraph, c.quote)
        assert " ".join(c.quote.split()) in " ".join(summary.text.split()) or c.quote.lstrip().startswith("#")
        assert not leans_back(c.quote), c.quote
    assert set(summary.as_dict()) >= {"question", "answer", "abstained", "citations", "timings_ms"}


@pytest.mark.parametrize("length", ["short", "medium", "long"])
def test_lengths_on_a_long_article(length):
    summary = summarize_text("towns", "Twelve towns", "https://example.org/towns", LONG_TEXT, FakeEmbedder(), length)
    assert_cited_summary(summary, LONG_TEXT, "towns", SUMMARY_SENTENCES[length])
    assert summary.question == "summary of Twelve towns"
    assert all(c.title == "Twelve towns" and c.url == "https://example.org/towns" for c in summary.citations)
    # Spread over the article: never two sentences of one paragraph when there are unused paragraphs.
    assert len({c.paragraph for c in summary.citations}) == SUMMARY_SENTENCES[length]


def test_length_counts():
    assert SUMMARY_SENTENCES == {"short": 3, "medium": 5, "long": 8}


@pytest.mark.parametrize("length, expected", [("short", 3), ("medium", 4), ("long", 4)])
def test_a_short_article_gives_what_it_has(tmp_path, length, expected):
    title, body = SMALL_CORPUS["water-rationing.md"]
    path = write_article(tmp_path, "water-rationing.md", title, body)
    article = read_article(path, tmp_path)
    assert len(article_sentences(article.text)) == 4
    summary = summarize_text(article.article_id, article.title, article.url, article.text, FakeEmbedder(), length)
    assert_cited_summary(summary, article.text, "water-rationing", expected)


def test_summary_paragraphs_match_the_chunks(tmp_path):
    """A summary's paragraph numbers are the ones answers cite for the same text."""
    embedder = FakeEmbedder()
    path = write_article(tmp_path, "towns.md", "Twelve towns", "# A heading\n\n" + LONG_TEXT)
    article = read_article(path, tmp_path)
    chunks = chunk_article(article, embedder, IndexOptions())
    summary = summarize_text(article.article_id, article.title, article.url, article.text, embedder, "long")
    for c in summary.citations:
        containing = [ch for ch in chunks if ch.start <= c.start and c.end <= ch.end]
        assert containing and all(ch.paragraph == c.paragraph for ch in containing), c


def test_invalid_length():
    with pytest.raises(ValueError, match="short, medium, long"):
        summarize_text("a", "A", "", LONG_TEXT, FakeEmbedder(), "tiny")


@pytest.mark.parametrize("text", ["", "   \n\n  ", "🙂🙂\n\n???"])
def test_an_article_without_words(text):
    embedder = FakeEmbedder()
    summary = summarize_text("empty", "Empty", "", text, embedder)
    assert summary.abstained and summary.citations == ()
    assert "no text" in summary.text
    assert embedder.calls == 0


def test_only_short_sentences_are_still_summarised():
    text = "Taxes rose.\n\nRents fell.\n\nSchools opened."
    summary = summarize_text("s", "Short", "", text, FakeEmbedder(), "short")
    assert_cited_summary(summary, text, "s", 3)


def test_sentences_leaning_back_are_joined():
    text = "North Korea tested a missile in March. It flew far.\n\nThe talks failed. However, both sides met again."
    sentences = article_sentences(text)
    assert [s.text for s in sentences] == [
        "North Korea tested a missile in March. It flew far.",
        "The talks failed. However, both sides met again.",
    ]
    assert [s.paragraph for s in sentences] == [1, 2]
    assert all(text[s.start : s.end] == s.text for s in sentences)
    # Never across a paragraph break.
    sentences = article_sentences("The talks failed.\n\nIt rained.")
    assert [s.text for s in sentences] == ["The talks failed.", "It rained."]


def test_informativeness():
    assert informativeness("It is.") < informativeness("The finance ministry proposes a carbon tax on heating oil.")
    assert informativeness("About 50 warheads exist.") > informativeness("About fifty warheads exist.")
    assert informativeness(" ".join(["word"] * 100)) <= 1.2


@pytest.mark.slow
def test_medium_summary_of_the_seed_article(embedder):
    article = read_article(SEED, SEED.parent)
    summary = summarize_text(article.article_id, article.title, article.url, article.text, embedder, "medium")
    assert_cited_summary(summary, article.text, article.article_id, 5)
    lowered = summary.text.lower()
    for needed in ("hanoi", "russia", "50", "small deal"):
        assert needed in lowered, needed
    chunks = chunk_article(article, embedder, IndexOptions())
    for c in summary.citations:
        assert any(ch.start <= c.start and c.end <= ch.end and ch.paragraph == c.paragraph for ch in chunks), c
    assert "By Vugar Khalilov" not in summary.text  # the byline is not summary material


@pytest.mark.slow
def test_seed_summaries_grow_with_length(embedder):
    article = read_article(SEED, SEED.parent)
    short = summarize_text(article.article_id, article.title, article.url, article.text, embedder, "short")
    long = summarize_text(article.article_id, article.title, article.url, article.text, embedder, "long")
    assert_cited_summary(short, article.text, article.article_id, 3)
    assert_cited_summary(long, article.text, article.article_id, 8)
    assert len(short.text) < len(long.text)
