"""The abstention trade-off (issue 10): answered-correctly and abstained rates over a sweep of the threshold.

    .venv/bin/python -m bench.calibration --library-corpus /tmp/eval/library/corpus \\
        --library-index /tmp/eval/library/new-index [--sets seed_dev,ungdc_dev] [--squad-articles 12] [--json out.json]

The extractive engine abstains when no sentence meets the question's constraints, or when the
best remaining sentence scores below `AnswerConfig.abstain_below`. Each question is answered
once with the threshold switched off (`-inf`), which gives the answer it would get and the score
that decides it (the best sentence that may open an answer: the highest citation score); at a
threshold t the question is answered when that score is at least t, else it abstains. Questions
the engine abstains on for other reasons (nothing meets the constraints, an article without the
asked-for metadata) abstain at every threshold; questions about an article itself are answered
from its metadata at every threshold. An answer is judged by `index.answering.evaluate.judge`,
as `policybot eval` and `bench.answer_quality` judge it: right when a gold string is in the
answer and in a passage it quotes (and from the expected article when the set names one).
`--verify` sets are also asked with the engine's default configuration, and the derived figures
at the default threshold are compared with that direct run, question by question.

Corpora. Question sets are files of bench/questions/ (`ungdc_conversations:dev` picks a split);
sets named `ungdc*` are answered from the UN library (`--library-corpus` and `--library-index`,
built with bench/ungdc_library.py plus the seed article), the others from the seed corpus
(`--seed-corpus`, indexed into a temporary folder, or a copy of `--seed-index` brought up to
date). The library index is copied to a temporary folder and opened there; the given folder is
never written. When a few articles differ from the corpus (at most `--library-update`), the copy
is brought up to date (only those are embedded); when the index does not open, its chunk
settings changed or more articles differ, the run stops and says so rather than rebuild it.

SQuAD v2.0 dev (`--squad`): `--squad-articles` articles drawn at random with `--squad-seed`
(the earlier SQuAD figures in docs/answers.md sampled questions over all 35 articles, so no
article is held out from them), indexed into a temporary index as `policybot eval` indexes
SQuAD; all their questions (or a reproducible sample of `--squad-limit`) are asked, and the
table gives the accuracy on answerable questions and the abstention recall on `is_impossible`
ones. Thresholds are chosen on dev sets; test sets and SQuAD are for reporting.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.machine import REPO, print_load, print_machine
from bench.results import write_results
from bot.services import build_knowledge, extractive_engine, load_embedder
from bot.settings import Settings
from index.answering import evaluate
from index.answering.extractive import AnswerConfig, ExtractiveEngine
from index.indexing.corpus import scan_corpus
from index.indexing.embedding import Embedder
from index.indexing.indexer import IndexOptions
from index.indexing.store import IndexProblem, IndexStore
from index.knowledge import KnowledgeBase
from index.types import AnswerTrace, Turn

# Before anything imports huggingface_hub (the embedder sets these too): the model is packaged, nothing is downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUESTIONS = REPO / "bench" / "questions"
DEFAULT_SQUAD = REPO.parent / "shared" / "data" / "squad" / "squad-dev-v2.0.json"


class StaleIndexError(RuntimeError):
    """The given index cannot be used as it is; rebuilding it is left to whoever owns it."""


@dataclass(frozen=True)
class Outcome:
    """One question answered with the threshold off: the score that decides it, and whether the answer is right.

    `score` is None when the engine abstains whatever the threshold, and infinite when no threshold
    applies (a question about an article itself, answered from its metadata).
    """

    id: str
    answerable: bool
    score: float | None
    correct: bool
    # The trace's best score, which also counts a best sentence that cannot open an answer (it leans on one not retrieved).
    best_score: float

    def abstains(self, threshold: float) -> bool:
        """Whether the engine abstains on this question at this threshold."""
        return self.score is None or self.score < threshold


def outcome_row(outcome: Outcome) -> dict:
    """One question's outcome as plain JSON (no infinities): its deciding score, or when no threshold applies."""
    finite = outcome.score is not None and math.isfinite(outcome.score)
    return {
        **asdict(outcome),
        "score": outcome.score if finite else None,
        "decided_by": "threshold" if finite else ("always abstains" if outcome.score is None else "always answers"),
    }


