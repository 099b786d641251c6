"""`ask` latency (extractive answerer) at about 1k and 25k chunks, on passages never seen before, and the first question after start.

Usage: .venv/bin/python -m bench.ask_latency ../shared/data/ungdc/ungdc_2015_2024.jsonl [--work DIR] [--sizes N ...] [--json FILE]

The corpus is UN General Debate speeches, taken in file order until the index holds the target
number of chunks (or the existing indexes given with --indexes). The embedder and the answer
engine are built by bot.services, as `policybot ask` and the bot build them. Questions are
foreign-policy questions of the kind members ask; their answers don't matter here, only the time.

- Warm `ask`, unseen passages: the engine's sentence cache is emptied before every question, so
  no sentence vector comes from memory; they come from the index (table sentence_vectors) and
  only the question should be embedded. Texts embedded per ask are counted to check that.
  Baselines in the same run: retrieval alone (`Retriever.search`), and one pass with the cache
  kept (questions asked before).
- First question after start: fresh processes that load the model (as the chat and the bot do
  at start), open the index with `KnowledgeBase.load` (bot.services.build_knowledge) and time
  the first `ask`. Baseline: the same with the keyword index left to the first question
  (`warm_search=False`, the behaviour before issue 10). The keyword index (BM25) build is also
  timed on its own.

The figures are printed, then as JSON (also written to --json when given).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.machine import REPO, percentile, print_load, print_machine
from bench.results import write_results
from bench.speeches import speech_markdown, speech_path

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
# First questions of fresh starts (not in QUESTIONS, so nothing about them is warm).
FIRST_QUESTIONS = [
    "What is the speaker's view of multilateralism?",
    "What did the speech say about food security in Africa?",
    "How should the world respond to the crisis in Syria?",
    "What is said about gender equality and women's rights?",
    "Which commitments on ocean protection were made?",
]
# Rough, to pick how many speeches to write (measured: 29,863 chunks from 2.38M words); the real count is reported.
WORDS_PER_CHUNK = 80


def build(speeches: list[dict], target_chunks: int, work: Path, embedder):
    """Index enough speeches for about `target_chunks` chunks (reusing an earlier build)."""
    from index.indexing.indexer import update_index

    corpus = work / f"corpus-{target_chunks}"
    if not corpus.exists():
        words = 0
        for speech in speeches:
            # Ids look like "ungdc/AFG_70_2015": written as corpus/<year>/AFG_70_2015.md.
            path = speech_path(corpus, speech)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(speech_markdown(speech), encoding="utf-8")
            words += len(speech["text"].split())
            if words >= target_chunks * WORDS_PER_CHUNK:
                break
    report, store = update_index(corpus, work / f"index-{target_chunks}", embedder)
    return store, report


class CountingEmbedder:
    """The model, counting embed calls and texts (answers should embed only the question)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def embed(self, texts):
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.embed(texts)

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)


def first_question_child(index_dir: Path, question: str, warm_search: bool) -> None:
    """One fresh start (run in its own process): load the model, open the index, time the first question."""
    from bot.services import build_knowledge, load_embedder, load_model
    from bot.settings import Settings

    settings = Settings().with_changes(index_dir=index_dir)
    embedder = load_embedder(settings)
    started = time.perf_counter()
    load_model(embedder)  # as the terminal chat and the bot do at start, before the index
    model_s = time.perf_counter() - started
    knowledge = build_knowledge(settings, embedder, warm_search=warm_search)
    started = time.perf_counter()
    knowledge.load(build_if_missing=False)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    answer = knowledge.ask(question)
    first_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    knowledge.ask(QUESTIONS[0] if question != QUESTIONS[0] else QUESTIONS[1])
    second_ms = (time.perf_counter() - started) * 1000
    knowledge.close()
    figures = {"model_s": model_s, "load_s": load_s, "first_ask_ms": first_ms, "second_ask_ms": second_ms, "timings": answer.timings_ms}
    print(json.dumps(figures))


def first_questions(index_dir: Path, runs: int) -> dict:
    """Median first-question figures over `runs` fresh processes, keyword index built at load and lazily."""
    figures: dict = {}
    for label, warm in (("bm25_at_load", True), ("bm25_lazy", False)):
        rows = []
        for run in range(runs):
            question = FIRST_QUESTIONS[run % len(FIRST_QUESTIONS)]
            command = [sys.executable, "-m", "bench.ask_latency", "--first-question", str(index_dir), question]
            done = subprocess.run([*command, *([] if warm else ["--lazy-bm25"])], capture_output=True, text=True, check=True, cwd=REPO)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        figures[label] = {
            "first_ask_median_ms": statistics.median(r["first_ask_ms"] for r in rows),
            "first_ask_max_ms": max(r["first_ask_ms"] for r in rows),
            "second_ask_median_ms": statistics.median(r["second_ask_ms"] for r in rows),
            "index_load_median_s": statistics.median(r["load_s"] for r in rows),
            "model_load_median_s": statistics.median(r["model_s"] for r in rows),
            "first_ask_runs_ms": [round(r["first_ask_ms"], 1) for r in rows],
        }
    return figures


