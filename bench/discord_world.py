"""The Discord world of the benchmarks: a library to answer from, the emulator with a real bot connected.

The emulator (tests/support/discord_emulator.py) speaks Discord's REST API and gateway on
127.0.0.1; the bot is the real `PolicyBot` (or a subclass) over a real index built by
bot.services, in the same process and event loop, as in tests/bot/test_discord_e2e.py.

Why benchmarks import test support, and only here: a Discord benchmark needs a Discord server,
and the emulator in tests/support is the one the end-to-end tests check against Discord's
documented behaviour. Copying it into bench/ would give two emulators to keep in step, and it
is not part of the bot, so no public API of bot/ or index/ offers it. This module is the one
place in bench/ that imports it (DiscordEmulator, and synced_bot, which starts a bot inside it);
bench.discord_latency, bench.reindex_loop_stall, bench.add_url_latency and bench.bot_start use
it through here. (bench.local_web does the same for the test web server and hostile files.)
"""

from __future__ import annotations

import contextlib
import gc
import json
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from bench.machine import REPO
from bench.speeches import write_corpus
from bot.app import PolicyBot
from bot.services import build_services, open_knowledge
from bot.settings import Settings
from index.indexing.indexer import open_store
from tests.support.discord_bot import synced_bot
from tests.support.discord_emulator import DiscordEmulator

__all__ = [
    "NO_ACK_DEADLINE",
    "SEED_CORPUS",
    "SEED_QUESTIONS",
    "UNGDC_FOLDER",
    "DiscordEmulator",
    "FullCollections",
    "bench_settings",
    "connected_bot",
    "emulator_problems",
    "first_edit_at",
    "load_questions",
    "ms",
    "passage_count",
    "prepare_library",
]

SEED_CORPUS = REPO / "corpus"
SEED_QUESTIONS = REPO / "bench" / "questions" / "seed_article.jsonl"
UNGDC_FOLDER = "ungdc"  # speeches go in a subfolder of a corpus, so the articles beside them stay
# Far beyond any latency measured: late acknowledgements are accepted and counted, not refused.
NO_ACK_DEADLINE = 1e9


def prepare_library(corpus: Path, work: Path, embedder, extra_speeches: Sequence[dict] = ()) -> tuple[Path, Path]:
    """Copy `corpus` (plus UN speeches, in an ungdc/ subfolder) to work/corpus and index it into work/index."""
    corpus_copy, index_dir = work / "corpus", work / "index"
    shutil.copytree(corpus, corpus_copy)
    if extra_speeches:
        write_corpus(extra_speeches, corpus_copy / UNGDC_FOLDER)
    open_knowledge(bench_settings(corpus_copy, index_dir), embedder).close()  # builds the index, as the bot would
    return corpus_copy, index_dir


def passage_count(index_dir: Path, embedder) -> int:
    """How many passages (chunks) an index holds."""
    store = open_store(index_dir, embedder)
    try:
        return store.chunk_count
    finally:
        store.close()


def bench_settings(corpus: Path, index_dir: Path) -> Settings:
    """Default settings (not .env: no LLM, no token) over this library, without the per-member cooldown."""
    return Settings().with_changes(corpus_dir=corpus, index_dir=index_dir, ask_cooldown_seconds=0)


def load_questions(path: Path = SEED_QUESTIONS) -> list[str]:
    """The "question" field of every line of a JSONL question file."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


@contextlib.asynccontextmanager
async def connected_bot(
    settings: Settings,
    embedder,
    bot_class: type[PolicyBot] = PolicyBot,
    *,
    members: int = 0,
    ack_deadline: float = NO_ACK_DEADLINE,
) -> AsyncIterator[tuple[DiscordEmulator, PolicyBot, list[dict]]]:
    """The emulator with `members` extra members and a ready bot whose commands are synced; both closed after."""
    emulator = DiscordEmulator(ack_deadline=ack_deadline)
    extra_members = [emulator.add_member(f"asker-{number}") for number in range(members)]
    await emulator.start()
    try:
        with emulator.patched():
            async with synced_bot(bot_class(build_services(settings, embedder), guild_ready_timeout=0.05)) as bot:
                yield emulator, bot, extra_members
    finally:
        await emulator.close()


def emulator_problems(emulator: DiscordEmulator) -> list[str]:
    """Requests Discord would have refused, unknown routes and interaction errors, as text."""
    problems = [f"{record} {record.response}" for record in emulator.failed_requests]
    problems += [f"unknown route {record}" for record in emulator.unknown_requests]
    problems += [f"{interaction!r}: {error}" for interaction in emulator.interactions.values() for error in interaction.errors]
    return problems


def first_edit_at(emulator: DiscordEmulator, token: str) -> float | None:
    """perf_counter time the emulator received the first accepted edit of an interaction's @original with an embed."""
    path = f"/{token}/messages/@original"
    for record in emulator.requests:
        if (
            record.method == "PATCH"
            and record.path.endswith(path)
            and record.status == 200
            and isinstance(record.json, dict)
            and record.json.get("embeds")
        ):
            return record.time
    return None


class FullCollections:
    """While active, records how long every generation-2 (full) garbage collection paused the process."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started: float | None = None

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif info["generation"] == 2 and self._started is not None:
            self.pauses.append(time.perf_counter() - self._started)

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    def figures(self) -> dict:
        """How many full collections ran and the longest pause, in milliseconds."""
        return {"full_gcs": len(self.pauses), "full_gc_max_ms": max(ms(self.pauses), default=0.0)}


def ms(seconds: Sequence[float]) -> list[float]:
    """Seconds as milliseconds."""
    return [value * 1000 for value in seconds]