def decisive_score(trace: AnswerTrace) -> float | None:
    """The score compared with the threshold: the best sentence of the answer (None: abstains at every threshold)."""
    answer = trace.answer
    if answer.abstained:
        return None
    if not trace.hits:  # answered about the article itself, from its metadata or summary: no threshold applies
        return math.inf
    return max((c.score for c in answer.citations), default=trace.best_score)


def sweep_outcomes(engine: ExtractiveEngine, questions: Sequence[evaluate.EvalQuestion], label: str) -> list[Outcome]:
    """Answer every question once with the threshold switched off (as `evaluate.evaluate` does) and judge it."""
    from tqdm import tqdm

    never_abstain = type(engine)(engine.retriever, engine.embedder, replace(engine.config, abstain_below=-math.inf))
    outcomes = []
    for q in tqdm(questions, desc=label, unit="q", file=sys.stderr, leave=False, disable=not sys.stderr.isatty()):
        trace = never_abstain.trace(q.question, [Turn(h) for h in q.history])
        outcomes.append(Outcome(q.id, q.answerable, decisive_score(trace), evaluate.judge(q, trace.answer), trace.best_score))
    return outcomes


def point(outcomes: Sequence[Outcome], threshold: float) -> dict:
    """The figures at one threshold: answerable questions answered right, unanswerable ones abstained."""
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    right = sum(o.correct and not o.abstains(threshold) for o in answerable)
    abstained = sum(o.abstains(threshold) for o in unanswerable)
    wrongly = sum(o.abstains(threshold) for o in answerable)
    right_rate = right / len(answerable) if answerable else math.nan
    abstained_rate = abstained / len(unanswerable) if unanswerable else math.nan
    return {
        "threshold": threshold,
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "answered_correctly_count": right,
        "answered_correctly": right_rate,
        "abstained_count": abstained,
        "abstained": abstained_rate,
        "wrongly_abstained_count": wrongly,
        "sum": right_rate + abstained_rate,
    }


def verify(engine: ExtractiveEngine, questions: Sequence[evaluate.EvalQuestion], outcomes: Sequence[Outcome]) -> dict:
    """Ask the questions with the engine's own configuration and compare with the figures derived at its threshold."""
    threshold = engine.config.abstain_below
    judged = evaluate.answer_all(engine, questions)
    direct = evaluate.judged_figures(judged)
    derived = point(outcomes, threshold)
    differ = [
        j.id
        for j, o in zip(judged, outcomes, strict=True)
        if (j.abstained, j.correct) != (o.abstains(threshold), o.correct and not o.abstains(threshold))
    ]
    return {
        "threshold": threshold,
        "direct": {k: direct[k] for k in ("answered_correctly_count", "answerable", "abstained_count", "unanswerable")},
        "derived": {k: derived[k] for k in ("answered_correctly_count", "answerable", "abstained_count", "unanswerable")},
        "questions_that_differ": differ,
    }


def thresholds_between(low: float, high: float, step: float, default: float) -> list[float]:
    """The swept thresholds, the engine's default among them."""
    count = int(round((high - low) / step))
    return sorted({round(low + step * i, 4) for i in range(count + 1)} | {round(default, 4)})


def print_curve(title: str, rows: Sequence[dict], default: float, columns: tuple[str, str]) -> None:
    """One set's curve: a row per threshold; the default and the best sum marked."""
    best = max(row["sum"] for row in rows)
    print(f"\n{title}")
    print(f"  {'threshold':>9}  {columns[0]:>22}  {columns[1]:>22}  {'sum':>5}")
    for row in rows:
        marks = [m for m, on in (("default", math.isclose(row["threshold"], default)), ("best sum", row["sum"] == best)) if on]
        right = f"{row['answered_correctly_count']}/{row['answerable']} {row['answered_correctly']:6.1%}"
        abstained = f"{row['abstained_count']}/{row['unanswerable']} {row['abstained']:6.1%}"
        print(f"  {row['threshold']:>9.3f}  {right:>22}  {abstained:>22}  {row['sum']:5.2f}  {', '.join(marks)}")