def keyword_build_seconds(store, embedder, repeats: int = 3) -> list[float]:
    """Seconds to build the keyword index (BM25 + word weights + names) from the store, each time anew."""
    from index.retrieval.retriever import Retriever

    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        Retriever(store, embedder).keyword_index()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ungdc", type=Path, nargs="?")
    parser.add_argument("--work", type=Path, default=Path("/tmp/policybot-bench-ask"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 25000])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the question list")
    parser.add_argument("--starts", type=int, default=5, help="fresh processes timing the first question, per variant")
    parser.add_argument("--indexes", type=Path, nargs="+", help="use these existing index folders instead of building")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--first-question", nargs=2, metavar=("INDEX_DIR", "QUESTION"), help=argparse.SUPPRESS)
    parser.add_argument("--lazy-bm25", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.first_question:
        first_question_child(Path(args.first_question[0]), args.first_question[1], warm_search=not args.lazy_bm25)
        return
    if args.ungdc is None and not args.indexes:
        parser.error("give the UNGDC JSONL file (or --indexes)")
    info = print_machine("ask latency (extractive answerer): unseen passages, first question after start")
    from bot.services import extractive_engine, load_embedder
    from bot.settings import Settings
    from index.indexing.indexer import open_store

    speeches = [json.loads(line) for line in args.ungdc.open(encoding="utf-8")] if args.ungdc else []
    settings = Settings()  # defaults, not .env: hybrid retrieval, no language model
    model = load_embedder(settings)  # one torch thread, as `policybot ask` and the bot load it
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}

    targets = args.indexes or args.sizes
    for size in targets:
        if isinstance(size, Path):
            index_dir, store, embedded = size, open_store(size, model), 0
        else:
            store, report = build(speeches, size, args.work, model)
            index_dir, embedded = args.work / f"index-{size}", report.chunks_embedded
        embedder = CountingEmbedder(model)
        engine = extractive_engine(settings, embedder, store)
        retriever = engine.retriever
        bm25_s = keyword_build_seconds(store, model)
        # Warm-up (keyword index, word weights, first-call allocations) on a question not in the timed set.
        engine.ask("What is the speaker's view of multilateralism?")
        retrieval_ms, totals, parts = [], [], {"embed": [], "search": [], "answer": []}
        calls, texts, extra = [], [], []
        for _ in range(args.rounds):
            for question in QUESTIONS:
                started = time.perf_counter()
                retriever.search(question, engine.config.passages)
                retrieval_ms.append((time.perf_counter() - started) * 1000)
                with engine._cache_lock:  # unseen passages: no sentence vector from memory
                    engine._sentence_cache.clear()
                embedder.calls, embedder.texts = 0, []
                answer = engine.ask(question)
                calls.append(embedder.calls)
                texts.append(len(embedder.texts))
                extra.extend(t for t in embedder.texts if t != question)
                totals.append(answer.timings_ms["total"])
                for key in parts:
                    parts[key].append(answer.timings_ms[key])
        cached = [engine.ask(question).timings_ms["total"] for question in QUESTIONS]  # baseline: asked before
        results[str(size)] = {
            "chunks": store.chunk_count,
            "ask_unseen_p50_ms": percentile(totals, 50),
            "ask_unseen_p95_ms": percentile(totals, 95),
            "retrieval_only_p50_ms": percentile(retrieval_ms, 50),
            "retrieval_only_p95_ms": percentile(retrieval_ms, 95),
            "ask_cached_p50_ms": percentile(cached, 50),
            "ask_cached_p95_ms": percentile(cached, 95),
            **{f"{key}_median_ms": statistics.median(values) for key, values in parts.items()},
            "bm25_build_median_ms": statistics.median(bm25_s) * 1000,
            "embed_calls_per_ask_max": max(calls),
            "texts_embedded_per_ask_max": max(texts),
            "texts_embedded_per_ask_median": statistics.median(texts),
            "asks_embedding_more_than_the_question": sum(1 for n in texts if n > 1),
            "texts_embedded_besides_the_question": sorted(set(extra))[:20],
            "questions": len(totals),
        }
        store.close()
        results[str(size)]["first_question"] = first_questions(index_dir, args.starts)
        print(f"\n{results[str(size)]['chunks']:,} chunks ({embedded:,} embedded now), {len(totals)} questions")
        for key, value in results[str(size)].items():
            if key.endswith("_ms"):
                print(f"  {key:30} {value:8.1f}")
        print(
            f"  embed calls per ask (max) {max(calls)}; texts embedded per ask: median {statistics.median(texts)}, max {max(texts)}; "
            f"{sum(1 for n in texts if n > 1)} of {len(texts)} asks embedded more than the question"
        )
        if extra:
            print(f"  texts embedded besides the question: {sorted(set(extra))[:20]}")
        for label, figures in results[str(size)]["first_question"].items():
            print(
                f"  first question after start ({label}): median {figures['first_ask_median_ms']:.0f} ms, "
                f"max {figures['first_ask_max_ms']:.0f} ms (runs {figures['first_ask_runs_ms']}); second "
                f"{figures['second_ask_median_ms']:.0f} ms; index load {figures['index_load_median_s']:.2f} s; "
                f"model load {figures['model_load_median_s']:.1f} s"
            )
    busy = print_load()
    print(json.dumps({"machine": info, "results": results}, indent=1))
    if args.json:
        write_results("ask_latency", {"results": results, "busy_at_end": busy}, info, args.json)


if __name__ == "__main__":
    main()
