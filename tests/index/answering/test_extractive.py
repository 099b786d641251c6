"""Cited answers: exact quotes, numbering, sentence limits, abstention, follow-ups and hostile input."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from index.answering.engine import ABSTAIN_PHRASE
from index.answering.extractive import AnswerConfig, ExtractiveEngine
from index.indexing.chunking import Span, sentence_spans
from index.indexing.indexer import update_index
from index.retrieval.keywords import TermWeights
from index.retrieval.retriever import Retriever
from index.text import leans_back
from index.types import Answer, Turn
from tests.conftest import ROOT, FakeEmbedder, write_small_corpus

SEED = ROOT / "corpus" / "north-korea-foreign-affairs.md"
SEED_ID = SEED.stem
ANSWER_KEYS = {"question", "answer", "abstained", "citations", "timings_ms"}
CITATION_KEYS = {"n", "article_id", "title", "url", "paragraph", "quote", "start", "end", "score"}
TIMING_KEYS = {"embed", "search", "answer", "total"}
MARKER = re.compile(r"\[(\d+)\]")
HOSTILE = {
    "10000-chars": "why " * 2_500,
    "emoji-only": "🙂🙂",
    "punctuation-only": "???",
    "spanish": "¿Cuántas ojivas nucleares tiene Corea del Norte?",
    "mentions": "@everyone <@123> <@&456> what does the **carbon tax** cost? `rm -rf /` [x](http://y)",
    "sql": "'; DROP TABLE chunks; -- carbon tax",
    "cjk": "日本の税金は？",
    "control-chars": "carbon\x00 tax\u200b dividend\r\n",
}


# ---- helpers -------------------------------------------------------------------------------------


def answer_sentences(answer: Answer) -> list[str]:
    """The sentences a member reads, without the [n] markers and the "…" of skipped ones."""
    text = " ".join(MARKER.sub("", answer.text).replace(" …", "").split())
    return [text[s.start : s.end] for s in sentence_spans(text, Span(0, len(text)))]


def squash(text: str) -> str:
    return " ".join(text.split())


def assert_well_formed(answer: Answer, store, config: AnswerConfig = AnswerConfig()) -> None:
    """Every invariant a cited answer must keep, whatever the question."""
    record = answer.as_dict()
    assert set(record) - {"related"} == ANSWER_KEYS
    json.loads(json.dumps(record, ensure_ascii=False))  # serialisable as it is
    assert record["question"] == answer.question and record["answer"] == answer.text
    assert set(record["timings_ms"]) == TIMING_KEYS
    assert all(v >= 0 for v in record["timings_ms"].values())
    for c in record["citations"] + record.get("related", []):
        assert set(c) == CITATION_KEYS
        assert isinstance(c["n"], int) and isinstance(c["start"], int) and isinstance(c["end"], int)
    if answer.abstained:
        assert answer.text.startswith(ABSTAIN_PHRASE)
        assert answer.citations == () and MARKER.search(answer.text) is None
        for n, r in enumerate(answer.related, start=1):
            assert r.n == n and store.article_text(r.article_id)[r.start : r.end] == r.quote
        return
    assert not answer.text.startswith(ABSTAIN_PHRASE)
    citations = answer.citations
    assert citations, answer.text
    # Numbered 1..m, and the markers appear in that order the first time each is used.
    assert [c.n for c in citations] == list(range(1, len(citations) + 1))
    markers = [int(m) for m in MARKER.findall(answer.text)]
    assert list(dict.fromkeys(markers)) == [c.n for c in citations]
    titles = {info.article_id: info for info in store.articles()}
    for c in citations:
        text = store.article_text(c.article_id)
        assert text is not None and text[c.start : c.end] == c.quote and c.quote.strip()
        assert c.title == titles[c.article_id].title and c.url == titles[c.article_id].url
        assert c.paragraph >= 1
    # Each run of sentences before a marker is quoted by the citation it names, word for word:
    # where the answer skips sentences of the quote, it shows "…".
    for piece, number in zip(MARKER.split(answer.text)[0::2], MARKER.split(answer.text)[1::2]):
        quote = squash(citations[int(number) - 1].quote)
        for run in squash(piece).split(" … "):
            assert run.strip(" …") in quote, (run, quote)
    sentences = answer_sentences(answer)
    assert len(sentences) == len(set(sentences)), "a sentence appears twice"
    # At most max_sentences picks; sentences leaning back ("It…", "For these reasons…") come with their lead-in.
    assert 1 <= sum(not leans_back(s) for s in sentences) <= config.max_sentences
    assert not leans_back(sentences[0]), sentences
    # A quote that leans back follows its lead-in: the quote before it ends right where it starts
    # (its lead-in closes the paragraph or passage before: "… to Pyongyang. [1] Yet, despite …").
    for before, c in zip((None, *citations), citations):
        if leans_back(c.quote):
            assert before is not None and before.article_id == c.article_id, c.quote
            assert before.end <= c.start and not store.article_text(c.article_id)[before.end : c.start].strip(), c.quote


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory):
    """The four-article test corpus indexed with the hashing fake embedder (once per module)."""
    root = tmp_path_factory.mktemp("fake-answers")
    embedder = FakeEmbedder()
    _, store = update_index(write_small_corpus(root / "corpus"), root / "index", embedder)
    yield store, embedder
    store.close()


@pytest.fixture
def fake_engine(fake_index):
    store, embedder = fake_index
    return ExtractiveEngine(Retriever(store, embedder), embedder)


@pytest.fixture(scope="module")
def seed_engine(embedder, tmp_path_factory):
    """The seed article indexed with the real packaged model (once per module)."""
    root = tmp_path_factory.mktemp("seed-answers")
    (root / "corpus").mkdir()
    shutil.copy(SEED, root / "corpus" / SEED.name)
    _, store = update_index(root / "corpus", root / "index", embedder)
    yield ExtractiveEngine(Retriever(store, embedder), embedder)
    store.close()


# ---- structure, with the fake embedder -----------------------------------------------------------


@pytest.mark.parametrize(
    "question, article",
    [
        ("How high is the carbon tax per tonne of emissions?", "carbon-tax"),
        ("free lunches for primary school pupils", "school-meals"),
        ("zoning apartment blocks near train stations", "housing-zoning"),
        ("carbon tax revenue returned to households as an equal dividend", "carbon-tax"),
    ],
)
def test_answers_are_cited_exactly(fake_index, fake_engine, question, article):
    store, _ = fake_index
    answer = fake_engine.ask(question)
    assert not answer.abstained, answer.text
    assert_well_formed(answer, store)
    assert answer.citations[0].article_id == article
    assert answer.question == question


@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_max_sentences_is_the_number_of_picks(fake_index, limit):
    """With every sentence close enough to join, the answer has exactly max_sentences of them."""
    store, embedder = fake_index
    config = AnswerConfig(max_sentences=limit, keep_within=100.0, abstain_below=-100.0)
    engine = ExtractiveEngine(Retriever(store, embedder), embedder, config)
    answer = engine.ask("carbon tax dividend for households and school lunches")
    assert_well_formed(answer, store, config)
    # No sentence of the test corpus leans back, so nothing is added as lead-in.
    assert len(answer_sentences(answer)) == limit


def test_citations_numbered_in_reading_order_across_articles(fake_index):
    store, embedder = fake_index
    config = AnswerConfig(max_sentences=4, keep_within=100.0, abstain_below=-100.0)
    answer = ExtractiveEngine(Retriever(store, embedder), embedder, config).ask("carbon tax and free school lunches")
    assert_well_formed(answer, store, config)
    assert len(answer.citations) >= 2
    assert len({c.article_id for c in answer.citations}) >= 2
    # Within one article, citations follow the article's order.
    for article in {c.article_id for c in answer.citations}:
        starts = [c.start for c in answer.citations if c.article_id == article]
        assert starts == sorted(starts)


def test_answer_json_shape(fake_engine):
    record = fake_engine.ask("What does the carbon tax cost per tonne?").as_dict()
    assert set(record) - {"related"} == ANSWER_KEYS
    assert record["abstained"] is False and isinstance(record["answer"], str)
    assert set(record["timings_ms"]) == TIMING_KEYS
    assert record["timings_ms"]["total"] >= record["timings_ms"]["answer"]
    [first, *_] = record["citations"]
    assert set(first) == CITATION_KEYS
    assert first["article_id"] == "carbon-tax" and first["url"] == "https://example.org/carbon-tax"
    assert first["title"] == "A carbon tax with a dividend" and isinstance(first["score"], float)
    assert "note" not in record


def test_answers_do_not_change_the_question(fake_engine):
    question = "  carbon   tax\tdividend  "
    assert fake_engine.ask(question).question == question


# ---- abstention ----------------------------------------------------------------------------------


def test_off_topic_question_abstains(fake_index, fake_engine):
    store, _ = fake_index
    answer = fake_engine.ask("What is the capital of France?")
    assert answer.abstained and answer.text.startswith(ABSTAIN_PHRASE)
    assert_well_formed(answer, store)


def test_related_reading_only_when_passages_are_close(fake_index):
    store, embedder = fake_index
    question = "carbon tax dividend"
    close = ExtractiveEngine(Retriever(store, embedder), embedder, AnswerConfig(abstain_below=100.0, related_above=0.0))
    answer = close.ask(question)
    assert answer.abstained and answer.citations == ()
    assert 1 <= len(answer.related) <= 3
    assert [r.n for r in answer.related] == list(range(1, len(answer.related) + 1))
    assert answer.related[0].article_id == "carbon-tax"
    assert "related reading" in answer.text
    assert_well_formed(answer, store)
    # The same passages, but none as close as the bar: no related reading, and the text says nothing of it.
    best = max(r.score for r in answer.related)
    far = ExtractiveEngine(Retriever(store, embedder), embedder, AnswerConfig(abstain_below=100.0, related_above=best + 0.01))
    answer = far.ask(question)
    assert answer.abstained and answer.related == ()
    assert "related reading" not in answer.text
    # In between: exactly the passages at or above the bar.
    middle = ExtractiveEngine(Retriever(store, embedder), embedder, AnswerConfig(abstain_below=100.0, related_above=best))
    assert all(r.score >= best for r in middle.ask(question).related) and middle.ask(question).related


@pytest.mark.parametrize("question", ["🙂🙂", "???", "", "   ", "…!? ¿¡", "\u200b"])
def test_questions_without_words_abstain_clearly(fake_index, question):
    store, embedder = fake_index
    embedder = FakeEmbedder()  # a fresh counter
    engine = ExtractiveEngine(Retriever(store, embedder), embedder)
    answer = engine.ask(question)
    assert answer.abstained and answer.text.startswith(ABSTAIN_PHRASE)
    assert "ask a question in words" in answer.text
    assert answer.citations == () and answer.related == ()
    assert set(answer.as_dict()["timings_ms"]) == TIMING_KEYS
    assert embedder.calls == 0  # nothing was embedded or searched


def test_empty_index_abstains(tmp_path):
    embedder = FakeEmbedder()
    (tmp_path / "corpus").mkdir()
    _, store = update_index(tmp_path / "corpus", tmp_path / "index", embedder)
    try:
        assert store.chunk_count == 0
        engine = ExtractiveEngine(Retriever(store, embedder), embedder)
        for question in ("What does the carbon tax cost?", "and what about China?", "🙂"):
            answer = engine.ask(question, [Turn("What is the tax?", "")])
            assert answer.abstained and answer.text.startswith(ABSTAIN_PHRASE)
            assert answer.citations == () and answer.related == ()
    finally:
        store.close()


# ---- hostile input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("question", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_questions_never_crash(fake_index, fake_engine, question):
    store, _ = fake_index
    answer = fake_engine.ask(question)
    assert answer.question == question
    assert_well_formed(answer, store)
    # And as a follow-up, with history that is itself hostile.
    answer = fake_engine.ask(question, [Turn(HOSTILE["mentions"], "…"), Turn("🙂", "")])
    assert_well_formed(answer, store)


def test_very_long_question_is_read_like_its_words(fake_index, fake_engine):
    """Nothing in the engine chokes on size: a 10,000-character repetition is read like the short question."""
    store, _ = fake_index
    short = "carbon tax revenue returned to households as an equal dividend"
    long = " ".join([short] * 160)
    assert len(long) > 10_000
    expected, got = fake_engine.trace(short), fake_engine.trace(long)
    assert_well_formed(got.answer, store)
    assert [h.chunk.chunk_id for h in got.hits] == [h.chunk.chunk_id for h in expected.hits]
    assert got.best_score == pytest.approx(expected.best_score)
    assert not got.answer.abstained and got.answer.citations[0].article_id == "carbon-tax"


# ---- follow-up detection and contextual_query: tests/index/answering/test_follow_ups.py -----------


def test_leans_back():
    for sentence in (
        "It has tested missiles.",
        "This matters.",
        "However, nothing changed.",
        "For these reasons, the talks failed.",
        "- They agreed.",
        "## Its arsenal grew.",
    ):
        assert leans_back(sentence), sentence
    for sentence in ("Italy voted.", "Thistles grow.", "North Korea tested missiles.", "The deal failed.", ""):
        assert not leans_back(sentence), sentence


# ---- quality, with the real model ------------------------------------------------------------------


@pytest.mark.slow
def test_how_many_warheads(seed_engine):
    answer = seed_engine.ask("How many nuclear warheads does North Korea have?")
    assert_well_formed(answer, seed_engine.retriever.store)
    assert not answer.abstained and "50" in answer.text
    cited = [c for c in answer.citations if "50" in c.quote]
    assert cited and cited[0].article_id == SEED_ID and cited[0].paragraph == 4
    assert f"[{cited[0].n}]" in answer.text
    assert cited[0].url == "https://www.europesays.com/2229145"


@pytest.mark.slow
def test_what_was_the_small_deal(seed_engine):
    answer = seed_engine.ask("What was the small deal?")
    assert_well_formed(answer, seed_engine.retriever.store)
    assert not answer.abstained
    assert any(c.paragraph == 2 and "small deal" in c.quote for c in answer.citations)
    assert "dismantle key nuclear facilities" in answer.text


@pytest.mark.slow
def test_off_topic_question_abstains_with_the_real_model(seed_engine):
    answer = seed_engine.ask("What is the capital of France?")
    assert answer.abstained and answer.text.startswith(ABSTAIN_PHRASE)
    assert answer.citations == ()
    assert_well_formed(answer, seed_engine.retriever.store)


@pytest.mark.slow
def test_follow_up_is_answered_about_its_own_subject(seed_engine):
    first = seed_engine.ask("What did Russia buy from North Korea?")
    assert not first.abstained and "ammunition" in first.text
    history = [Turn(first.question, first.text)]
    answer = seed_engine.ask("And what about China?", history)
    assert_well_formed(answer, seed_engine.retriever.store)
    assert not answer.abstained
    assert "buffer" in answer.text and "China" in answer.text
    # The answer leads with China, not with a repeat of the Russia answer.
    assert "China" in answer_sentences(answer)[0]
    assert "ammunition" not in answer.text


@pytest.mark.slow
def test_follow_up_with_a_pronoun_keeps_the_subject(seed_engine):
    history = [Turn("What was the small deal discussed in Hanoi?")]
    answer = seed_engine.ask("Why did it fall short?", history)
    assert not answer.abstained and "denuclearization" in answer.text
    assert_well_formed(answer, seed_engine.retriever.store)


@pytest.mark.slow
def test_answers_never_start_from_a_dangling_pronoun(seed_engine):
    """ "This willingness…" follows "Yet, despite its growing strength…", which opens paragraph 5 and
    follows "In this context…", the end of paragraph 4: all three are quoted, across the paragraph break."""
    answer = seed_engine.ask("Is the economic relationship with Russia sustainable?")
    assert_well_formed(answer, seed_engine.retriever.store)
    assert "This willingness" in answer.text
    assert answer.text.index("In this context") < answer.text.index("Yet, despite") < answer.text.index("This willingness")
    assert [c.paragraph for c in answer.citations if "In this context" in c.quote or "Yet, despite" in c.quote] == [4, 5]


def test_a_sentence_whose_lead_in_was_not_retrieved_is_never_quoted(tmp_path, fake_embedder):
    """ "However, …" opening a paragraph leans on the paragraph before: without that passage it dangles."""
    from index.indexing.chunking import paragraph_spans
    from tests.conftest import write_article

    lead = (
        "The harbour board met in March after a winter of storms. It raised pilotage fees by a third to pay "
        "for two new tugs and a radar station at the mouth of the river."
    )
    leaning = "However, the shipping lines refused to pay the higher pilotage fees and moved their calls."
    other = "The shipping lines said the pilotage fees were already the highest on the whole coast."
    corpus = tmp_path / "corpus"
    write_article(corpus, "fees.md", "Pilotage fees", f"{lead}\n\n{leaning} {other}\n")
    _, store = update_index(corpus, tmp_path / "index", fake_embedder)
    try:
        engine = ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder, AnswerConfig(abstain_below=-100.0))
        second = paragraph_spans(store.article_text("fees"))[1]
        hits = [h for h in engine.retriever.search("shipping lines pilotage fees", 5) if h.chunk.start == second.start]
        assert hits  # only the second paragraph's passage: the lead-in is not among them
        answer = engine.answer_from_hits("Did the shipping lines pay the fees?", "shipping lines pay the higher pilotage fees", hits)
        assert not answer.abstained and not leans_back(answer_sentences(answer)[0]), answer.text
        assert all(not leans_back(c.quote) for c in answer.citations) and "However" not in answer.text
        # With the passage before it, the sentence is quoted after its lead-in (and that one's).
        everything = engine.retriever.search("shipping lines pilotage fees", 5)
        answer = engine.answer_from_hits("Did the shipping lines pay the fees?", "However, the shipping lines refused to pay", everything)
        assert "However" in answer.text and not leans_back(answer_sentences(answer)[0]), answer.text
        assert answer.text.index("The harbour board met") < answer.text.index("It raised") < answer.text.index("However")
        assert [c.paragraph for c in answer.citations] == [1, 2]
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize(
    "question, opening",
    [
        ("What did Russia buy from North Korea?", "ammunition"),
        ("is china still nk's ally or nah", "China"),
    ],
)
def test_the_best_sentence_opens_the_answer(seed_engine, question, opening):
    answer = seed_engine.ask(question)
    assert_well_formed(answer, seed_engine.retriever.store)
    assert opening in answer_sentences(answer)[0]


def test_a_lead_in_within_a_paragraph_is_quoted_with_its_sentence(seed_engine):
    """ "It would likely preserve…" is read and quoted with "Foreign Affairs cautions, however, …" before it."""
    answer = seed_engine.ask("Why would a revived deal be risky?")
    assert_well_formed(answer, seed_engine.retriever.store)
    cited = [c for c in answer.citations if "It would likely preserve" in c.quote]
    assert cited and cited[0].quote.startswith("Foreign Affairs cautions, however,") and cited[0].paragraph == 6


@pytest.mark.slow
@pytest.mark.parametrize("name", ["10000-chars", "spanish", "mentions", "emoji-only"])
def test_hostile_questions_with_the_real_model(seed_engine, name):
    question = HOSTILE[name]
    answer = seed_engine.ask(question)
    assert_well_formed(answer, seed_engine.retriever.store)
    if question == HOSTILE["spanish"] and not answer.abstained:
        assert "50" in answer.text  # if it answers at all, it answers right


def test_sentences_are_embedded_once_across_questions(tmp_path, fake_embedder):
    """A second question over the same passages embeds only the question, and answers the same."""
    from index.answering.extractive import ExtractiveEngine
    from index.indexing.indexer import update_index
    from index.retrieval.retriever import Retriever
    from tests.conftest import write_small_corpus

    _, store = update_index(write_small_corpus(tmp_path / "corpus"), tmp_path / "index", fake_embedder)
    engine = ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder)
    first = engine.ask("How is the carbon tax revenue returned to households?")
    before = fake_embedder.embedded_texts
    again = engine.ask("How is the carbon tax revenue returned to households?")
    # The question and every sentence were embedded the first time: nothing is embedded again.
    assert fake_embedder.embedded_texts - before == 0
    assert again.text == first.text and again.citations == first.citations


def test_sentence_cache_is_bounded(tmp_path, fake_embedder):
    from dataclasses import replace

    from index.answering.extractive import AnswerConfig, ExtractiveEngine
    from index.indexing.indexer import update_index
    from index.retrieval.retriever import Retriever
    from tests.conftest import write_small_corpus

    _, store = update_index(write_small_corpus(tmp_path / "corpus"), tmp_path / "index", fake_embedder)
    engine = ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder, replace(AnswerConfig(), sentence_cache_size=3))
    answer = engine.ask("What do farmers face during the drought?")
    assert len(engine._sentence_cache) == 3
    assert not answer.abstained or answer.text


def test_a_new_question_is_embedded_once(tmp_path, fake_embedder):
    """Retrieval and sentence scoring share the question's vector."""
    from index.answering.extractive import ExtractiveEngine
    from index.indexing.indexer import update_index
    from index.retrieval.retriever import Retriever
    from tests.conftest import write_small_corpus

    _, store = update_index(write_small_corpus(tmp_path / "corpus"), tmp_path / "index", fake_embedder)
    engine = ExtractiveEngine(Retriever(store, fake_embedder), fake_embedder)
    seen: list[str] = []
    embed = fake_embedder.embed
    fake_embedder.embed = lambda texts: (seen.extend(texts), embed(texts))[1]
    question = "Which households receive more than they pay under the carbon dividend?"
    engine.ask(question)
    assert seen.count(question) == 1
