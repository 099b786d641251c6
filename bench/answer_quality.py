"""Answer quality as members meet it: today's engine against ours, on the same question sets, in one run.

    python -m bench.answer_quality --seed-corpus corpus --library-corpus /tmp/library \\
        --baseline-tree /tmp/policybot-old [--sets seed_test,conversations_test,ungdc_test] [--json out.json]

Each engine builds its own index of the same corpus folders (under --work), then answers every
question of the sets as a member would (abstention and every check on). One scorer judges both:
an answerable question is right when a gold string is in the answer and in a passage it quotes
(for questions about the article itself: in the answer, citing that article) and, when the set
names the article, the citation is that article; an unanswerable one is right when the engine
abstains. The baseline is the code of another checkout (`git worktree add /tmp/policybot-old
15c1c09` gives the engine before issue 10), run in a child process with that checkout first on
its path; it needs nothing from this one.

The library corpus: `python -m bench.ungdc_library --ungdc ../shared/data/ungdc/ungdc_2015_2024.jsonl
--out /tmp/library` plus the seed article copied in (400 speeches + the seed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import REPO, print_machine
from bench.results import write_results
from bot.services import build_knowledge, load_embedder
from bot.settings import Settings
from index.answering import evaluate
from index.types import Answer, Citation

QUESTIONS = REPO / "bench" / "questions"
SEED_SETS = ("seed_dev", "seed_test", "conversations_dev", "conversations_test")
LIBRARY_SETS = ("ungdc_dev", "ungdc_test", "ungdc_conversations")

# Runs inside the baseline checkout: index the corpus with its code, answer the questions, print JSON lines.
BASELINE_DRIVER = r"""
import json, sys
from pathlib import Path
from bot.settings import Settings
from bot.cli import load_embedder
from index.indexer import update_index
from index.knowledge import answer_engine
from index.answer import Turn
corpus, index_dir, questions = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
settings = Settings.load(environ={}, dotenv_path=None)
embedder = load_embedder(settings)
_, store = update_index(corpus, index_dir, embedder, settings.index_options())
engine = answer_engine(store, embedder, settings.retrieval)
for q in questions:
    a = engine.ask(q["question"], [Turn(h) for h in q["history"]])
    print(json.dumps({"id": q["id"], "text": a.text, "abstained": a.abstained, "ms": a.timings_ms.get("total", 0.0),
                      "citations": [[c.article_id, c.quote] for c in a.citations]}), flush=True)
"""


def load_sets(names: list[str]) -> dict[str, list[evaluate.EvalQuestion]]:
    """The question sets by name; the UN conversations' `split` field picks dev or test rows."""
    sets = {}
    for name in names:
        questions = evaluate.load_jsonl(QUESTIONS / f"{name}.jsonl")
        sets[name] = questions
    return sets


def ours(corpus: Path, index_dir: Path, sets: dict[str, list[evaluate.EvalQuestion]]) -> dict[str, list[evaluate.Judged]]:
    """Our engine, built as the bot builds it, answering every set."""
    settings = Settings().with_changes(corpus_dir=corpus, index_dir=index_dir)
    knowledge = build_knowledge(settings, load_embedder(settings))
    knowledge.load()
    knowledge.reindex()
    try:
        with knowledge.reading() as snapshot:
            return {name: evaluate.answer_all(snapshot.engine, questions) for name, questions in sets.items()}
    finally:
        knowledge.close()


