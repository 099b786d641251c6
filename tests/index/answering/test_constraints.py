"""A question's constraints: years, numbers, months, speakers; and the name aliases learnt from embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from index.answering.constraints import NameMatcher, question_facts, unmet
from index.retrieval.keywords import NameLexicon, TermWeights
from index.text import has_answer_type

TEXTS = [
    "The 2019 Hanoi summit ended without a deal. Since then North Korea holds about 50 warheads.",
    "The delegate of Japan called for reform of the Security Council, as Japan has long done.",
    "In Nairobi, Kenya hosted the Africa Climate Summit, and Kenya asked for finance.",
    "The North sees China as a buffer, and in the war Moscow bought shells.",
]
LEXICON = NameLexicon(TEXTS)
WEIGHTS = TermWeights(TEXTS)


def exact(name, candidates):
    return name in candidates


def test_facts_of_a_question():
    facts = question_facts("what did japan's prime minister say at the 2025 debate about 30 reforms", LEXICON, WEIGHTS)
    assert facts.years == ("2025",) and facts.numbers == ("30",)
    assert "japan" in facts.names and facts.speakers == ("japan",)
    assert question_facts("what month was the hanoi summit", LEXICON, WEIGHTS).wants_month
    assert question_facts("how many warheads are there", LEXICON, WEIGHTS).wants_number
    assert question_facts("when did moscow start buying shells", LEXICON, WEIGHTS).wants_year


def test_a_year_must_be_in_the_sentence_or_its_article():
    facts = question_facts("what did kenya say in 2023 about climate", LEXICON, WEIGHTS)
    assert (
        unmet(facts, "Kenya hosted the summit.", "Kenya hosted the summit.", "Kenya at the UN General Debate, 2023", LEXICON, exact) == ""
    )
    assert (
        unmet(facts, "Kenya hosted the summit.", "Kenya hosted the summit.", "Kenya at the UN General Debate, 2022", LEXICON, exact)
        == "no 2023"
    )


def test_the_kind_of_answer_asked_for_must_be_there():
    month = question_facts("what month was the hanoi summit", LEXICON, WEIGHTS)
    assert unmet(month, TEXTS[0], TEXTS[0], "", LEXICON, exact) == "no month"
    number = question_facts("how many warheads does pyongyang have", LEXICON, WEIGHTS)
    assert unmet(number, "North Korea holds about 50 warheads.", TEXTS[0], "", LEXICON, exact) == ""
    assert unmet(number, "The summit ended without a deal.", TEXTS[0], "", LEXICON, exact) == "no number"


def test_a_speaker_that_some_title_names_must_be_the_articles():
    question = "what did japan's prime minister say about reform"
    kenya = "Kenya at the UN General Debate, 2023"
    japan = "Japan at the UN General Debate, 2024"
    sentence = "Reform is needed."
    facts = question_facts(question, LEXICON, WEIGHTS, exact, ("japan", "kenya"))
    assert unmet(facts, sentence, sentence, kenya, LEXICON, exact) == "no japan"
    assert unmet(facts, sentence, sentence, japan, LEXICON, exact) == ""
    # Named in the question as the speaker: checked even when no title carries the name.
    facts = question_facts(question, LEXICON, WEIGHTS, exact, ("kenya",))
    assert unmet(facts, sentence, sentence, kenya, LEXICON, exact) == "no japan"
    # A country named in passing must be the article's speaker only when some title names it.
    plain = "what did they say about kenya and reform"
    assert unmet(question_facts(plain, LEXICON, WEIGHTS, exact, ("kenya",)), sentence, sentence, japan, LEXICON, exact) == "no kenya"
    assert unmet(question_facts(plain, LEXICON, WEIGHTS, exact, ("japan",)), sentence, sentence, japan, LEXICON, exact) == ""


def test_names_are_required_only_when_asked():
    question = "what did china do about the buffer"
    sentence = "Moscow bought shells."
    assert unmet(question_facts(question, LEXICON, WEIGHTS), sentence, sentence, "", LEXICON, exact) == ""
    required = question_facts(question, LEXICON, WEIGHTS, require_names=True)
    assert unmet(required, sentence, sentence, "", LEXICON, exact) == "no china"


def test_names_match_through_embedding_aliases():
    vectors = {"beijing": [1.0, 0.0], "china": [0.9, 0.436], "moscow": [0.0, 1.0]}

    def embed(names):
        return np.array([vectors[n] for n in names], dtype=np.float32)

    same = NameMatcher(embed, threshold=0.6)
    assert same("beijing", ["china"]) and not same("beijing", ["moscow"]) and same("moscow", ["moscow"])
    assert not same("beijing", [])


def test_the_lexicon_learns_names_from_capitals_mid_sentence():
    assert {"japan", "kenya", "hanoi", "moscow", "china"} <= LEXICON.names
    assert "summit" not in LEXICON.names and "the" not in LEXICON.names
    assert LEXICON.names_in("what did JAPAN's pm say about hanoi") == ["japan", "hanoi"]


@pytest.mark.parametrize(
    "sentence, amount",
    [
        ("About 50 nuclear warheads.", True),
        ("Moscow funnelled billions into the regime.", True),
        ("It pledged $2023 million.", True),
        ("North Korean troops fought in Ukraine in 2024.", False),
        ("It is a priority, one that could define his legacy.", False),
        ("The talks of the 2010s failed.", False),
    ],
)
def test_a_year_or_a_pronoun_is_not_an_amount(sentence, amount):
    assert has_answer_type(sentence, "number") is amount


@pytest.mark.parametrize(
    "question, strangers",
    [
        ("what did kim jong un say about the summit", ("kim", "jong")),
        ("what did biden's administration do about the warheads", ("biden",)),
        ("according to zelensky, who bought shells", ("zelensky",)),
        # Descriptions and names the passages use are not strangers.
        ("what did the author say about the summit", ()),
        ("what did japan's delegate say about reform", ()),
        ("what did moscow buy", ()),
    ],
)
def test_a_speaker_no_passage_mentions_cannot_be_met(question, strangers):
    facts = question_facts(question, LEXICON, WEIGHTS, exact, ("japan",))
    assert facts.strangers == strangers
    sentence = TEXTS[0]
    if strangers:
        assert unmet(facts, sentence, sentence, "", LEXICON, exact) == f"no {strangers[0]}"
