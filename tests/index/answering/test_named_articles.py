"""Questions that name their source: the articles a title or author points at are preferred, or required."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from index.answering.constraints import ALIAS_ABOVE, QuestionFacts, name_phrases, named_articles, question_facts
from index.answering.extractive import ExtractiveEngine
from index.indexing.indexer import update_index
from index.retrieval.keywords import NameLexicon, TermWeights
from index.retrieval.retriever import Retriever
from index.types import ArticleInfo

TITLES = {
    "kor-2024": "South Korea at the UN General Debate, 2024",
    "prk-2024": "North Korea at the UN General Debate, 2024",
    "chn-2023": "China at the UN General Debate, 2023",
    "chn-2024": "China at the UN General Debate, 2024",
    "cub-2024": "Cuba at the UN General Debate, 2024",
}
ARTICLES = [ArticleInfo(article_id, title, "", 1, "", "", "") for article_id, title in TITLES.items()]
CARRIED = [(info, tuple(name_phrases(info.title))) for info in ARTICLES]
# Name similarities as a model would give them: only "beijing" is close enough to alias a title's name.
CLOSE = {("beijing", "china"): 0.76, ("taiwan", "china"): 0.73}


def similarities(name: str, candidates: Sequence[str]) -> dict[str, float]:
    return {c: CLOSE.get((name, c), 0.0) for c in candidates if CLOSE.get((name, c), 0.0) >= 0.6}


def facts(phrases: tuple[str, ...], years: tuple[str, ...] = (), sources: tuple[str, ...] = ()) -> QuestionFacts:
    names = tuple(word for phrase in phrases for word in phrase.split())
    return QuestionFacts(years=years, names=names, phrases=phrases, sources=sources, checked_names=names)


def test_an_exact_name_beats_a_close_one():
    assert named_articles(facts(("south korea",)), CARRIED, similarities).article_ids == ("kor-2024",)
    # A word of a title's name matches every title carrying it.
    assert set(named_articles(facts(("korea",)), CARRIED, similarities).article_ids) == {"kor-2024", "prk-2024"}


def test_aliases_come_from_similarity_above_the_bar():
    assert CLOSE[("beijing", "china")] >= ALIAS_ABOVE > CLOSE[("taiwan", "china")]
    assert set(named_articles(facts(("beijing",)), CARRIED, similarities).article_ids) == {"chn-2023", "chn-2024"}
    # Taiwan has no article: China's are not taken for it.
    assert named_articles(facts(("taiwan",)), CARRIED, similarities).article_ids == ()


def test_a_year_narrows_the_named_articles_when_one_matches():
    assert named_articles(facts(("china",), years=("2023",)), CARRIED, similarities).article_ids == ("chn-2023",)
    # No article of that year: the named ones stay (the year check on sentences then decides).
    assert len(named_articles(facts(("china",), years=("2019",)), CARRIED, similarities).article_ids) == 2


def test_a_name_most_titles_carry_points_nowhere():
    assert named_articles(facts(("un general debate",)), CARRIED, similarities).article_ids == ()


def test_only_a_named_source_restricts():
    assert not named_articles(facts(("china",)), CARRIED, similarities).only
    assert named_articles(facts(("china",), sources=("china",)), CARRIED, similarities).only


@pytest.mark.parametrize(
    "question, source",
    [
        ("in china's 2024 speech what did they say about cuba", True),
        ("what did china say about the blockade", True),
        ("according to china, what should end", True),
        ("china's un statement on trade", True),
        ("what about china and the blockade", False),
    ],
)
def test_sources_are_read_from_how_the_question_is_put(question, source):
    lexicon = NameLexicon(["They met China and Cuba. Then Kenya spoke."])
    found = question_facts(question, lexicon, TermWeights(["They met China and Cuba.", "Then Kenya spoke."]))
    assert ("china" in found.sources) is source
    assert "china" in found.phrases


def test_adjacent_names_form_one_phrase():
    lexicon = NameLexicon(["Then South Korea and North Korea met in Hanoi."])
    found = question_facts("did south korea meet north korea's leader", lexicon, TermWeights(["x"]))
    assert found.phrases == ("south korea", "north korea")


SPEECHES = {
    "chn-2024.md": (
        "China at the UN General Debate, 2024",
        "China calls on the United States to completely lift its blockade against Cuba. "
        "China will keep supporting the development of the Global South through trade and investment.",
    ),
    "cub-2024.md": (
        "Cuba at the UN General Debate, 2024",
        "The blockade against Cuba has cost our people billions of dollars in lost trade. "
        "The blockade is the main obstacle to the development of Cuba and must be lifted.",
    ),
    "ken-2023.md": (
        "Kenya at the UN General Debate, 2023",
        "Kenya is ready to lead a multinational security support mission to Haiti. "
        "Climate finance for Africa must reach the scale the crisis demands.",
    ),
}


@pytest.fixture(scope="module")
def library(embedder, tmp_path_factory):
    """Three short speeches whose titles name their speaker, indexed with the real model."""
    root = tmp_path_factory.mktemp("named")
    (root / "corpus").mkdir()
    for name, (title, text) in SPEECHES.items():
        (root / "corpus" / name).write_text(f'---\ntitle: "{title}"\n---\n\n{text}\n', encoding="utf-8")
    _, store = update_index(root / "corpus", root / "index", embedder)
    yield ExtractiveEngine(Retriever(store, embedder), embedder)
    store.close()


def test_search_within_keeps_to_the_named_articles(library):
    vector = library.embedder.embed(["what about the blockade"])[0]
    hits = library.retriever.search_within("what about the blockade", vector, ["ken-2023"], 5)
    assert hits and {h.chunk.article_id for h in hits} == {"ken-2023"}
    assert library.retriever.search_within("blockade", vector, ["no-such-article"], 5) == []


def test_a_question_naming_its_source_is_answered_from_it(library):
    answer = library.ask("in china's 2024 speech, what did they want washington to do about cuba")
    assert not answer.abstained
    assert {c.article_id for c in answer.citations} == {"chn-2024"}
    assert "lift its blockade" in answer.text


def test_a_named_source_that_does_not_say_abstains(library):
    # Cuba's speech answers this best, but the question asks what Kenya said.
    answer = library.ask("what did kenya say about the blockade against cuba")
    assert answer.abstained or {c.article_id for c in answer.citations} == {"ken-2023"}


def test_a_question_about_a_named_speech_finds_it(library):
    answer = library.ask("what's the kenya speech mostly about?")
    assert not answer.abstained
    assert {c.article_id for c in answer.citations} == {"ken-2023"}
    dated = library.ask("which year is the kenya speech about haiti from?")
    assert {c.article_id for c in dated.citations} == {"ken-2023"}


def test_a_stranger_named_as_the_source_abstains_unless_an_article_is_named(library):
    assert library.ask("what did kim jong un say about the blockade").abstained
    # Naming Cuba's speech too makes the stranger its speaker, whom a speech rarely names.
    answer = library.ask("what did cuba's speech say about the blockade, per bruno rodriguez")
    assert not answer.abstained and {c.article_id for c in answer.citations} == {"cub-2024"}
