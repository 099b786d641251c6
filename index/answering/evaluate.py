"""`policybot eval`: retrieval recall, answer accuracy, citation precision, abstention and latency.

Question files are either our JSONL (one object a line:
`{"question": "...", "answers": ["gold", ...], "answerable": true, "history": ["earlier question"], "id": "q1"}`)
or SQuAD JSON (v1.1 or v2.0), whose articles are indexed into a temporary index first.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from index.answering.engine import AnswerEngine
from index.answering.extractive import ExtractiveEngine
from index.indexing.chunking import Span, sentence_spans
from index.types import Answer, Turn

# The figures `policybot eval` prints, in order.
PRINTED_FIGURES = (
    "recall@1",
    "recall@5",
    "recall@10",
    "answer_accuracy",
    "citation_precision",
    "correct_and_cited",
    "abstention_precision",
    "abstention_recall",
    "baseline_accuracy",
)


class EvalFileError(ValueError):
    """A question file that cannot be read; the message names the line and the problem."""


@dataclass(frozen=True)
class EvalQuestion:
    """One question with its gold answer strings; unanswerable questions have none."""

    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    history: tuple[str, ...] = ()
    # The article the answer must cite (its id or file name), what kind of question it is, and
    # for a conversation's second question whether it leans on the first.
    article: str = ""
    kind: str = ""
    follow_up: bool | None = None


@dataclass(frozen=True)
class QuestionResult:
    """How one question went; `correct` and `cited` assume the answer was given (see `abstained`)."""

    id: str
    question: str
    answerable: bool
    best_score: float
    abstained: bool
    correct: bool
    cited: bool
    baseline_correct: bool
    first_gold_rank: int | None
    total_ms: float
    answer: str


def load_jsonl(path: Path) -> list[EvalQuestion]:
    """Questions from our JSONL format, with a clear error for a bad line."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record["question"], str):
                raise TypeError("question must be a string")
            # A bare string would be read character by character: "gold" -> ("g", "o", "l", "d").
            if not all(isinstance(record.get(key, []), list) for key in ("answers", "history")):
                raise TypeError("answers and history must be lists of strings")
            question = record["question"].strip()
            answers = tuple(str(a) for a in record.get("answers", []))
            answerable = bool(record.get("answerable", bool(answers)))
            history = tuple(str(h) for h in record.get("history", []))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvalFileError(f"{path}:{number}: not a question record ({exc})") from None
        if not question:
            raise EvalFileError(f"{path}:{number}: empty question")
        if answerable and not answers:
            raise EvalFileError(f"{path}:{number}: an answerable question needs at least one answer string")
        follow_up = record.get("follow_up")
        questions.append(
            EvalQuestion(
                str(record.get("id", number)),
                question,
                answers,
                answerable,
                history,
                article=str(record.get("article", "")),
                kind=str(record.get("kind", "")),
                follow_up=follow_up if isinstance(follow_up, bool) else None,
            )
        )
    if not questions:
        raise EvalFileError(f"{path}: no questions")
    return questions


def load_squad(path: Path) -> tuple[list[tuple[str, str]], list[EvalQuestion]]:
    """SQuAD articles as (title, text) — paragraphs joined by blank lines — and their questions."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EvalFileError(f"{path}: not SQuAD JSON ({exc})") from None
    articles, questions = [], []
    try:
        for article in data:
            title = article["title"].replace("_", " ")
            articles.append((title, "\n\n".join(p["context"].strip() for p in article["paragraphs"])))
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    impossible = bool(qa.get("is_impossible", False))
                    answers = () if impossible else tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                    questions.append(EvalQuestion(qa["id"], qa["question"].strip(), answers, not impossible))
    except (KeyError, TypeError, AttributeError) as exc:
        raise EvalFileError(f"{path}: not SQuAD JSON (missing or malformed {exc})") from None
    return articles, questions


def write_corpus(articles: Sequence[tuple[str, str]], corpus_dir: Path) -> None:
    """Write (title, text) articles as Markdown files with front matter."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for number, (title, text) in enumerate(articles, start=1):
        safe_title = title.replace('"', "'")
        (corpus_dir / f"article-{number:04d}.md").write_text(f'---\ntitle: "{safe_title}"\n---\n\n{text}\n', encoding="utf-8")


