"""The Discord client: one `commands.Bot` given its dependencies, with one cog per feature area.

Where a question flows: bot/cogs/ask.py receives `/ask`, a mention, a DM or a thread message,
defers, and calls `PolicyBot.compute(knowledge.ask, …)`, which runs the answer engine
(index/knowledge.py → index/answering/ → index/retrieval/) in a worker thread; bot/render.py
turns the Answer into an embed within Discord's limits.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.render import error_text
from bot.services import Services, load_model

log = logging.getLogger("policybot." + __name__)
T = TypeVar("T")

COGS = ("bot.cogs.ask", "bot.cogs.library", "bot.cogs.admin", "bot.cogs.feeds")
# Seconds that in-flight answers get to finish when the bot is asked to stop.
SHUTDOWN_GRACE_SECONDS = 20.0


class Cooldown:
    """At most one question per member every `seconds`; remembers only recent askers."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._last: dict[int, float] = {}

    def retry_after(self, user_id: int) -> float:
        """0 and the question counts, or how many seconds the member must still wait."""
        if self.seconds <= 0:
            return 0.0
        now = self._clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.seconds:
            return self.seconds - (now - last)
        self._last[user_id] = now
        if len(self._last) > 10_000:
            # Forget members whose cooldown is over, so the table stays small.
            self._last = {user: t for user, t in self._last.items() if now - t < self.seconds}
        return 0.0


def new_error_id() -> str:
    """A short id that ties a member's apology to the traceback in the log."""
    return uuid.uuid4().hex[:8]


def intents() -> discord.Intents:
    """Guild and DM messages with their content (to answer mentions, DMs and thread follow-ups)."""
    wanted = discord.Intents.default()
    wanted.message_content = True
    wanted.members = False
    wanted.presences = False
    return wanted


class PolicyBot(commands.Bot):
    """The bot. Dependencies come in through the constructor; nothing is built at import time."""

    def __init__(self, services: Services, **options: Any):
        options.setdefault("intents", intents())
        super().__init__(
            command_prefix=commands.when_mentioned,
            # No text from a member or an article can ping anyone; replies opt back in to nothing.
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            **options,
        )
        self.services = services
        self.cooldown = Cooldown(services.settings.discord.ask_cooldown_seconds)
        self._answer_slots = asyncio.Semaphore(services.settings.discord.max_concurrent_answers)
        self._in_flight: set[asyncio.Task] = set()
        # One follow-up thread per answer, even when two members click at once.
        self.thread_lock = asyncio.Lock()
        # One article written at a time (an admin's /add beside a scheduled feed check): two new
        # articles with the same title must not pick the same file name.
        self.ingest_lock = threading.Lock()
        self.stopping = False
        self.started_at = time.perf_counter()
        self.ready_seconds: float | None = None

    async def setup_hook(self) -> None:
        """Load the model and the cogs; sync commands only to the development guild, and only when one is set."""
        # Discord accepted the token (an unreachable or refusing Discord fails before this seconds-long
        # load); the first question should not wait for it.
        if await asyncio.to_thread(load_model, self.services.knowledge.embedder):
            # As run_bot does for the index: keep full collections from walking the model's objects.
            gc.collect()
            gc.freeze()
        for cog in COGS:
            await self.load_extension(cog)
        self.tree.error(self.on_app_command_error)
        guild_id = self.services.settings.discord.dev_guild_id
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to development guild %s", len(synced), guild_id)

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: questions in messages are the Ask cog's listener's job."""

    async def on_ready(self) -> None:
        """Log once that the bot is connected, with how long start-up took."""
        if self.ready_seconds is None:
            self.ready_seconds = time.perf_counter() - self.started_at
            articles, passages, _ = self.services.knowledge.stats()
            log.info(
                "ready as %s in %d guild(s): %d articles, %d passages (%.2f s after start)",
                self.user,
                len(self.guilds),
                articles,
                passages,
                self.ready_seconds,
            )

    # ---- running work -----------------------------------------------------------------------

    async def compute(self, func: Callable[..., T], *args: Any) -> T:
        """Run an answer-sized CPU call in a worker thread, at most MAX_CONCURRENT_ANSWERS at once."""
        async with self._answer_slots:
            return await asyncio.to_thread(func, *args)

    @asynccontextmanager
    async def tracked(self) -> AsyncIterator[None]:
        """Mark the current handler as in flight, so a shutdown lets it finish."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._in_flight.discard(task)

    def one_at_a_time(self, adding: Callable[..., T]) -> Callable[..., T]:
        """The same ingestion call, run while holding the ingest lock (for worker threads)."""

        def locked(*args: Any) -> T:
            with self.ingest_lock:
                return adding(*args)

        return locked

    async def close(self) -> None:
        """Let in-flight answers finish (then cancel stragglers), close Discord, then the index and databases."""
        if not self.stopping:
            self.stopping = True
            waiting = {t for t in self._in_flight if t is not asyncio.current_task()}
            if waiting:
                log.info("waiting for %d answer(s) in flight", len(waiting))
                _, late = await asyncio.wait(waiting, timeout=SHUTDOWN_GRACE_SECONDS)
                for task in late:
                    task.cancel()
            await super().close()
            self.services.close()
            log.info("stopped")
        else:
            await super().close()

    # ---- errors -----------------------------------------------------------------------------

    async def report_error(self, interaction: discord.Interaction, error: BaseException, doing: str = "answering") -> str:
        """Log the traceback under a new id and tell the member, privately, with that id."""
        error_id = new_error_id()
        log.error(
            "error %s while %s (user %s): %s",
            error_id,
            doing,
            interaction.user.id,
            error,
            exc_info=(type(error), error, error.__traceback__),
        )
        await send_private(interaction, error_text(error_id, doing))
        return error_id

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Refusals get their reason; anything unexpected gets the apology with an error id."""
        if isinstance(error, app_commands.CheckFailure):
            await send_private(interaction, str(error) or "You can't use this command here.")
            return
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await self.report_error(
            interaction, original, f"running /{interaction.command.qualified_name}" if interaction.command else "answering"
        )


async def send_private(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral message, whether or not the interaction was already acknowledged.

    After a public "thinking…" deferral, a follow-up would replace that public message; deleting
    it first lets the follow-up be private.
    """
    try:
        if (
            interaction.type is discord.InteractionType.application_command
            and interaction.response.type is discord.InteractionResponseType.deferred_channel_message
        ):
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the deferred response", exc_info=True)
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not send a message to user %s", interaction.user.id, exc_info=True)
