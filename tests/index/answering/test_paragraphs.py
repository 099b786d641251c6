"""A citation names the paragraph its quote is in, as a reader counts the page's or file's blocks.

Web pages added through the real add path (the title apart, each paragraph, heading and list is a
block, and short blocks share a passage with the next), plain text written one paragraph a line,
the "Show passages" paragraph, and the language-model path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from index.answering.extractive import AnswerConfig, ExtractiveEngine
from index.answering.llm.client import LLMClient
from index.answering.llm.engine import LLMEngine
from index.answering.llm.prompts import DATA_CLOSE, DATA_OPEN
from index.indexing.chunking import paragraph_spans
from index.indexing.indexer import update_index
from index.ingestion.adding import add_article_file
from index.knowledge import KnowledgeBase
from index.retrieval.retriever import Retriever
from index.types import Citation
from tests.conftest import ROOT, extractive_engines, write_article
from tests.support.openai_server import OpenAIServer, Reply, data_block, numbered_passages

PAGE = """<!doctype html><html><head><title>Harbour fees cut | Valmora Times</title></head><body><article>
<h1>Harbour fees cut</h1>
<p>The port authority of Valmora cut its fees for container ships by a tenth this spring, hoping to
win back the traffic it lost to rival harbours in the north.</p>
<h2>Reactions</h2>
<p>Shipping lines welcomed the cut.</p>
<ul><li>Pilots asked for a pay rise.</li><li>Tug crews asked for new boats.</li></ul>
<p>The city council will review the harbour fees again in the autumn, once the first figures for the
summer season are known to the treasurer.</p>
</article></body></html>"""
# The blocks a reader counts on the page, the title (kept as metadata) apart.
BLOCKS = [
    "The port authority of Valmora cut its fees",
    "## Reactions",
    "Shipping lines welcomed the cut.",
    "- Pilots asked for a pay rise.\n- Tug crews asked for new boats.",
    "The city council will review the harbour fees",
]


@pytest.fixture
def page_engine(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    add_article_file(corpus, "fees.html", PAGE.encode(), [], max_bytes=1 << 20)
    _, store = update_index(corpus, tmp_path / "index", fake_embedder)
    # The fake embedder's cosines run lower than the real model's: answer rather than abstain.
    yield ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder, AnswerConfig(abstain_below=0.2))
    store.close()


def test_an_added_web_page_keeps_one_paragraph_per_block(page_engine):
    text = page_engine.retriever.store.article_text("fees")
    paragraphs = [text[s.start : s.end] for s in paragraph_spans(text)]
    assert len(paragraphs) == len(BLOCKS)
    assert all(p.startswith(block) for p, block in zip(paragraphs, BLOCKS)), paragraphs


@pytest.mark.parametrize(
    "question, paragraph, quote",
    [
        # Short blocks (a heading, a one-line paragraph, a list) share a passage with what follows:
        # the citation still names the block the quoted sentence is in.
        ("Did shipping lines welcome the cut?", 3, "Shipping lines welcomed the cut."),
        ("What did tug crews ask for?", 4, "Tug crews asked for new boats."),
        ("What will the city council review in the autumn?", 5, "The city council will review"),
        ("Why did the port authority cut its fees for container ships?", 1, "The port authority of Valmora"),
    ],
)
def test_a_citation_names_the_block_its_quote_is_in(page_engine, question, paragraph, quote):
    answer = page_engine.ask(question)
    text = page_engine.retriever.store.article_text("fees")
    cited = [c for c in answer.citations if quote in c.quote]
    assert cited, answer
    assert cited[0].paragraph == paragraph and text[cited[0].start : cited[0].end] == cited[0].quote
    # A heading is read with the sentence after it but never quoted as if it were one.
    assert "Reactions" not in answer.text and "##" not in cited[0].quote


SEED = ROOT / "corpus" / "north-korea-foreign-affairs.md"


def seed_body() -> str:
    """The seed article's text as given: one paragraph a line, single newlines, a closing byline."""
    return SEED.read_text(encoding="utf-8").split("---\n", 2)[2]


def test_a_text_file_written_one_paragraph_a_line_is_cited_by_its_lines(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    added = add_article_file(corpus, "north-korea.txt", seed_body().encode(), [], max_bytes=1 << 20)
    article = added.article
    assert article.title == "North korea" and article.author == "Vugar Khalilov"
    lines = seed_body().split("\n")[:-1]  # the byline is metadata
    assert [article.text[s.start : s.end] for s in paragraph_spans(article.text)] == lines
    _, store = update_index(corpus, tmp_path / "index", fake_embedder)
    try:
        engine = ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder, AnswerConfig(abstain_below=0.2))
        answer = engine.ask("What is the estimated arsenal of nuclear warheads?")
        cited = [c for c in answer.citations if "50 nuclear warheads" in c.quote]
        assert cited and cited[0].paragraph == 4, answer
        assert store.article_text("north-korea")[cited[0].start : cited[0].end] == cited[0].quote
    finally:
        store.close()


def test_show_passages_gives_the_cited_line_not_the_whole_text(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.md").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    kb = KnowledgeBase(corpus, tmp_path / "index", fake_embedder, extractive_engines(fake_embedder))
    kb.load()
    quote = "an estimated arsenal of about 50 nuclear warheads"
    start = seed_body().index(quote)  # the article's text is the body without its byline: same offsets
    citation = Citation(1, "seed", "T", "", 4, quote, start, start + len(quote), 1.0)
    assert kb.passage(citation) == seed_body().split("\n")[3]


def cite_reservoirs(body: dict) -> Reply:
    """The model's reply, citing the passage that holds the reservoir sentence under its prompt number."""
    _, block, _ = data_block(body["messages"][-1]["content"], DATA_OPEN, DATA_CLOSE)
    n = next(n for n, text in numbered_passages(block).items() if "Reservoirs stand" in text)
    return Reply(f"Reservoirs are at a third of their capacity. [{n}]")


def test_the_language_model_path_cites_the_paragraph_of_its_quote(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    # The heading is one short paragraph: it shares a passage with the paragraph after it.
    write_article(
        corpus,
        "water.md",
        "Water rationing",
        """
        The regional water board announced rationing after the third dry winter in a row, and farmers
        face cuts to their irrigation allocations for the whole of the coming season.

        ## Reservoirs

        Reservoirs stand at a third of their capacity. The board will publish weekly reservoir levels.
        """,
    )
    _, store = update_index(corpus, tmp_path / "index", fake_embedder)
    chunk = next(h.chunk for h in Retriever(store, fake_embedder).search("reservoir levels", 5) if "## Reservoirs" in h.chunk.text)
    assert chunk.paragraph == 2  # the passage starts at the heading
    try:
        with OpenAIServer() as server:
            server.responder = cite_reservoirs
            engine = ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder, AnswerConfig(abstain_below=0.2))
            answer = LLMEngine(engine, LLMClient(server.base_url, "test-model", None, timeout=5.0)).ask("How full are the reservoirs?")
        assert answer.note == "" and [c.paragraph for c in answer.citations] == [3], answer
        assert answer.citations[0].quote.startswith("Reservoirs stand at a third")
    finally:
        store.close()


def test_the_seed_in_the_corpus_is_the_shared_seed_byte_for_byte():
    shared = ROOT.parent / "shared" / "seed" / "north-korea-foreign-affairs.txt"
    if not shared.is_file():
        pytest.skip("no ../shared/seed on this machine")
    assert seed_body().encode("utf-8") == shared.read_bytes()
    assert Path(SEED).read_bytes().endswith(shared.read_bytes())
