"""`/ask` through Discord: INTERACTION_CREATE to acknowledgement and to the final answer, at 1, 5 and 20 questions in flight.

Usage: .venv/bin/python -m bench.discord_latency [--corpus DIR] [--questions 200] [--concurrency 1 5 20]
       [--distractors ../shared/data/ungdc/ungdc_2015_2024.jsonl --distractor-count 20]

The real PolicyBot is connected to the Discord API emulator (tests/support/discord_emulator.py,
through bench.discord_world) in this process and event loop, over a copy of the corpus (default: the repository's corpus/)
indexed in a temporary folder with the real embedder, loaded as the bot loads it (one torch
thread); --distractors adds the first N speeches of the 2024 UN General Debate to that copy,
so that answers cost what they cost over a library of ~1,000 passages. The questions of
bench/questions/seed_article.jsonl are cycled to --questions and asked with /ask, each by a
different emulated member; a window of N interactions is kept in flight (when one is answered,
the next is dispatched). The answer engine caches question and sentence vectors, so the first
pass over the distinct questions is the expensive one and repeats are cheap.

Acknowledgement = the first interaction callback (the "thinking…" deferral) arriving at the
emulator; final = the @original edited with the answer embed; both from the emulator sending
INTERACTION_CREATE. The emulator accepts late acknowledgements so they can be counted (Discord
refuses those later than 3 s).

Baseline in the same run: the same bot with `compute` calling the answer engine directly on the
event loop instead of in a worker thread (`asyncio.to_thread`). Every (mode, concurrency) run
gets a fresh bot and knowledge base, so each starts with the same empty sentence cache; every
configuration is run --repeats times, interleaved, and the medians over repeats are printed.
Full (generation-2) garbage collections during each run are counted with their pause, since one
such pause stalls the whole process; --freeze-gc shows what `gc.freeze()` after start-up buys.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.discord_world import (
    SEED_CORPUS,
    FullCollections,
    bench_settings,
    connected_bot,
    emulator_problems,
    first_edit_at,
    load_questions,
    ms,
    passage_count,
    prepare_library,
)
from bench.machine import median, percentile, print_load, print_machine
from bench.results import write_results
from bench.speeches import load_speeches
from bot.app import PolicyBot
from bot.services import load_embedder

# Before anything imports huggingface_hub (the embedder sets these too).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

T = TypeVar("T")
DISCORD_ACK_LIMIT_SECONDS = 3.0
GOAL_ACK_P99_MS = 500.0
WARM_UP_QUESTION = "What is the article about?"


class OnLoopBot(PolicyBot):
    """The baseline: answers computed on the event loop, blocking it, instead of in a worker thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # As many answer slots as PolicyBot.compute allows (MAX_CONCURRENT_ANSWERS).
        self.baseline_slots = asyncio.Semaphore(self.services.settings.discord.max_concurrent_answers)

    async def compute(self, func: Callable[..., T], *args: Any) -> T:
        async with self.baseline_slots:
            return func(*args)


MODES = {"threads (PolicyBot)": PolicyBot, "on the loop (baseline)": OnLoopBot}