def load_set(name: str) -> list[evaluate.EvalQuestion]:
    """A question set of bench/questions by name; `name:split` keeps the rows whose `split` field is that."""
    base, _, split = name.partition(":")
    path = QUESTIONS / f"{base}.jsonl"
    questions = evaluate.load_jsonl(path)
    if not split:
        return questions
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    wanted = {str(r.get("id")) for r in rows if r.get("split") == split}
    return [q for q in questions if q.id in wanted]


@dataclass(frozen=True)
class Staleness:
    """How an index differs from its corpus and today's chunk settings (found without embedding anything)."""

    chunking: str  # "" when the chunk settings are today's
    changed: tuple[str, ...]  # articles new or edited since indexing
    removed: tuple[str, ...]  # indexed articles no longer in the corpus

    def describe(self) -> str:
        """The differences in one line."""
        parts = [f"chunk settings differ ({self.chunking})"] if self.chunking else []
        parts += [f"{len(self.changed)} article(s) new or changed since indexing ({', '.join(self.changed[:3])})"] if self.changed else []
        parts += [f"{len(self.removed)} indexed article(s) gone from the corpus ({', '.join(self.removed[:3])})"] if self.removed else []
        return "; ".join(parts)


def staleness(store: IndexStore, corpus_dir: Path, options: IndexOptions) -> Staleness:
    """How the index differs from the corpus (content hashes) and from today's chunk settings."""
    recorded = str((store.manifest or {}).get("chunking", ""))
    chunking = "" if recorded == options.chunking() else f"{recorded!r}, today {options.chunking()!r}"
    indexed = {info.article_id: info.content_hash for info in store.articles()}
    on_disk = {article.article_id: article.content_hash for article in scan_corpus(corpus_dir, options.max_article_bytes).articles}
    changed = tuple(sorted(a for a, digest in on_disk.items() if indexed.get(a) != digest))
    return Staleness(chunking, changed, tuple(sorted(set(indexed) - set(on_disk))))


@contextmanager
def knowledge_over(settings: Settings, embedder: Embedder, build: bool) -> Iterator[KnowledgeBase]:
    """The knowledge base over settings' corpus and index, loaded (built or updated from the corpus when `build`)."""
    knowledge = build_knowledge(settings, embedder)
    try:
        if build:
            knowledge.load()
            knowledge.reindex()
        else:
            knowledge.load(build_if_missing=False)
        yield knowledge
    finally:
        knowledge.close()


def open_library(stack: ExitStack, scratch: Path, corpus: Path, index: Path, embedder: Embedder, may_update: int) -> KnowledgeBase:
    """The UN library from a scratch copy of its index (the given folder is never opened for writing).

    When at most `may_update` articles differ from the corpus, the copy is brought up to date
    (only those are embedded); a larger difference, changed chunk settings or an index that does
    not open would mean a rebuild, which this refuses.
    """
    if not (index / "manifest.json").is_file():
        raise StaleIndexError(f"{index} holds no index (no manifest.json)")
    copy = scratch / "library-index"
    shutil.copytree(index, copy, ignore=shutil.ignore_patterns(".lock"))
    settings = Settings().with_changes(corpus_dir=corpus, index_dir=copy)
    try:
        knowledge = stack.enter_context(knowledge_over(settings, embedder, build=False))
    except (IndexProblem, OSError, ValueError, KeyError) as exc:  # corrupt, another model, an unreadable manifest
        raise StaleIndexError(f"{index} does not open ({type(exc).__name__}: {exc})") from exc
    with knowledge.reading() as snapshot:
        stale = staleness(snapshot.store, corpus, settings.index.options())
        articles = len(snapshot.articles)
    differing = len(stale.changed) + len(stale.removed)
    if stale.chunking or differing > may_update:
        raise StaleIndexError(f"{index} is stale: {stale.describe()} (updates up to --library-update {may_update} articles)")
    if differing:
        started = time.perf_counter()
        report = knowledge.reindex()
        if report.rebuilt:
            raise StaleIndexError(f"{index} had to be rebuilt in the scratch copy: {stale.describe()}")
        print(f"note: {index} is stale: {stale.describe()}; its scratch copy was updated ({time.perf_counter() - started:.0f} s)")
    with knowledge.reading() as snapshot:
        print(f"library: {len(snapshot.articles)} articles ({articles} in the given index), {snapshot.store.chunk_count} passages")
        if snapshot.store.sentence_count == 0:
            print(f"note: {index} predates stored sentence vectors: answers embed their sentences (slower)")
    return knowledge


