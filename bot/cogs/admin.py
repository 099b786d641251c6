"""Administration: `/reindex`, `/add url:`, `/add file:` and `/remove article:`, for members who may manage the server
(`/feed add|list|remove`, in bot/cogs/feeds.py, share the same check).

Discord hides these commands from members without Manage Server (default_permissions), but a
server admin can change who sees a command, so each one checks the member's permissions again.
The library is one for every server the bot is in, so these commands change it only from the
servers HOME_GUILD_IDS lists (or, when that is empty, while the bot is in a single server).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import PolicyBot
from bot.render import CONTENT_LIMIT, article_choices, chosen_article, safe_text, shorten
from index.indexing.store import IndexBusyError
from index.ingestion.adding import (
    AddedArticle,
    IngestError,
    describe_added,
    describe_not_indexed,
    remove_article_file,
)
from index.knowledge import ReindexRunningError
from index.types import IndexReport

log = logging.getLogger("policybot." + __name__)

# Discord rate-limits message edits; one progress edit a second is plenty for a person watching.
PROGRESS_INTERVAL_SECONDS = 1.0
ADMIN_PERMISSIONS = discord.Permissions(manage_guild=True)


def may_administer(permissions: discord.Permissions, role_ids: list[int], admin_role_id: int | None) -> bool:
    """Manage Server or Administrator, or the allow-listed admin role from the settings."""
    return permissions.manage_guild or permissions.administrator or (admin_role_id is not None and admin_role_id in role_ids)


def admin_only():
    """A check run inside every admin command, whatever Discord showed the member."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if interaction.guild is None:
            raise app_commands.CheckFailure("Admin commands work only in a server.")
        settings = interaction.client.services.settings  # type: ignore[attr-defined]
        roles = [role.id for role in getattr(interaction.user, "roles", [])]
        if not may_administer(interaction.permissions, roles, settings.discord.admin_role_id):
            raise app_commands.CheckFailure("Only members who can manage this server can do that.")
        home = settings.discord.home_guild_ids
        refusal = library_refusal(interaction.guild.id, len(interaction.client.guilds), home)
        if refusal is not None:
            command = interaction.command.qualified_name if interaction.command else "an admin command"
            if home:
                log.info("refused /%s in server %s: not one of HOME_GUILD_IDS", command, interaction.guild.id)
            else:
                log.warning(
                    "refused /%s in server %s: the bot is in %d servers that share one library and HOME_GUILD_IDS is empty; "
                    "set HOME_GUILD_IDS to the servers whose admins may change the library",
                    command,
                    interaction.guild.id,
                    len(interaction.client.guilds),
                )
            raise app_commands.CheckFailure(refusal)
        return True

    return app_commands.check(predicate)


def library_refusal(guild_id: int, guild_count: int, home_guild_ids: tuple[int, ...]) -> str | None:
    """Why admins of this server may not change the library every server shares, or None when they may.

    Only the servers HOME_GUILD_IDS lists may; when it is empty, any server may while the bot is in only one.
    """
    if home_guild_ids:
        if guild_id in home_guild_ids:
            return None
        return (
            "This server can't change the library: I share one library with every server I'm in, "
            "and only my home server can add, remove or reindex articles or manage feeds (HOME_GUILD_IDS)."
        )
    if guild_count <= 1:
        return None
    return (
        "Admin commands are off: I'm in more than one server and they all share one library, so my operator "
        "must first name the server(s) that may change it in the HOME_GUILD_IDS setting."
    )


def data_relative(path: Path, data_dir: Path) -> str:
    """A path inside the bot's data folder as `removed/x.md`: a Discord message never shows the host's paths."""
    try:
        return path.resolve().relative_to(data_dir.resolve()).as_posix()
    except ValueError:
        return path.name


def describe_reindex(report: IndexReport) -> str:
    """The final line of a reindex: what changed and how long it took."""
    line = (
        f"Reindexed in {report.seconds:.1f} s: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged; {report.chunks_embedded:,} passages embedded."
    )
    if report.skipped:
        skipped = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:5])
        more = f" (and {len(report.skipped) - 5} more)" if len(report.skipped) > 5 else ""
        line += f"\nSkipped {len(report.skipped)} file(s): {skipped}{more}"
    return shorten(line, CONTENT_LIMIT)