async def ask_with_window(emulator, questions: list[str], askers: list[dict], concurrency: int, timeout: float) -> dict:
    """Ask every question with `concurrency` interactions in flight; latency percentiles and the throughput."""
    pending = iter(enumerate(questions))
    interactions = []

    async def keep_one_in_flight() -> None:
        for number, question in pending:
            interaction = await emulator.slash("ask", {"question": question}, user=askers[number])
            interactions.append((number, interaction))
            await interaction.wait_acked(timeout)
            await interaction.wait_final(lambda message: message.get("embeds"), timeout)

    started = time.perf_counter()
    await asyncio.gather(*(keep_one_in_flight() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    acks = {number: interaction.ack_latency for number, interaction in interactions}
    finals = {number: first_edit_at(emulator, interaction.token) - interaction.dispatched_at for number, interaction in interactions}
    first_sight = [number for number, question in enumerate(questions) if questions.index(question) == number]
    return {
        "questions": len(interactions),
        **latency_figures("", acks.values(), finals.values()),
        **latency_figures("new_", [acks[n] for n in first_sight], [finals[n] for n in first_sight]),
        "acks_over_3s": sum(ack > DISCORD_ACK_LIMIT_SECONDS for ack in acks.values()),
        "questions_per_second": len(interactions) / elapsed,
        "problems": emulator_problems(emulator),
    }


def latency_figures(prefix: str, acks, finals) -> dict:
    """p50 and p99 of acknowledgement and final latencies (seconds in, milliseconds out)."""
    acks, finals = ms(list(acks)), ms(list(finals))
    return {
        f"{prefix}ack_p50_ms": percentile(acks, 50),
        f"{prefix}ack_p99_ms": percentile(acks, 99),
        f"{prefix}final_p50_ms": percentile(finals, 50),
        f"{prefix}final_p99_ms": percentile(finals, 99),
    }


async def measure(
    settings, embedder, bot_class: type[PolicyBot], questions: list[str], concurrency: int, timeout: float, freeze_gc: bool = False
) -> dict:
    """One run: a fresh bot of `bot_class`, warmed up with one question outside the set, then every question asked."""
    async with connected_bot(settings, embedder, bot_class, members=len(questions)) as (emulator, bot, askers):
        await asyncio.to_thread(bot.services.knowledge.ask, WARM_UP_QUESTION)
        if freeze_gc:
            gc.freeze()  # what the bot could do once its model and index are loaded
        try:
            with FullCollections() as collections:
                result = await ask_with_window(emulator, questions, askers, concurrency, timeout)
        finally:
            gc.unfreeze()
        return {**result, **collections.figures()}


def summarise(runs: list[dict]) -> list[dict]:
    """Per mode and concurrency: the median of each figure over the repeats, the p99 range, late acks and problems summed."""
    rows = []
    for concurrency in dict.fromkeys(run["concurrency"] for run in runs):
        for mode in MODES:
            mine = [run for run in runs if run["mode"] == mode and run["concurrency"] == concurrency]
            row = {"mode": mode, "concurrency": concurrency, "repeats": len(mine)}
            for key in mine[0]:
                if key.endswith(("_ms", "_second")):
                    row[key] = median([run[key] for run in mine])
            row["ack_p99_range_ms"] = (min(run["ack_p99_ms"] for run in mine), max(run["ack_p99_ms"] for run in mine))
            row["acks_over_3s"] = sum(run["acks_over_3s"] for run in mine)
            row["full_gcs"] = sum(run["full_gcs"] for run in mine)
            row["full_gc_max_ms"] = max(run["full_gc_max_ms"] for run in mine)
            row["problems"] = sum(len(run["problems"]) for run in mine)
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    """mode × concurrency → ack and final percentiles, late acknowledgements, throughput (medians over repeats)."""
    print(
        f"\n{'mode':24} {'in flight':>9} {'ack p50':>8} {'ack p99':>8} {'ack p99 range':>15} {'final p50':>9} {'final p99':>9} "
        f"{'new: final p50':>14} {'acks>3s':>7} {'q/s':>6} {'full GCs (max)':>15}   (ms; medians of {rows[0]['repeats']} repeats)"
    )
    for row in rows:
        low, high = row["ack_p99_range_ms"]
        ack_range, collections = f"{low:.0f}–{high:.0f}", f"{row['full_gcs']} ({row['full_gc_max_ms']:.0f})"
        print(
            f"{row['mode']:24} {row['concurrency']:9d} {row['ack_p50_ms']:8.1f} {row['ack_p99_ms']:8.1f} {ack_range:>15} "
            f"{row['final_p50_ms']:9.1f} {row['final_p99_ms']:9.1f} {row['new_final_p50_ms']:14.1f} "
            f"{row['acks_over_3s']:7d} {row['questions_per_second']:6.1f} {collections:>15}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SEED_CORPUS, help="article folder to copy and index (default corpus/)")
    parser.add_argument("--distractors", type=Path, metavar="UNGDC_JSONL", help="add UN General Debate speeches (2024) to the corpus copy")
    parser.add_argument("--distractor-count", type=int, default=20, help="how many speeches --distractors adds (default 20)")
    parser.add_argument("--questions", type=int, default=200, help="questions per run (the question file, cycled)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--repeats", type=int, default=3, help="runs of every mode and concurrency, interleaved")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for one acknowledgement or answer")
    parser.add_argument(
        "--freeze-gc", action="store_true", help="gc.freeze() once the bot is warm, so full collections skip the model and index objects"
    )
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/discord_latency.json)")
    args = parser.parse_args()
    embedder = load_embedder(bench_settings(Path(), Path()))  # as `policybot run` loads it: one torch thread
    embedder.embed(["warm-up"])  # the model loaded now, not inside a timed step (load_embedder may load it lazily)
    info = print_machine("/ask latency through Discord (emulator, in-process)")
    questions = list(itertools.islice(itertools.cycle(load_questions()), args.questions))
    runs = []
    with tempfile.TemporaryDirectory(prefix="policybot-discord-latency-") as scratch:
        distractors = load_speeches(args.distractors, [2024])[: args.distractor_count] if args.distractors else []
        corpus, index_dir = prepare_library(args.corpus, Path(scratch), embedder, extra_speeches=distractors)
        settings = bench_settings(corpus, index_dir)
        print(
            f"corpus {args.corpus} + {len(distractors)} UNGDC speeches: {len(list(corpus.rglob('*.md')))} articles, "
            f"{passage_count(index_dir, embedder):,} passages; {len(questions)} questions a run "
            f"({len(set(questions))} distinct); at most {settings.discord.max_concurrent_answers} answers computed at once "
            f"(MAX_CONCURRENT_ANSWERS)",
            flush=True,
        )
        for repeat in range(args.repeats):
            for concurrency in args.concurrency:
                for mode, bot_class in MODES.items():
                    result = asyncio.run(measure(settings, embedder, bot_class, questions, concurrency, args.timeout, args.freeze_gc))
                    runs.append({"repeat": repeat, "mode": mode, "concurrency": concurrency, "load_1min": os.getloadavg()[0], **result})
                    print(
                        f"  repeat {repeat + 1}, {mode}, {concurrency} in flight: ack p50 {result['ack_p50_ms']:.1f} ms, "
                        f"p99 {result['ack_p99_ms']:.1f} ms; final p99 {result['final_p99_ms']:.1f} ms; "
                        f"{result['full_gcs']} full GC(s), longest {result['full_gc_max_ms']:.0f} ms; "
                        f"{len(result['problems'])} problem(s); load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
    rows = summarise(runs)
    print_table(rows)
    for run in runs:
        for problem in run["problems"][:5]:
            print(f"problem ({run['mode']}, {run['concurrency']}): {problem}")
    goal_row = next((row for row in rows if row["concurrency"] == max(args.concurrency) and row["mode"] == next(iter(MODES))), None)
    if goal_row is not None:
        verdict = "met" if goal_row["ack_p99_ms"] < GOAL_ACK_P99_MS else "missed"
        print(
            f"\ngoal: acknowledgement p99 < {GOAL_ACK_P99_MS:.0f} ms at {goal_row['concurrency']} in flight: {verdict} "
            f"(median {goal_row['ack_p99_ms']:.1f} ms; worst repeat {goal_row['ack_p99_range_ms'][1]:.1f} ms)"
        )
    busy = print_load()
    path = write_results(
        "discord_latency",
        {
            "busy_at_end": busy,
            "corpus": str(args.corpus),
            "freeze_gc": args.freeze_gc,
            "distractor_speeches": len(distractors),
            "summary": rows,
            "runs": runs,
        },
        info,
        args.json,
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