def open_seed(stack: ExitStack, scratch: Path, corpus: Path, index: Path | None, embedder: Embedder) -> KnowledgeBase:
    """The seed corpus indexed into a scratch folder (starting from a copy of `index` when given)."""
    copy = scratch / "seed-index"
    if index is not None:
        shutil.copytree(index, copy, ignore=shutil.ignore_patterns(".lock"))
    settings = Settings().with_changes(corpus_dir=corpus, index_dir=copy)
    return stack.enter_context(knowledge_over(settings, embedder, build=True))


def open_squad(
    stack: ExitStack, scratch: Path, path: Path, articles: int, seed: int, limit: int | None, embedder: Embedder
) -> tuple[KnowledgeBase, list[evaluate.EvalQuestion], list[str]]:
    """A random sample of SQuAD articles indexed as `policybot eval` indexes SQuAD, with their questions."""
    data = json.loads(path.read_text(encoding="utf-8"))
    picked = sorted(random.Random(seed).sample(range(len(data["data"])), min(articles, len(data["data"]))))
    subset = scratch / "squad-sample.json"
    subset.write_text(json.dumps({**data, "data": [data["data"][i] for i in picked]}), encoding="utf-8")
    texts, questions = evaluate.load_squad(subset)
    corpus = scratch / "squad-corpus"
    evaluate.write_corpus(texts, corpus)
    settings = Settings().with_changes(corpus_dir=corpus, index_dir=scratch / "squad-index")
    started = time.perf_counter()
    knowledge = stack.enter_context(knowledge_over(settings, embedder, build=True))
    print(f"indexed {len(texts)} SQuAD articles in {time.perf_counter() - started:.0f} s", flush=True)
    titles = [f"{i}:{data['data'][i]['title']}" for i in picked]
    return knowledge, evaluate.sample(questions, limit, seed), titles