async def reindex_with_progress(bot: PolicyBot, interaction: discord.Interaction, intro: str, rebuild: bool = False) -> IndexReport:
    """Run the reindex in a worker thread, editing the deferred reply with progress at most once a second."""
    progress = {"done": 0, "total": 0}

    def on_progress(done: int, total: int) -> None:
        progress["done"], progress["total"] = done, total

    work = asyncio.ensure_future(asyncio.to_thread(bot.services.knowledge.reindex, on_progress, rebuild))
    shown: tuple[int, int] | None = None
    last_edit = time.monotonic()
    while True:
        done, _ = await asyncio.wait({work}, timeout=PROGRESS_INTERVAL_SECONDS)
        if done:
            return work.result()
        state = (progress["done"], progress["total"])
        if state != shown and time.monotonic() - last_edit >= PROGRESS_INTERVAL_SECONDS:
            status = f"embedding passages: {state[0]:,} of {state[1]:,}…" if state[1] else "reading the corpus…"
            try:
                await interaction.edit_original_response(content=f"{intro} {status}")
            except discord.HTTPException:
                # A progress line is a courtesy: a failed edit (or an interaction past its
                # 15 minutes) must not abandon the reindex's final report.
                log.warning("could not show reindex progress", exc_info=True)
            shown, last_edit = state, time.monotonic()


async def reindex_or_explain(
    bot: PolicyBot, interaction: discord.Interaction, intro: str, rebuild: bool = False, wait: bool = False
) -> IndexReport | None:
    """A reindex, or None after telling the admin why not.

    With `wait` (a change was already saved, so it must be indexed), a reindex that is already
    running is waited for and then followed by ours, instead of asking the admin to retry.
    """
    while True:
        try:
            return await reindex_with_progress(bot, interaction, intro, rebuild)
        except ReindexRunningError:
            if not wait:
                await interaction.edit_original_response(content="A reindex is already running; try again when it has finished.")
                return None
            await interaction.edit_original_response(content=f"{intro} waiting for the reindex that is running…")
            await asyncio.sleep(2)
        except IndexBusyError:
            await interaction.edit_original_response(
                content=(
                    "The index is being written by another program (`policybot index`, `add` or `watch`). "
                    "The change is saved in the corpus; run `/reindex` once that program has finished."
                )
            )
            return None


async def final_report(interaction: discord.Interaction, text: str) -> None:
    """The last word on long admin work: in the deferred reply, or, once Discord's 15-minute
    interaction token has expired, in the channel (naming the admin, who is not pinged).
    Titles and reasons in it come from articles: no mention syntax survives."""
    text = shorten(safe_text(text), CONTENT_LIMIT - 40)
    try:
        await interaction.edit_original_response(content=text)
    except discord.HTTPException:
        log.warning("could not edit the reply to user %s; posting the result in the channel", interaction.user.id)
        channel = interaction.channel
        # Forum and category channels cannot hold messages (nor run commands).
        if channel is not None and not isinstance(channel, (discord.ForumChannel, discord.CategoryChannel)):
            await channel.send(f"{interaction.user.mention}: {text}")


