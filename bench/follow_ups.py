"""Do earlier turns help with follow-up questions? The same questions with and without history.

Usage: .venv/bin/python -m bench.follow_ups bench/questions/seed_followups.jsonl [--index-dir DIR] [--json FILE]

Each question in the file is a follow-up ("And what about China?") with the earlier question in
`history`. Baseline in the same run: the same follow-ups asked on their own. The index is
updated from --corpus, and the embedder and the extractive engine are built by bot.services.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from bench.machine import print_load, print_machine
from bench.results import write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--index-dir", type=Path, default=Path("/tmp/policybot-bench-followups"))
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = print_machine("follow-up questions, with and without the earlier turn")
    from bot.services import extractive_engine, load_embedder
    from bot.settings import Settings
    from index.answering import evaluate
    from index.indexing.indexer import update_index

    settings = Settings().with_changes(corpus_dir=args.corpus, index_dir=args.index_dir)
    embedder = load_embedder(settings, bulk=True)  # torch's default threads, as before (quality, not speed)
    _, store = update_index(args.corpus, args.index_dir, embedder, settings.index.options())
    engine = extractive_engine(settings, embedder, store)
    questions = evaluate.load_jsonl(args.questions)
    results = {}
    for label, asked in (("with history", questions), ("without history", [replace(q, history=()) for q in questions])):
        figures = evaluate.metrics(evaluate.evaluate(engine, asked), engine.config.abstain_below)
        results[label] = figures
        print(
            f"{label:16} recall@1 {figures['recall@1']:.2f}  answer accuracy {figures['answer_accuracy']:.2f}  "
            f"correct and cited {figures['correct_and_cited']:.2f}  ({figures['answerable']} questions)"
        )
    store.close()
    busy = print_load()
    if args.json:
        write_results("follow_ups", {"questions": str(args.questions), "results": results, "busy_at_end": busy}, info, args.json)


if __name__ == "__main__":
    main()
