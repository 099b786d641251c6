"""The longest event-loop stall while the bot reindexes the 2024 UN General Debate session through `/reindex`.

Usage: .venv/bin/python -m bench.reindex_loop_stall ../shared/data/ungdc/ungdc_2015_2024.jsonl [--limit N]

The real PolicyBot is connected to the Discord API emulator (bench.discord_world) in this process and event loop
(as in tests/bot/test_discord_e2e.py), over an index of the seed article built in a temporary
folder. The 2024 speeches (the first --limit of them, if given) are then written into the
corpus and the emulated admin runs /reindex; the run ends at the final "Reindexed …" message.
Meanwhile a watcher coroutine sleeps 10 ms in a loop and records how late each wake-up is,
and a member asks /ask every 2 s (acknowledgement and final latency recorded).

Baseline in the same run, on a slice of the same speeches (--baseline-speeches, default 10):
the same `update_index` call run directly in a coroutine (on the event loop, no worker
thread) and, for a like-for-like ratio, through `asyncio.to_thread`, each with the watcher.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from bench.discord_world import (
    SEED_CORPUS,
    UNGDC_FOLDER,
    FullCollections,
    bench_settings,
    connected_bot,
    emulator_problems,
    first_edit_at,
    load_questions,
    ms,
    passage_count,
)
from bench.machine import percentile, print_load, print_machine
from bench.results import write_results
from bench.speeches import load_speeches, write_corpus
from bot.services import load_embedder, open_knowledge
from index.indexing.indexer import update_index

# Before anything imports huggingface_hub (the embedder sets these too).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WATCH_INTERVAL_SECONDS = 0.010
ASK_EVERY_SECONDS = 2.0
STALL_THRESHOLDS_MS = (100, 250)
REINDEXED = re.compile(r"Reindexed in ([\d.]+) s: .*?([\d,]+) passages embedded")


class StallWatcher:
    """Sleeps WATCH_INTERVAL_SECONDS in a loop and records how late each wake-up is (the loop's stalls)."""

    def __init__(self) -> None:
        self.lateness: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _watch(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            self.lateness.append(time.perf_counter() - started - WATCH_INTERVAL_SECONDS)

    def start(self) -> None:
        """Begin watching the running loop."""
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> dict:
        """Stop watching; the stall figures in milliseconds."""
        self._stop.set()
        if self._task is not None:
            await self._task
        stalls = ms(self.lateness)
        figures = {
            "wakeups": len(stalls),
            "max_stall_ms": max(stalls, default=float("nan")),
            "p99_stall_ms": percentile(stalls, 99),
            "p50_stall_ms": percentile(stalls, 50),
        }
        for threshold in STALL_THRESHOLDS_MS:
            figures[f"stalls_over_{threshold}ms"] = sum(stall > threshold for stall in stalls)
        return figures


async def ask_periodically(emulator, questions: list[str], askers: list[dict], stop: asyncio.Event) -> list[dict]:
    """Ask one /ask question every ASK_EVERY_SECONDS (each by another member) until `stop`; then await all answers."""
    asked = []
    for question, asker in zip(itertools.cycle(questions), askers):
        asked.append(await emulator.slash("ask", {"question": question}, user=asker))
        try:
            await asyncio.wait_for(stop.wait(), ASK_EVERY_SECONDS)
            break
        except TimeoutError:
            pass
    latencies = []
    for interaction in asked:
        await interaction.wait_final(lambda message: message.get("embeds"), timeout=600)
        final_at = first_edit_at(emulator, interaction.token)
        latencies.append({"ack_ms": interaction.ack_latency * 1000, "final_ms": (final_at - interaction.dispatched_at) * 1000})
    return latencies


async def reindex_through_discord(settings, embedder, speeches: list[dict], timeout: float) -> dict:
    """Write the speeches into the corpus, run /reindex as the admin with the watcher and the asker running."""
    max_questions = int(timeout / ASK_EVERY_SECONDS) + 1
    async with connected_bot(settings, embedder, members=max_questions) as (emulator, bot, askers):
        passages_before = bot.services.knowledge.stats()[1]
        write_corpus(speeches, settings.index.corpus_dir / UNGDC_FOLDER)
        watcher, answered = StallWatcher(), asyncio.Event()
        with FullCollections() as collections:
            watcher.start()
            asking = asyncio.create_task(ask_periodically(emulator, load_questions(), askers, answered))
            reindex = await emulator.slash("reindex", user=emulator.admin)
            final = await reindex.wait_final(lambda message: message["content"].startswith("Reindexed"), timeout)
            finished_at = time.perf_counter()
            answered.set()
            stalls = await watcher.stop()
            questions = await asking
        parsed = REINDEXED.search(final["content"])
        return {
            "final_message": final["content"],
            "reindex_seconds_discord": finished_at - reindex.dispatched_at,
            "reindex_seconds_bot": float(parsed[1]) if parsed else None,
            "chunks_embedded": int(parsed[2].replace(",", "")) if parsed else None,
            "passages_before": passages_before,
            "passages_after": bot.services.knowledge.stats()[1],
            "reindex_ack_ms": reindex.ack_latency * 1000,
            **stalls,
            **collections.figures(),
            "questions": questions,
            "problems": emulator_problems(emulator),
        }


async def update_index_watched(corpus: Path, index_dir: Path, embedder, options, in_thread: bool) -> dict:
    """One update_index call with the watcher running: on the event loop, or in a worker thread."""
    watcher = StallWatcher()
    watcher.start()
    await asyncio.sleep(0.1)  # a few wake-ups before the work starts
    started = time.perf_counter()
    if in_thread:
        report, store = await asyncio.to_thread(update_index, corpus, index_dir, embedder, options)
    else:
        report, store = update_index(corpus, index_dir, embedder, options)
    seconds = time.perf_counter() - started
    store.close()
    await asyncio.sleep(0.1)
    return {"seconds": seconds, "chunks_embedded": report.chunks_embedded, **await watcher.stop()}


def baseline(speeches: list[dict], work: Path, settings, embedder) -> dict:
    """The same slice indexed on the event loop and in a worker thread, each into a fresh index."""
    corpus = work / "baseline-corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    write_corpus(speeches, corpus / UNGDC_FOLDER)
    results = {}
    for mode, in_thread in (("on the loop", False), ("worker thread", True)):
        index_dir = work / f"baseline-index-{'thread' if in_thread else 'loop'}"
        results[mode] = asyncio.run(update_index_watched(corpus, index_dir, embedder, settings.index.options(), in_thread))
        print(
            f"  baseline, {len(speeches)} speeches, {mode}: {results[mode]['seconds']:.1f} s, "
            f"max stall {results[mode]['max_stall_ms']:.0f} ms",
            flush=True,
        )
    return results


def print_report(run: dict, speeches: int, base: dict, base_speeches: int) -> None:
    """The stall table, the reindex figures and the questions asked meanwhile."""
    print(f"\n{'':44} {'max':>9} {'p99':>8} {'>100ms':>7} {'>250ms':>7} {'seconds':>8} {'chunks':>7}")
    rows = [(f"/reindex through Discord, {speeches} speeches", run, run["reindex_seconds_bot"], run["chunks_embedded"])]
    rows += [
        (f"baseline {base_speeches} speeches, {mode}", figures, figures["seconds"], figures["chunks_embedded"])
        for mode, figures in base.items()
    ]
    for label, figures, seconds, chunks in rows:
        print(
            f"{label:44} {figures['max_stall_ms']:7.0f}ms {figures['p99_stall_ms']:6.1f}ms "
            f"{figures['stalls_over_100ms']:7d} {figures['stalls_over_250ms']:7d} {seconds or float('nan'):8.1f} {chunks or 0:7,d}"
        )
    print(f"\nreindex: {run['final_message']!r}")
    print(
        f"  seen from Discord: {run['reindex_seconds_discord']:.1f} s from /reindex to the final message; "
        f"acknowledged in {run['reindex_ack_ms']:.1f} ms; passages {run['passages_before']:,} → {run['passages_after']:,}; "
        f"{run['full_gcs']} full garbage collection(s) meanwhile, longest {run['full_gc_max_ms']:.0f} ms"
    )
    acks = [q["ack_ms"] for q in run["questions"]]
    finals = [q["final_ms"] for q in run["questions"]]
    print(
        f"  {len(acks)} /ask questions during the reindex: ack p50 {percentile(acks, 50):.1f} ms, "
        f"p99 {percentile(acks, 99):.1f} ms, max {max(acks, default=float('nan')):.1f} ms; final p50 "
        f"{percentile(finals, 50):.0f} ms, p99 {percentile(finals, 99):.0f} ms, max {max(finals, default=float('nan')):.0f} ms"
    )
    for problem in run["problems"][:10]:
        print(f"  problem: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ungdc", type=Path, help="ungdc_2015_2024.jsonl")
    parser.add_argument("--limit", type=int, help="only the first N speeches of 2024 (file order)")
    parser.add_argument("--baseline-speeches", type=int, default=10, help="speeches in the on-the-loop baseline")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the reindex to finish")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/reindex_loop_stall.json)")
    args = parser.parse_args()
    embedder = load_embedder(bench_settings(Path(), Path()))  # as `policybot run` loads it: one torch thread
    embedder.embed(["warm-up"])  # the model loaded now, not inside a timed step (load_embedder may load it lazily)
    info = print_machine("event-loop stalls during /reindex of the 2024 UN General Debate")
    speeches = load_speeches(args.ungdc, [2024])[: args.limit]
    with tempfile.TemporaryDirectory(prefix="policybot-reindex-stall-") as scratch:
        work = Path(scratch)
        settings = bench_settings(work / "corpus", work / "index")
        base = baseline(speeches[: args.baseline_speeches], work, settings, embedder)
        shutil.copytree(SEED_CORPUS, settings.index.corpus_dir)
        open_knowledge(settings, embedder).close()  # the index of the seed article, built as the bot builds it
        print(
            f"index of the seed article: {passage_count(settings.index.index_dir, embedder)} passages; "
            f"reindexing {len(speeches)} speeches of 2024 through /reindex…",
            flush=True,
        )
        run = asyncio.run(reindex_through_discord(settings, embedder, speeches, args.timeout))
    print_report(run, len(speeches), base, args.baseline_speeches)
    busy = print_load()
    path = write_results(
        "reindex_loop_stall",
        {"busy_at_end": busy, "speeches": len(speeches), "limit": args.limit, "reindex": run, "baseline": base},
        info,
        args.json,
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