def baseline(tree: Path, corpus: Path, index_dir: Path, sets: dict[str, list[evaluate.EvalQuestion]]) -> dict[str, list[evaluate.Judged]]:
    """The other checkout's engine answering every set, judged by our scorer."""
    every = [q for questions in sets.values() for q in questions]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump([{"id": q.id, "question": q.question, "history": list(q.history)} for q in every], handle)
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", BASELINE_DRIVER, str(corpus), str(index_dir), handle.name],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    Path(handle.name).unlink()
    if done.returncode != 0:
        raise SystemExit(f"the baseline failed:\n{done.stderr[-3000:]}")
    replies = {r["id"]: r for r in (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))}
    judged: dict[str, list[evaluate.Judged]] = {}
    for name, questions in sets.items():
        rows = []
        for q in questions:
            r = replies[q.id]
            citations = tuple(Citation(n, a, "", "", 0, quote, 0, 0, 0.0) for n, (a, quote) in enumerate(r["citations"], start=1))
            answer = Answer(q.question, r["text"], r["abstained"], citations)
            rows.append(
                evaluate.Judged(
                    q.id,
                    q.kind or ("answerable" if q.answerable else "unanswerable"),
                    q.question,
                    q.answerable,
                    answer.abstained,
                    evaluate.judge(q, answer),
                    r["ms"],
                    answer.text,
                    tuple(dict.fromkeys(c.article_id for c in citations)),
                )
            )
        judged[name] = rows
    return judged


def split_rows(name: str, judged: list[evaluate.Judged], split: str) -> list[evaluate.Judged]:
    """The rows of a set that belong to a split (the UN conversations carry theirs per row)."""
    if name != "ungdc_conversations":
        return judged
    wanted = {
        json.loads(line)["id"]
        for line in (QUESTIONS / f"{name}.jsonl").read_text().splitlines()
        if line.strip() and json.loads(line).get("split") == split
    }
    return [j for j in judged if j.id in wanted]


def main() -> None:
    """Run both engines on the sets and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed-corpus", type=Path, required=True, help="folder with the seed article")
    parser.add_argument("--library-corpus", type=Path, help="folder with the 400-speech library (and the seed)")
    parser.add_argument("--baseline-tree", type=Path, help="another checkout whose engine is the baseline")
    parser.add_argument("--sets", help="comma-separated set names (default: all that the corpora given allow)")
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "policybot-answer-quality", help="where the indexes are built"
    )
    parser.add_argument("--json", type=Path, help="write the figures here (default bench/results/answer_quality.json)")
    args = parser.parse_args()
    machine = print_machine("answer quality: today's engine against ours")
    names = args.sets.split(",") if args.sets else [*SEED_SETS, *(LIBRARY_SETS if args.library_corpus else ())]
    groups = {"seed": [n for n in names if n not in LIBRARY_SETS], "library": [n for n in names if n in LIBRARY_SETS]}
    corpora = {"seed": args.seed_corpus, "library": args.library_corpus}
    figures: dict[str, dict] = {}
    for group, group_names in groups.items():
        if not group_names:
            continue
        sets = load_sets(group_names)
        started = time.perf_counter()
        mine = ours(corpora[group], args.work / f"ours-{group}", sets)
        print(f"  ours on {group}: {time.perf_counter() - started:.0f} s", flush=True)
        theirs = baseline(args.baseline_tree, corpora[group], args.work / f"baseline-{group}", sets) if args.baseline_tree else {}
        for name in group_names:
            for split in ("dev", "test") if name == "ungdc_conversations" else ("",):
                label = f"{name}:{split}" if split else name
                row = {"ours": evaluate.judged_figures(split_rows(name, mine[name], split))}
                if theirs:
                    row["baseline"] = evaluate.judged_figures(split_rows(name, theirs[name], split))
                figures[label] = row
    print(f"\n{'set':28} {'engine':9} {'answered right':>15} {'abstained':>11} {'p50 ms':>7} {'p95 ms':>7}")
    for label, row in figures.items():
        for engine, f in row.items():
            print(
                f"{label:28} {engine:9} {f['answered_correctly_count']:>6}/{f['answerable']:<3} {f['answered_correctly']:>4.0%}"
                f" {f['abstained_count']:>4}/{f['unanswerable']:<3}{f['abstained']:>4.0%} {f['latency_p50_ms']:>7.0f}"
                f" {f['latency_p95_ms']:>7.0f}"
            )
    path = write_results("answer_quality", {"sets": figures}, machine, args.json)
    print(f"\nfigures written to {path}")


if __name__ == "__main__":
    main()
