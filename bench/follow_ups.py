"""Do earlier turns help with follow-up questions? The same questions with and without history.

Usage: .venv/bin/python bench/follow_ups.py bench/questions/seed_followups.jsonl [--index-dir DIR]

Each question in the file is a follow-up ("And what about China?") with the earlier question in
`history`. Baseline in the same run: the same follow-ups asked on their own.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from _machine import print_machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument("--index-dir", type=Path, default=Path("/tmp/policybot-bench-followups"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print_machine("follow-up questions, with and without the earlier turn")
    from index.answering import evaluate
    from index.answering.extractive import ExtractiveEngine
    from index.indexing.embedding import SentenceTransformerEmbedder
    from index.indexing.indexer import update_index
    from index.retrieval.retriever import Retriever

    embedder = SentenceTransformerEmbedder()
    _, store = update_index(args.corpus, args.index_dir, embedder)
    engine = ExtractiveEngine(Retriever(store, embedder), embedder)
    questions = evaluate.load_jsonl(args.questions)
    for label, asked in (("with history", questions), ("without history", [replace(q, history=()) for q in questions])):
        figures = evaluate.metrics(evaluate.evaluate(engine, asked), engine.config.abstain_below)
        print(
            f"{label:16} recall@1 {figures['recall@1']:.2f}  answer accuracy {figures['answer_accuracy']:.2f}  "
            f"correct and cited {figures['correct_and_cited']:.2f}  ({figures['answerable']} questions)"
        )


if __name__ == "__main__":
    main()