def run_set(
    name: str,
    knowledge: KnowledgeBase,
    questions: Sequence[evaluate.EvalQuestion],
    settings: Settings,
    embedder: Embedder,
    thresholds: Sequence[float],
    check: bool,
    columns: tuple[str, str],
) -> dict:
    """Sweep one set, print its curve (and the check against a direct run), and return its figures."""
    with knowledge.reading() as snapshot:
        engine = extractive_engine(settings, embedder, snapshot.store)
        default = engine.config.abstain_below
        started = time.perf_counter()
        outcomes = sweep_outcomes(engine, questions, name)
        seconds = time.perf_counter() - started
        rows = [point(outcomes, t) for t in thresholds]
        answerable = sum(o.answerable for o in outcomes)
        print_curve(
            f"{name}: {answerable} answerable + {len(outcomes) - answerable} unanswerable, answered once in {seconds:.0f} s",
            rows,
            default,
            columns,
        )
        dangling = sum(o.score is not None and math.isfinite(o.score) and o.score != o.best_score for o in outcomes)
        if dangling:
            print(f"  {dangling} question(s) whose best sentence cannot open an answer (decided by the next best)")
        figures: dict = {"seconds": seconds, "default_threshold": default, "curve": rows}
        if check:
            started = time.perf_counter()
            checked = verify(engine, questions, outcomes)
            d, r = checked["direct"], checked["derived"]
            differ = checked["questions_that_differ"]
            print(
                f"  check at {default:.3f}: direct run {d['answered_correctly_count']}/{d['answerable']} answered correctly, "
                f"{d['abstained_count']}/{d['unanswerable']} abstained; derived {r['answered_correctly_count']}/{r['answerable']}, "
                f"{r['abstained_count']}/{r['unanswerable']}; "
                + (f"{len(differ)} question(s) differ: {', '.join(differ[:8])}" if differ else "every question agrees")
                + f" ({time.perf_counter() - started:.0f} s)"
            )
            figures["check"] = checked
        figures["questions"] = [outcome_row(o) for o in outcomes]
        return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Sweep the abstention threshold over the question sets and SQuAD v2.0, print the curves, and write JSON on request."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sets", help="comma-separated sets of bench/questions ('' for none; default: seed_dev, and ungdc_dev with a library)"
    )
    parser.add_argument("--seed-corpus", type=Path, default=REPO / "corpus", help="the seed corpus (default: corpus/)")
    parser.add_argument("--seed-index", type=Path, help="an index of the seed corpus to start from (copied, then updated)")
    parser.add_argument("--library-corpus", type=Path, help="the UN library corpus (bench/ungdc_library.py plus the seed)")
    parser.add_argument("--library-index", type=Path, help="its built index (copied to a scratch folder; never written, never rebuilt)")
    parser.add_argument(
        "--library-update", type=int, default=10, help="bring the copy up to date when at most this many articles differ (default 10)"
    )
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help="SQuAD v2.0 dev JSON (default ../shared/data/squad/…)")
    parser.add_argument("--squad-articles", type=int, default=12, help="SQuAD articles to index and ask about; 0 skips SQuAD")
    parser.add_argument("--squad-seed", type=int, default=0, help="seed of the article and question samples")
    parser.add_argument(
        "--squad-limit", type=int, default=0, help="ask a reproducible sample of this many of their questions (default 0: all)"
    )
    parser.add_argument("--verify", default="seed_dev", help="sets also asked directly with the default configuration ('' for none)")
    parser.add_argument("--low", type=float, default=0.20, help="lowest threshold (default 0.20)")
    parser.add_argument("--high", type=float, default=0.60, help="highest threshold (default 0.60)")
    parser.add_argument("--step", type=float, default=0.025, help="threshold step (default 0.025)")
    parser.add_argument("--json", type=Path, help="write every figure (and each question's deciding score) here")
    args = parser.parse_args(argv)
    library = args.library_corpus is not None and args.library_index is not None
    chosen = args.sets if args.sets is not None else ("seed_dev,ungdc_dev" if library else "seed_dev")
    names = [n.strip() for n in chosen.split(",") if n.strip()]
    if any(n.startswith("ungdc") for n in names) and not library:
        parser.error("ungdc sets need --library-corpus and --library-index")
    if args.squad_articles and not args.squad.is_file():
        parser.error(f"no SQuAD file {args.squad} (or pass --squad-articles 0)")
    checked = {n.strip() for n in args.verify.split(",") if n.strip()}
    sets = {name: load_set(name) for name in names}

    machine = print_machine("calibration: the abstention trade-off")
    started = time.perf_counter()
    settings = Settings()
    embedder = load_embedder(settings)
    default = AnswerConfig().abstain_below
    thresholds = thresholds_between(args.low, args.high, args.step, default)
    figures: dict = {"thresholds": thresholds, "sets": {}}
    ours = ("answered correctly", "abstained (unanswerable)")
    try:
        with tempfile.TemporaryDirectory(prefix="policybot-calibration-") as tmp, ExitStack() as stack:
            scratch = Path(tmp)
            corpora: dict[str, KnowledgeBase] = {}
            if any(not n.startswith("ungdc") for n in names):
                corpora["seed"] = open_seed(stack, scratch, args.seed_corpus, args.seed_index, embedder)
            if any(n.startswith("ungdc") for n in names):
                corpora["library"] = open_library(stack, scratch, args.library_corpus, args.library_index, embedder, args.library_update)
            for name, questions in sets.items():
                knowledge = corpora["library" if name.startswith("ungdc") else "seed"]
                figures["sets"][name] = run_set(name, knowledge, questions, settings, embedder, thresholds, name in checked, ours)
            if args.squad_articles:
                knowledge, questions, titles = open_squad(
                    stack, scratch, args.squad, args.squad_articles, args.squad_seed, args.squad_limit or None, embedder
                )
                print(f"SQuAD v2.0 dev articles (index:title, seed {args.squad_seed}): {', '.join(titles)}")
                squad = ("accuracy (answerable)", "abstained (is_impossible)")
                result = run_set("squad_v2", knowledge, questions, settings, embedder, thresholds, "squad_v2" in checked, squad)
                figures["sets"]["squad_v2"] = {**result, "articles": titles, "seed": args.squad_seed}
    except StaleIndexError as exc:
        print(f"\nstopped: {exc}\nRebuild it (policybot index --corpus … --index …) or pass another index; nothing was changed.")
        return 2
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print_load()
    if args.json:
        print(f"figures written to {write_results('calibration', figures, machine, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
