"""Warm, in-process `ask` latency (extractive answerer) at about 1k and 25k chunks.

Usage: .venv/bin/python -m bench.ask_latency ../shared/data/ungdc/ungdc_2015_2024.jsonl [--work DIR] [--json FILE]

The corpus is UN General Debate speeches, taken in file order until the index holds the target
number of chunks (or the existing indexes given with --indexes). The embedder and the answer
engine are built by bot.services, as `policybot ask` and the bot build them. Baseline in the
same run: retrieval alone (the engine's `Retriever.search`), so the cost of picking and citing
sentences is visible. Questions are foreign-policy questions of the kind members ask; their
answers don't matter here, only the time. The figures are printed, then as JSON (also written
to --json when given).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench.machine import percentile, print_load, print_machine
from bench.results import write_results

QUESTIONS = [
    "What did the speaker say about North Korea's nuclear programme?",
    "How should the Security Council be reformed?",
    "What is the position on sanctions against Russia?",
    "Which countries are most affected by climate change?",
    "What was said about the war in Ukraine?",
    "How can the sustainable development goals be financed?",
    "What is the view on a two-state solution for Palestine?",
    "Why are small island states worried about sea level rise?",
    "What role should the United Nations play in peacekeeping?",
    "How many refugees are hosted by the country?",
    "When will the country reach carbon neutrality?",
    "What is said about nuclear disarmament and the non-proliferation treaty?",
    "How did the COVID-19 pandemic affect the economy?",
    "What does the speech say about terrorism in the Sahel?",
    "Which reforms of international financial institutions are demanded?",
    "What is the stance on migration and human trafficking?",
    "How is artificial intelligence described?",
    "What happened in Afghanistan after 2021?",
    "What is the position on the Iran nuclear deal?",
    "Who should pay for loss and damage from climate disasters?",
]
WORDS_PER_CHUNK = 95  # rough, to pick how many speeches to write; the real count is reported


def build(speeches: list[dict], target_chunks: int, work: Path, embedder):
    """Index enough speeches for about `target_chunks` chunks (reusing an earlier build)."""
    from index.indexing.indexer import update_index

    corpus = work / f"corpus-{target_chunks}"
    if not corpus.exists():
        corpus.mkdir(parents=True)
        words = 0
        for speech in speeches:
            (corpus / f"{speech['id']}.md").write_text(f'---\ntitle: "{speech["title"]}"\n---\n\n{speech["text"]}\n', encoding="utf-8")
            words += len(speech["text"].split())
            if words >= target_chunks * WORDS_PER_CHUNK:
                break
    report, store = update_index(corpus, work / f"index-{target_chunks}", embedder)
    return store, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ungdc", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/policybot-bench-ask"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 25000])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the question list")
    parser.add_argument("--indexes", type=Path, nargs="+", help="use these existing index folders instead of building")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = print_machine("ask latency (warm, in-process, extractive answerer)")
    from bot.services import extractive_engine, load_embedder
    from bot.settings import Settings
    from index.indexing.indexer import open_store

    speeches = [json.loads(line) for line in args.ungdc.open(encoding="utf-8")]
    settings = Settings()  # defaults, not .env: hybrid retrieval, no language model
    embedder = load_embedder(settings)  # one torch thread, as `policybot ask` and the bot load it
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}

    targets = args.indexes or args.sizes
    for size in targets:
        if isinstance(size, Path):
            store, embedded = open_store(size, embedder), 0
        else:
            store, report = build(speeches, size, args.work, embedder)
            embedded = report.chunks_embedded
        engine = extractive_engine(settings, embedder, store)
        retriever = engine.retriever
        # Warm-up (BM25 index, word weights, first-call allocations) on a question not in the timed set.
        engine.ask("What is the speaker's view of multilateralism?")
        retrieval_ms, totals, parts = [], [], {"embed": [], "search": [], "answer": []}
        first_round: list[float] = []
        for round_number in range(args.rounds):
            for question in QUESTIONS:
                started = time.perf_counter()
                retriever.search(question, engine.config.passages)
                retrieval_ms.append((time.perf_counter() - started) * 1000)
                answer = engine.ask(question)
                totals.append(answer.timings_ms["total"])
                if round_number == 0:
                    # First sight of these passages: every sentence is embedded (no cache help).
                    first_round.append(answer.timings_ms["total"])
                for key in parts:
                    parts[key].append(answer.timings_ms[key])
        results[str(size)] = {
            "chunks": store.chunk_count,
            "ask_p50_ms": percentile(totals, 50),
            "ask_p95_ms": percentile(totals, 95),
            "ask_first_round_p50_ms": percentile(first_round, 50),
            "ask_first_round_p95_ms": percentile(first_round, 95),
            "retrieval_only_p50_ms": percentile(retrieval_ms, 50),
            "retrieval_only_p95_ms": percentile(retrieval_ms, 95),
            **{f"{key}_median_ms": statistics.median(values) for key, values in parts.items()},
            "questions": len(totals),
        }
        print(f"\n{store.chunk_count:,} chunks ({embedded:,} embedded now), {len(totals)} questions")
        for key, value in results[str(size)].items():
            if key.endswith("_ms"):
                print(f"  {key:26} {value:8.1f}")
    busy = print_load()
    print(json.dumps({"machine": info, "results": results}, indent=1))
    if args.json:
        write_results("ask_latency", {"results": results, "busy_at_end": busy}, info, args.json)


if __name__ == "__main__":
    main()