def contains_gold(text: str, answers: Sequence[str]) -> bool:
    """Case-insensitive: does the text contain any gold answer string?"""
    folded = text.casefold()
    return any(a.casefold().strip() in folded for a in answers if a.strip())


def first_sentence(text: str) -> str:
    """The first sentence of a passage (the plain baseline's answer)."""
    spans = sentence_spans(text, Span(0, len(text)))
    return text[spans[0].start : spans[0].end] if spans else text


def evaluate(
    engine: ExtractiveEngine, questions: Sequence[EvalQuestion], k: int = 10, progress: Callable[[int, int], None] | None = None
) -> list[QuestionResult]:
    """Answer every question with abstention switched off, recording the best sentence score.

    Abstention is then decided afterwards for any threshold (see `decide`), so one run gives
    the whole trade-off curve.
    """
    never_abstain = ExtractiveEngine(engine.retriever, engine.embedder, replace(engine.config, abstain_below=float("-inf")))
    retrieved = {}
    batch = 64
    for offset in range(0, len(questions), batch):
        part = questions[offset : offset + batch]
        queries = [" ".join([*q.history[-1:], q.question]) if q.history else q.question for q in part]
        for q, hits in zip(part, engine.retriever.search_many(queries, k)):
            retrieved[q.id] = hits
    results = []
    for done, q in enumerate(questions, start=1):
        trace = never_abstain.trace(q.question, [Turn(h) for h in q.history])
        answer = trace.answer
        hits = retrieved[q.id]
        gold_rank = next((h.rank for h in hits if contains_gold(h.chunk.text, q.answers)), None) if q.answerable else None
        baseline = first_sentence(hits[0].chunk.text) if hits else ""
        results.append(
            QuestionResult(
                id=q.id,
                question=q.question,
                answerable=q.answerable,
                # The score that decides abstention is the opening sentence's (the best citation's), not the best
                # of all candidates: a sentence leaning on one not retrieved can never open an answer.
                best_score=max((c.score for c in answer.citations), default=trace.best_score) if not answer.abstained else trace.best_score,
                abstained=answer.abstained,
                correct=q.answerable and not answer.abstained and contains_gold(answer.text, q.answers),
                cited=q.answerable and any(contains_gold(c.quote, q.answers) for c in answer.citations),
                baseline_correct=q.answerable and contains_gold(baseline, q.answers),
                first_gold_rank=gold_rank,
                total_ms=answer.timings_ms.get("total", 0.0),
                answer=answer.text,
            )
        )
        if progress:
            progress(done, len(questions))
    return results


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which `share` of the values fall (nearest rank)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered))) - 1))]


