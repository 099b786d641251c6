"""The real PolicyBot over a real index, connected over HTTP and WebSocket to the Discord API emulator."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from bot.app import PolicyBot
from bot.services import build_services
from bot.settings import Settings
from tests.support.discord_emulator import DiscordEmulator

ROOT = Path(__file__).resolve().parent.parent.parent
SEED_ARTICLE = ROOT / "corpus" / "north-korea-foreign-affairs.md"


def copy_library(prebuilt: Path, destination: Path) -> tuple[Path, Path]:
    """A private copy of a prebuilt corpus and index (cheaper than embedding again for every test)."""
    shutil.copytree(prebuilt, destination)
    return destination / "corpus", destination / "data" / "index"


def bot_settings(corpus: Path, index_dir: Path, **overrides) -> Settings:
    """Settings for a test bot: no cooldown unless a test asks for one."""
    return Settings().with_changes(**{"corpus_dir": corpus, "index_dir": index_dir, "ask_cooldown_seconds": 0, **overrides})


@contextlib.asynccontextmanager
async def synced_bot(bot: PolicyBot, ready_timeout: float = 30) -> AsyncIterator[PolicyBot]:
    """Start a bot (inside the emulator's patched()), wait until ready, register its commands; close it after."""
    running = asyncio.create_task(bot.start("emulator-token"))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), ready_timeout)
        await bot.tree.sync()
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 10)


@contextlib.asynccontextmanager
async def discord_world(
    settings: Settings, embedder, knowledge=None, emulator: DiscordEmulator | None = None
) -> AsyncIterator[tuple[DiscordEmulator, PolicyBot]]:
    """Start the emulator (a new one, or one a test built, say with a second guild), connect the bot to it,
    register its commands; close both afterwards."""
    emulator = emulator or DiscordEmulator()
    await emulator.start()
    try:
        with emulator.patched():
            services = build_services(settings, embedder)
            if knowledge is not None:
                services = replace(services, knowledge=knowledge)
                knowledge.load()
            async with synced_bot(PolicyBot(services, guild_ready_timeout=0.05)) as bot:
                yield emulator, bot
    finally:
        await emulator.close()
