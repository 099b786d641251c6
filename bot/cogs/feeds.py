"""Feeds: `/feed add url:`, `/feed list`, `/feed remove feed:` for admins, and the scheduled check."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.app import PolicyBot
from bot.cogs.admin import (
    ADMIN_PERMISSIONS,
    admin_only,
    describe_reindex,
    reindex_or_explain,
)
from bot.render import CHOICE_LIMIT, CONTENT_LIMIT, safe_text, shorten
from index.ingestion.feeds import (
    FeedCheck,
    FeedError,
    check_feed,
    describe_check,
    subscribe,
)
from index.knowledge import ReindexRunningError
from index.types import IndexReport

log = logging.getLogger("policybot." + __name__)
# Seconds between tries while another reindex runs (the admin cog waits the same way).
REINDEX_RETRY_SECONDS = 2.0


def describe_subscription(check: FeedCheck) -> str:
    """What subscribing did: the feed, and the articles it brought in now."""
    lines = [f"Subscribed to “{check.feed.title}” (feed {check.feed.feed_id}). New items are added every check."]
    lines += [f"• added “{added.article.title}” as {added.path.name}" for added in check.added]
    lines += [f"• not added: {link} — {reason}" for link, reason in check.failed[:3]]
    return "\n".join(lines)


class FeedsCog(commands.Cog, name="Feeds"):
    """RSS and Atom subscriptions whose new items become articles."""

    feed = app_commands.Group(
        name="feed",
        description="RSS and Atom feeds whose new items are added as articles",
        default_permissions=ADMIN_PERMISSIONS,
        guild_only=True,
    )

    def __init__(self, bot: PolicyBot):
        self.bot = bot
        minutes = bot.services.settings.ingestion.feed_check_minutes
        if minutes:
            self.scheduled_check.change_interval(minutes=minutes)

    async def cog_load(self) -> None:
        if self.bot.services.settings.ingestion.feed_check_minutes:
            self.scheduled_check.start()

    async def cog_unload(self) -> None:
        self.scheduled_check.cancel()

    def add_url(self):
        """add_url bound to the bot's corpus, knowledge base and fetcher."""
        services = self.bot.services
        return self.bot.one_at_a_time(services.adder.add_url)

    async def reindex_when_free(self) -> IndexReport:
        """Index what a check added: now, or, while another reindex runs, as soon as it has finished
        (that one may have read the corpus before the new files were written, and none may follow)."""
        knowledge = self.bot.services.knowledge
        waiting = False
        while True:
            try:
                return await asyncio.to_thread(knowledge.reindex)
            except ReindexRunningError:
                if not waiting:
                    log.info("feeds: a reindex is running; indexing the new articles when it has finished")
                    waiting = True
                await asyncio.sleep(REINDEX_RETRY_SECONDS)

    async def check_all(self) -> list[FeedCheck]:
        """Check every feed in a worker thread; reindex once if anything was added."""
        services = self.bot.services
        add_url = self.add_url()

        def work() -> list[FeedCheck]:
            checks = []
            for feed in services.feeds.feeds():
                try:
                    checks.append(check_feed(services.feeds, feed, services.fetcher, add_url))
                except Exception as exc:  # one feed's surprise must not stop the others or the reindex
                    log.exception("feed %s could not be checked", feed.url)
                    checks.append(FeedCheck(feed, error=f"unexpected error ({exc.__class__.__name__})"))
            return checks

        checks = await asyncio.to_thread(work)
        if any(check.added for check in checks):
            report = await self.reindex_when_free()
            log.info("feeds: %s", describe_reindex(report))
        for check in checks:
            if check.added or check.failed or check.error:
                log.info("feed check: %s", describe_check(check))
        return checks

    @tasks.loop(minutes=60)
    async def scheduled_check(self) -> None:
        """Every FEED_CHECK_MINUTES: add the feeds' new items."""
        try:
            async with self.bot.tracked():
                await self.check_all()
        except Exception:
            log.exception("the scheduled feed check failed")

    @scheduled_check.before_loop
    async def before_scheduled_check(self) -> None:
        await self.bot.wait_until_ready()

    @feed.command(name="add", description="Subscribe to an RSS or Atom feed (admins)")
    @app_commands.describe(url="The feed's address (http or https)")
    @admin_only()
    async def add(self, interaction: discord.Interaction, url: app_commands.Range[str, 1, 2000]) -> None:
        """Subscribe, add the newest few items now, and index them."""
        services = self.bot.services
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.tracked():
            try:
                check = await asyncio.to_thread(subscribe, services.feeds, url, services.fetcher, self.add_url())
            except FeedError as exc:
                await interaction.edit_original_response(content=shorten(safe_text(f"Not subscribed: {exc}"), CONTENT_LIMIT))
                return
            summary = describe_subscription(check)
            if check.added:
                report = await reindex_or_explain(self.bot, interaction, "Subscribed; indexing the first items:", wait=True)
                if report is not None:
                    summary += f"\n{describe_reindex(report)}"
            await interaction.edit_original_response(content=shorten(safe_text(summary), CONTENT_LIMIT))

    @feed.command(name="list", description="The subscribed feeds (admins)")
    @admin_only()
    async def list_feeds(self, interaction: discord.Interaction) -> None:
        """Each feed with when it was last checked and any problem."""
        feeds = await asyncio.to_thread(self.bot.services.feeds.feeds)
        if not feeds:
            await interaction.response.send_message("No feeds yet. Subscribe with `/feed add url:`.", ephemeral=True)
            return
        lines = [
            f"{f.feed_id}. {f.title} — <{f.url}> · checked {(f.checked_at or 'never')[:16].replace('T', ' ')}"
            + (f" · problem: {f.last_error}" if f.last_error else "")
            for f in feeds
        ]
        await interaction.response.send_message(shorten(safe_text("\n".join(lines)), CONTENT_LIMIT), ephemeral=True)

    @feed.command(name="remove", description="Unsubscribe from a feed; its articles stay (admins)")
    @app_commands.describe(feed="The feed's number, title or URL")
    @admin_only()
    async def remove(self, interaction: discord.Interaction, feed: app_commands.Range[str, 1, 2000]) -> None:
        """Stop checking a feed."""
        store = self.bot.services.feeds
        try:
            found = await asyncio.to_thread(store.find, feed)
        except LookupError as exc:
            await interaction.response.send_message(shorten(safe_text(f"Nothing removed: {exc}."), CONTENT_LIMIT), ephemeral=True)
            return
        await asyncio.to_thread(store.remove, found.feed_id)
        await interaction.response.send_message(
            shorten(safe_text(f"Unsubscribed from “{found.title}”; its articles stay in the library."), CONTENT_LIMIT), ephemeral=True
        )

    @remove.autocomplete("feed")
    async def feed_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Feeds whose title or URL contains what was typed."""
        wanted = current.casefold()
        feeds = [
            f for f in await asyncio.to_thread(self.bot.services.feeds.feeds) if wanted in f.title.casefold() or wanted in f.url.casefold()
        ]
        return [app_commands.Choice(name=shorten(f"{f.feed_id}. {f.title}", CHOICE_LIMIT), value=str(f.feed_id)) for f in feeds[:25]]


async def setup(bot: PolicyBot) -> None:
    """Extension entry point."""
    await bot.add_cog(FeedsCog(bot))