class AdminCog(commands.Cog, name="Admin"):
    """Changing what the bot knows."""

    add = app_commands.Group(
        name="add", description="Add an article to the library", default_permissions=ADMIN_PERMISSIONS, guild_only=True
    )

    def __init__(self, bot: PolicyBot):
        self.bot = bot

    @app_commands.command(name="reindex", description="Update the index from the corpus folder (admins)")
    @app_commands.describe(full="Embed every article again instead of only the changed ones")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @admin_only()
    async def reindex(self, interaction: discord.Interaction, full: bool = False) -> None:
        """Incremental (or full) reindex with live progress."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.tracked():
            await interaction.edit_original_response(content="Reindexing: reading the corpus…")
            report = await reindex_or_explain(self.bot, interaction, "Reindexing:", rebuild=full)
            if report is not None:
                log.info("reindex by %s: %s", interaction.user.id, describe_reindex(report))
                await final_report(interaction, describe_reindex(report))

    async def save_and_index(self, interaction: discord.Interaction, adding: Callable[[], AddedArticle], what: str) -> None:
        """Run an ingestion call in a worker thread, then reindex with progress and say what was added."""
        knowledge = self.bot.services.knowledge
        try:
            added: AddedArticle = await asyncio.to_thread(self.bot.one_at_a_time(adding))
        except IngestError as exc:
            await interaction.edit_original_response(content=shorten(safe_text(f"Nothing added: {exc}"), CONTENT_LIMIT))
            return
        try:
            report = await reindex_or_explain(self.bot, interaction, f"Saved {added.path.name}; indexing:", wait=True)
        except Exception:
            # The file is in the corpus; say so plainly (the reason, with host paths, goes to the log).
            log.exception("indexing %s after saving it failed", added.path.name)
            reason = "indexing failed (the bot's log says why)"
            await final_report(interaction, describe_not_indexed(added.path.name, reason, "run /reindex"))
            return
        if report is None:
            return
        passages = knowledge.passage_count(added.article.article_id)
        log.info("%s added by %s: %s", what, interaction.user.id, added.path.name)
        await final_report(interaction, f"{describe_added(added, passages)} {describe_reindex(report)}")

    @add.command(name="url", description="Add an article from a web page (admins)")
    @app_commands.describe(url="The page's address (http or https)")
    @admin_only()
    async def add_url(self, interaction: discord.Interaction, url: app_commands.Range[str, 1, 2000]) -> None:
        """Fetch the page safely, extract the article, save it into the corpus and index it."""
        adder = self.bot.services.adder
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.tracked():
            await interaction.edit_original_response(content=shorten(safe_text(f"Fetching {url} …"), CONTENT_LIMIT))
            await self.save_and_index(interaction, lambda: adder.add_url(url), "URL")

    @add.command(name="file", description="Add an article from a file: .md, .txt, .html, .pdf or .docx (admins)")
    @app_commands.describe(file="The article: Markdown (front matter welcome), text, a web page, a PDF or a Word file")
    @admin_only()
    async def add_file(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        """Check the upload, save it into the corpus, and index it."""
        settings = self.bot.services.settings
        adder = self.bot.services.adder
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.tracked():
            limit = settings.index.max_article_bytes
            if file.size > limit:
                await interaction.edit_original_response(
                    content=shorten(
                        safe_text(f"Nothing added: {file.filename} is {file.size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB."),
                        CONTENT_LIMIT,
                    )
                )
                return
            data = await file.read()
            await self.save_and_index(interaction, lambda: adder.add_file(file.filename, data), "file")

    @app_commands.command(name="remove", description="Take an article out of the library (admins)")
    @app_commands.describe(article="Start typing a title and pick the article")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @admin_only()
    async def remove(self, interaction: discord.Interaction, article: app_commands.Range[str, 1, 200]) -> None:
        """Move the article's file to the trash folder and drop it from the index."""
        settings = self.bot.services.settings
        knowledge = self.bot.services.knowledge
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.tracked():
            try:
                info = await asyncio.to_thread(chosen_article, knowledge, article)
            except LookupError as exc:
                await interaction.edit_original_response(content=shorten(safe_text(f"Nothing removed: {exc}"), CONTENT_LIMIT))
                return
            try:
                moved = await asyncio.to_thread(remove_article_file, settings.index.corpus_dir, info.article_id, settings.removed_dir)
                # Never a path on the host in Discord: where it went, relative to the data folder.
                where = f"Its file was moved to `{data_relative(moved, settings.data_dir)}` in the bot's data folder."
            except LookupError:
                where = "Its file was already gone from the corpus folder."
            report = await reindex_or_explain(self.bot, interaction, safe_text(f"Removing “{info.title}”:"), wait=True)
            if report is not None:
                await final_report(interaction, f"Removed “{info.title}”. {where} {describe_reindex(report)}")

    @remove.autocomplete("article")
    async def article_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Titles matching what was typed, from memory."""
        return article_choices(self.bot.services.knowledge.match_articles(current))


async def setup(bot: PolicyBot) -> None:
    """Extension entry point."""
    await bot.add_cog(AdminCog(bot))
