"""The evaluation harness: question files, metrics arithmetic, and a run over a small index."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from index.answering.evaluate import (
    EvalFileError,
    EvalQuestion,
    QuestionResult,
    contains_gold,
    curve,
    evaluate,
    first_sentence,
    load_jsonl,
    load_squad,
    metrics,
    out_of_corpus_questions,
    percentile,
    report_rows,
    sample,
    write_corpus,
)
from index.answering.extractive import AnswerConfig, ExtractiveEngine
from index.indexing.corpus import scan_corpus
from index.indexing.indexer import update_index
from index.retrieval.retriever import Retriever
from tests.conftest import FakeEmbedder, write_small_corpus

SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Carbon_tax",
            "paragraphs": [
                {
                    "context": "A carbon tax puts a price on emissions. Sweden introduced one in 1991.",
                    "qas": [
                        {
                            "id": "c1",
                            "question": "When did Sweden introduce a carbon tax?",
                            "answers": [{"text": "1991", "answer_start": 66}, {"text": "1991", "answer_start": 66}],
                            "is_impossible": False,
                        },
                        {
                            "id": "c2",
                            "question": " What did Norway tax in 1850? ",
                            "answers": [],
                            "is_impossible": True,
                            "plausible_answers": [{"text": "emissions", "answer_start": 29}],
                        },
                    ],
                },
                {
                    "context": "Revenue can be returned as a dividend.",
                    "qas": [
                        {
                            "id": "c3",
                            "question": "What can revenue be returned as?",
                            "answers": [{"text": "a dividend", "answer_start": 27}, {"text": "dividend", "answer_start": 29}],
                        }
                    ],
                },
            ],
        },
        {
            "title": "School_meals",
            "paragraphs": [
                {
                    "context": "Free school lunches improve attendance.",
                    "qas": [
                        {"id": "s1", "question": "What do free lunches improve?", "answers": [{"text": "attendance", "answer_start": 28}]}
                    ],
                }
            ],
        },
    ],
}


def write_jsonl(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def result(
    id: str,
    answerable: bool = True,
    best: float = 0.5,
    correct: bool = False,
    cited: bool = False,
    baseline: bool = False,
    rank: int | None = None,
    ms: float = 100.0,
    abstained: bool = False,
) -> QuestionResult:
    return QuestionResult(
        id=id,
        question=f"question {id}",
        answerable=answerable,
        best_score=best,
        abstained=abstained,
        correct=correct,
        cited=cited,
        baseline_correct=baseline,
        first_gold_rank=rank,
        total_ms=ms,
        answer="",
    )


# ---- question files ------------------------------------------------------------------------------


def test_load_jsonl(tmp_path):
    path = write_jsonl(
        tmp_path / "q.jsonl",
        '{"id": "q1", "question": "  How high is the carbon tax? ", "answers": ["forty euros"]}',
        "",
        "   ",
        '{"question": "What is the capital of France?", "answerable": false}',
        '{"question": "Who won?"}',
        '{"question": "And the dividend?", "answers": ["dividend", 7], "history": ["How high is the tax?"]}',
    )
    questions = load_jsonl(path)
    assert questions == [
        EvalQuestion("q1", "How high is the carbon tax?", ("forty euros",), True),
        EvalQuestion("4", "What is the capital of France?", (), False),  # the id defaults to the line number
        EvalQuestion("5", "Who won?", (), False),  # no answers: unanswerable unless it says otherwise
        EvalQuestion("6", "And the dividend?", ("dividend", "7"), True, ("How high is the tax?",)),
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"question": "ok", "answers": ["x"]', "not a question record"),
        ('{"answers": ["x"]}', "not a question record"),
        ('["How high is the tax?"]', "not a question record"),
        ("42", "not a question record"),
        ('{"question": null, "answers": ["x"]}', "question must be a string"),
        ('{"question": "How high?", "answers": "forty euros"}', "must be lists"),
        ('{"question": "And then?", "answers": ["x"], "history": "How high?"}', "must be lists"),
        ('{"question": "   ", "answers": ["x"]}', "empty question"),
        ('{"question": "How high is the tax?", "answers": [], "answerable": true}', "needs at least one answer"),
    ],
    ids=[
        "bad-json",
        "no-question",
        "list",
        "number",
        "null-question",
        "string-answers",
        "string-history",
        "empty-question",
        "answerable-without-answers",
    ],
)
def test_load_jsonl_names_the_bad_line(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "q.jsonl", '{"question": "fine", "answers": ["x"]}', "", bad)
    with pytest.raises(EvalFileError) as raised:
        load_jsonl(path)
    assert str(raised.value).startswith(f"{path}:3: ")
    assert message in str(raised.value)


def test_load_jsonl_without_questions(tmp_path):
    with pytest.raises(EvalFileError, match="no questions"):
        load_jsonl(write_jsonl(tmp_path / "q.jsonl", "", "  "))


def test_load_squad(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    articles, questions = load_squad(path)
    assert articles == [
        ("Carbon tax", "A carbon tax puts a price on emissions. Sweden introduced one in 1991.\n\nRevenue can be returned as a dividend."),
        ("School meals", "Free school lunches improve attendance."),
    ]
    assert questions == [
        EvalQuestion("c1", "When did Sweden introduce a carbon tax?", ("1991",), True),  # duplicates dropped
        EvalQuestion("c2", "What did Norway tax in 1850?", (), False),  # plausible answers are not gold
        EvalQuestion("c3", "What can revenue be returned as?", ("a dividend", "dividend"), True),
        EvalQuestion("s1", "What do free lunches improve?", ("attendance",), True),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"version": "1.1"}',
        '{"data": [{"paragraphs": []}]}',
        '{"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}',
        '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"id": "x", "question": "q"}]}]}]}',
    ],
    ids=["text", "list", "no-data", "no-title", "no-context", "no-answers"],
)
def test_load_squad_refuses_other_files(tmp_path, content):
    path = tmp_path / "squad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalFileError, match="not SQuAD JSON"):
        load_squad(path)


def test_write_corpus_round_trip(tmp_path):
    write_corpus([('The "quoted" title', "First paragraph.\n\nSecond paragraph."), ("Plain", "Text.")], tmp_path / "corpus")
    scan = scan_corpus(tmp_path / "corpus")
    assert scan.skipped == []
    assert [(a.article_id, a.title) for a in scan.articles] == [("article-0001", "The 'quoted' title"), ("article-0002", "Plain")]
    assert scan.articles[0].text.startswith("First paragraph.") and "Second paragraph." in scan.articles[0].text


def test_out_of_corpus_questions(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    outside = out_of_corpus_questions(path, {"Carbon tax"}, limit=10)
    assert outside == [EvalQuestion("outside-s1", "What do free lunches improve?", (), False)]
    assert out_of_corpus_questions(path, {"Carbon tax", "School meals"}, limit=10) == []
    assert len(out_of_corpus_questions(path, set(), limit=2)) == 2


# ---- small helpers -------------------------------------------------------------------------------


def test_contains_gold():
    assert contains_gold("About FIFTY warheads", ["fifty"])
    assert contains_gold("x", ["nope", " X "])
    assert not contains_gold("anything", ["", "   "])  # blank gold strings match nothing
    assert not contains_gold("anything", [])


def test_first_sentence():
    assert first_sentence("Dr. Smith spoke. Then he left.") == "Dr. Smith spoke."
    assert first_sentence("No full stop") == "No full stop"
    assert first_sentence("") == ""


def test_percentile():
    assert percentile([], 0.5) == 0.0
    assert percentile([7.0], 0.95) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0 and percentile(values, 0.95) == 95.0
    assert percentile(list(reversed(values)), 0.95) == 95.0


def test_sample_is_reproducible():
    questions = [EvalQuestion(str(n), f"q{n}", ("a",), True) for n in range(20)]
    assert sample(questions, None) == questions and sample(questions, 50) == questions
    picked = sample(questions, 5)
    assert len(picked) == 5 and len({q.id for q in picked}) == 5 and set(picked) <= set(questions)
    assert sample(questions, 5) == picked and sample(questions, 5, seed=1) != picked


# ---- metrics arithmetic --------------------------------------------------------------------------

RESULTS = [
    result("a1", best=0.60, correct=True, cited=True, baseline=True, rank=1, ms=100),
    result("a2", best=0.50, correct=False, cited=True, rank=3, ms=200),
    result("a3", best=0.30, correct=True, cited=False, rank=None, ms=300),
    result("a4", best=0.45, correct=True, cited=True, rank=7, ms=400),
    result("u1", answerable=False, best=0.20, ms=500),
    result("u2", answerable=False, best=0.55, ms=600),
]


def test_metrics_at_a_threshold():
    m = metrics(RESULTS, 0.40)
    # Abstaining: a3 (0.30) and u1 (0.20). Answered answerable: a1, a2, a4.
    assert (m["threshold"], m["questions"], m["answerable"], m["unanswerable"]) == (0.40, 6, 4, 2)
    assert (m["recall@1"], m["recall@5"], m["recall@10"]) == (1 / 4, 2 / 4, 3 / 4)
    assert m["answer_accuracy"] == 2 / 4  # a1, a4 of the four answerable
    assert m["answer_accuracy_when_answered"] == 2 / 3
    assert m["citation_precision"] == 3 / 3
    assert m["correct_and_cited"] == 2 / 4
    assert m["abstention_precision"] == 1 / 2  # u1 of {a3, u1}
    assert m["abstention_recall"] == 1 / 2  # u1 of {u1, u2}
    assert m["baseline_accuracy"] == 1 / 4
    assert (m["latency_p50_ms"], m["latency_p95_ms"]) == (300, 600)


def test_metrics_at_the_extremes():
    never = metrics(RESULTS, 0.0)
    assert never["answer_accuracy"] == 3 / 4 and never["citation_precision"] == 3 / 4
    assert math.isnan(never["abstention_precision"]) and never["abstention_recall"] == 0.0
    always = metrics(RESULTS, 1.0)
    assert always["answer_accuracy"] == 0.0 and math.isnan(always["citation_precision"])
    assert always["abstention_precision"] == 2 / 6 and always["abstention_recall"] == 1.0
    # Retrieval and the baseline do not depend on the threshold.
    assert never["recall@5"] == always["recall@5"] == 2 / 4 and never["baseline_accuracy"] == always["baseline_accuracy"]


def test_an_abstained_result_abstains_at_any_threshold():
    results = [result("a", best=0.9, correct=True, cited=True, abstained=True), result("u", answerable=False, best=0.9)]
    m = metrics(results, 0.0)
    assert m["answer_accuracy"] == 0.0 and m["abstention_precision"] == 0.0 and m["abstention_recall"] == 0.0


def test_metrics_of_nothing():
    m = metrics([], 0.4)
    assert m["questions"] == 0 and math.isnan(m["answer_accuracy"]) and m["latency_p50_ms"] == 0.0


def test_curve_and_report_rows():
    points = curve(RESULTS, [0.0, 0.4, 1.0])
    assert [p["threshold"] for p in points] == [0.0, 0.4, 1.0]
    assert points[1] == metrics(RESULTS, 0.4)
    recalls = [p["abstention_recall"] for p in points]
    assert recalls == sorted(recalls)  # a higher bar abstains more
    rows = report_rows(RESULTS)
    assert len(rows) == 6 and rows[0]["id"] == "a1" and rows[0]["first_gold_rank"] == 1
    json.dumps(rows)


# ---- a run over a small index --------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path):
    embedder = FakeEmbedder()
    _, store = update_index(write_small_corpus(tmp_path / "corpus"), tmp_path / "index", embedder)
    yield ExtractiveEngine(Retriever(store, embedder), embedder)
    store.close()


def test_evaluate_over_an_index(engine):
    questions = [
        EvalQuestion("tax", "carbon tax on fuel and heating oil per tonne", ("forty euros",), True),
        EvalQuestion("meals", "free lunches for primary school pupils", ("September",), True),
        EvalQuestion("missing", "carbon tax", ("a phrase no article has",), True),
        EvalQuestion("france", "What is the capital of France?", (), False),
        EvalQuestion("follow", "and what about the dividend?", ("equal dividend",), True, ("carbon tax revenue households",)),
    ]
    seen = []
    results = evaluate(engine, questions, k=5, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(n, 5) for n in range(1, 6)]
    by_id = {r.id: r for r in results}
    assert [r.id for r in results] == [q.id for q in questions]
    tax = by_id["tax"]
    assert tax.first_gold_rank == 1 and tax.correct and tax.cited and not tax.abstained
    assert tax.baseline_correct  # the passage's first sentence holds "forty euros"
    assert by_id["meals"].correct and by_id["meals"].first_gold_rank is not None
    assert by_id["missing"].first_gold_rank is None and not by_id["missing"].correct and not by_id["missing"].cited
    france = by_id["france"]
    assert not france.answerable and not france.correct and france.first_gold_rank is None
    # Abstention is switched off during the run and decided afterwards from best_score.
    assert not any(r.abstained for r in results)
    assert france.best_score < engine.config.abstain_below
    assert by_id["follow"].first_gold_rank is not None
    assert all(r.total_ms > 0 for r in results)
    figures = metrics(results, engine.config.abstain_below)
    assert figures["questions"] == 5 and figures["unanswerable"] == 1 and figures["abstention_recall"] == 1.0


def test_evaluate_keeps_the_engine_config(engine):
    strict = ExtractiveEngine(engine.retriever, engine.embedder, AnswerConfig(abstain_below=10.0))
    [r] = evaluate(strict, [EvalQuestion("tax", "carbon tax on fuel per tonne", ("forty euros",), True)])
    assert not r.abstained and r.correct  # answered anyway: abstention is decided from best_score
    assert strict.config.abstain_below == 10.0
    assert metrics([r], strict.config.abstain_below)["answer_accuracy"] == 0.0


def test_judging_an_answer_as_a_member_would():
    from index.answering.evaluate import EvalQuestion, judge, judged_figures, same_article, Judged
    from index.types import Answer, Citation

    cite = Citation(1, "ungdc/kor-78-2023", "Korea", "", 2, "About 50 warheads.", 0, 18, 0.9)
    answer = Answer("q", "About 50 warheads. [1]", False, (cite,))
    fact = EvalQuestion("1", "how many?", ("50",), True, article="KOR_78_2023")
    assert same_article("ungdc/kor-78-2023", "KOR_78_2023") and not same_article("kor-79-2024", "KOR_78_2023")
    assert judge(fact, answer)
    assert not judge(EvalQuestion("2", "how many?", ("50",), True, article="JPN_79_2024"), answer)  # wrong article
    assert not judge(EvalQuestion("3", "how many?", ("60",), True), answer)
    # The gold must be in the quote too, except for questions about the article itself.
    by_metadata = Answer("q", "It is by Jane Doe. [1]", False, (cite,))
    assert not judge(EvalQuestion("4", "who?", ("Jane Doe",), True), by_metadata)
    assert judge(EvalQuestion("5", "who?", ("Jane Doe",), True, kind="meta"), by_metadata)
    rows = [
        Judged("a", "fact", "q", True, False, True, 10.0, "", ()),
        Judged("b", "fact", "q", True, True, False, 20.0, "", ()),
        Judged("c", "near_miss", "q", False, True, False, 30.0, "", ()),
    ]
    figures = judged_figures(rows)
    assert figures["answered_correctly"] == 0.5 and figures["abstained"] == 1.0 and figures["wrongly_abstained"] == 0.5
    assert figures["by_kind"]["fact"]["right"] == 1 and figures["by_kind"]["near_miss"]["right"] == 1