def metrics(results: Sequence[QuestionResult], threshold: float, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """All figures for one abstention threshold: a question abstains when its best score is below it."""
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    abstains = {r.id: r.abstained or r.best_score < threshold for r in results}
    answered = [r for r in answerable if not abstains[r.id]]
    abstained = [r for r in results if abstains[r.id]]
    latencies = [r.total_ms for r in results]
    share = lambda part, whole: (len(part) / len(whole)) if whole else float("nan")  # noqa: E731
    return {
        "threshold": threshold,
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        **{f"recall@{k}": share([r for r in answerable if r.first_gold_rank and r.first_gold_rank <= k], answerable) for k in ks},
        "answer_accuracy": share([r for r in answered if r.correct], answerable),
        "answer_accuracy_when_answered": share([r for r in answered if r.correct], answered),
        "citation_precision": share([r for r in answered if r.cited], answered),
        "correct_and_cited": share([r for r in answered if r.correct and r.cited], answerable),
        "abstention_precision": share([r for r in abstained if not r.answerable], abstained),
        "abstention_recall": share([r for r in unanswerable if abstains[r.id]], unanswerable),
        "baseline_accuracy": share([r for r in answerable if r.baseline_correct], answerable),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p95_ms": percentile(latencies, 0.95),
    }


def curve(results: Sequence[QuestionResult], thresholds: Sequence[float]) -> list[dict]:
    """The abstention trade-off: metrics at each threshold."""
    return [metrics(results, t) for t in thresholds]


def sample(questions: Sequence[EvalQuestion], limit: int | None, seed: int = 0) -> list[EvalQuestion]:
    """A reproducible random subset (all when limit is None)."""
    if limit is None or limit >= len(questions):
        return list(questions)
    return random.Random(seed).sample(list(questions), limit)


def out_of_corpus_questions(path: Path, corpus_titles: set[str], limit: int, seed: int = 0) -> list[EvalQuestion]:
    """Questions about SQuAD articles that are not in the corpus, as unanswerable questions."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EvalFileError(f"{path}: not SQuAD JSON ({exc})") from None
    outside = [
        EvalQuestion(f"outside-{qa['id']}", qa["question"].strip(), (), False)
        for article in data
        if article["title"].replace("_", " ") not in corpus_titles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return sample(outside, limit, seed)


def report_rows(results: Sequence[QuestionResult]) -> list[dict]:
    """Per-question results as dictionaries, for a JSON report."""
    return [asdict(r) for r in results]


@dataclass(frozen=True)
class Judged:
    """How the engine, deciding for itself, did on one question."""

    id: str
    kind: str
    question: str
    answerable: bool
    abstained: bool
    correct: bool
    total_ms: float
    answer: str
    cited_articles: tuple[str, ...]


def same_article(article_id: str, wanted: str) -> bool:
    """Whether an indexed article id names the article a question set gives (by id or file name, any case)."""

    def normal(name: str) -> str:
        return name.rsplit("/", 1)[-1].casefold().replace("_", "-")

    return normal(article_id) == normal(wanted)


def judge(question: EvalQuestion, answer: Answer) -> bool:
    """Correct: a gold string is in the answer and in a passage it quotes (for questions about an article
    itself, in the answer citing that article), and the citation is the expected article when one is given."""
    if not question.answerable or answer.abstained:
        return False
    if question.article and not any(same_article(c.article_id, question.article) for c in answer.citations):
        return False
    if not contains_gold(answer.text, question.answers):
        return False
    return question.kind == "meta" or any(contains_gold(c.quote, question.answers) for c in answer.citations)


def answer_all(engine: AnswerEngine, questions: Sequence[EvalQuestion], progress: Callable[[int, int], None] | None = None) -> list[Judged]:
    """Ask every question as a member would (abstention and every check on) and judge the answer."""
    judged = []
    for done, q in enumerate(questions, start=1):
        answer = engine.ask(q.question, [Turn(h) for h in q.history])
        judged.append(
            Judged(
                id=q.id,
                kind=q.kind or ("answerable" if q.answerable else "unanswerable"),
                question=q.question,
                answerable=q.answerable,
                abstained=answer.abstained,
                correct=judge(q, answer),
                total_ms=answer.timings_ms.get("total", 0.0),
                answer=answer.text,
                cited_articles=tuple(dict.fromkeys(c.article_id for c in answer.citations)),
            )
        )
        if progress:
            progress(done, len(questions))
    return judged


def judged_figures(judged: Sequence[Judged]) -> dict:
    """Answerable questions answered correctly with a quoting citation; unanswerable ones abstained; by kind."""
    answerable = [j for j in judged if j.answerable]
    unanswerable = [j for j in judged if not j.answerable]
    share = lambda part, whole: (len(part) / len(whole)) if whole else float("nan")  # noqa: E731
    kinds: dict[str, dict] = {}
    for kind in sorted({j.kind for j in judged}):
        group = [j for j in judged if j.kind == kind]
        ok = [j for j in group if (j.correct if j.answerable else j.abstained)]
        kinds[kind] = {"questions": len(group), "right": len(ok), "share": share(ok, group)}
    latencies = [j.total_ms for j in judged]
    return {
        "questions": len(judged),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "answered_correctly": share([j for j in answerable if j.correct], answerable),
        "answered_correctly_count": sum(j.correct for j in answerable),
        "abstained": share([j for j in unanswerable if j.abstained], unanswerable),
        "abstained_count": sum(j.abstained for j in unanswerable),
        "wrongly_abstained": share([j for j in answerable if j.abstained], answerable),
        "by_kind": kinds,
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p95_ms": percentile(latencies, 0.95),
    }
