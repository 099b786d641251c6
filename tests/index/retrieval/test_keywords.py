"""BM25 and word weights: one tokenisation, stems matched, stopwords ignored, scores aligned with chunk ids."""

from __future__ import annotations

import numpy as np
import pytest

from index.retrieval.keywords import KeywordIndex, TermWeights, keyword_tokens

TEXTS = [
    "North Korea tested new missiles and holds about 50 warheads.",
    "Russia bought North Korean shells and ammunition.",
    "China treats North Korea as a strategic buffer.",
    "The carbon tax rose to 45 dollars per tonne.",
]


def test_tokens_are_lowercased_stemmed_and_without_stopwords():
    assert keyword_tokens("What does the article say about the Policies?") == ["polici"]
    assert keyword_tokens("policy") == keyword_tokens("policies")
    # Digits survive, so years and amounts can be matched; single letters do not.
    assert keyword_tokens("In 2019 a deal") == ["2019", "deal"]


def test_term_weights():
    weights = TermWeights(["north korea warheads", "north korea russia", "north korea china", "tax"])
    assert weights.passages == 4
    assert weights.knows("warheads") and weights.knows("korea") and not weights.knows("japan")
    # Rare words weigh more than common ones; unknown words most of all.
    assert weights.idf("japan") > weights.idf("warheads") > weights.idf("korea")
    assert weights.overlap({"warheads"}, "About 50 warheads.") == pytest.approx(1.0)
    assert weights.overlap({"warheads"}, "Nothing relevant.") == 0.0
    share = weights.overlap({"korea", "warheads"}, "North Korea is here.")
    expected = weights.idf("korea") / (weights.idf("korea") + weights.idf("warheads"))
    assert share == pytest.approx(expected) and 0 < share < 0.5
    assert weights.overlap(set(), "anything") == 0.0


def test_term_weights_match_other_forms_of_a_word():
    weights = TermWeights(["The warhead count grew.", "Sanctions bite."])
    assert weights.knows("warheads") and weights.knows("sanction")
    assert weights.overlap({"warheads"}, "A warhead was tested.") == pytest.approx(1.0)


def test_bm25_ranks_the_passage_that_shares_rare_words():
    index = KeywordIndex(np.array([10, 11, 12, 13]), TEXTS)
    ranked = index.search("how many warheads does Pyongyang have", 4)
    assert ranked[0][0] == 10
    assert all(score > 0 for _, score in ranked)
    assert index.search("shells bought by Moscow", 1)[0][0] == 11


def test_bm25_with_no_known_word_finds_nothing():
    index = KeywordIndex(np.array([1, 2]), TEXTS[:2])
    assert index.scores("zebra xylophone") is None
    assert index.search("zebra xylophone", 5) == []
    assert index.search("the of and", 5) == []


def test_scores_of_follow_chunk_ids_in_any_order():
    ids = np.array([30, 10, 20, 40])
    index = KeywordIndex(ids, TEXTS)
    scores = index.scores("carbon tax")
    assert scores is not None
    picked = index.scores_of(scores, [40, 999, 30])
    assert picked[0] == scores[3] > 0 and picked[1] == 0.0 and picked[2] == scores[0]
    assert index.scores_of(None, [40]).tolist() == [0.0]


def test_the_keyword_index_carries_the_weights_of_its_passages():
    index = KeywordIndex(np.array([1, 2, 3, 4]), TEXTS)
    assert index.weights.passages == 4
    assert index.weights.knows("missile") and not index.weights.knows("iran")


def test_an_empty_index_answers_nothing():
    index = KeywordIndex(np.array([], dtype=np.int64), [])
    assert index.search("anything", 3) == []
    assert index.weights.passages == 0
