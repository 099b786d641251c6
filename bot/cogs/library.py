"""Reading the library: `/summary` (with title autocomplete), `/articles` (paginated) and `/help`."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Self

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import PolicyBot, send_private
from bot.render import (
    CONTENT_LIMIT,
    article_choices,
    articles_page,
    chosen_article,
    help_embed,
    safe_text,
    shorten,
    summary_embed,
)

if TYPE_CHECKING:
    from index.knowledge import KnowledgeBase

LENGTHS = [
    app_commands.Choice(name="short (the gist, about 3 sentences)", value="short"),
    app_commands.Choice(name="medium (a sentence or two a section)", value="medium"),
    app_commands.Choice(name="long (more of every section)", value="long"),
]


def no_article_message(knowledge: KnowledgeBase, typed: str) -> str:
    """Why an article name did not resolve, and what to do (the member's text and the titles made inert)."""
    matches = knowledge.match_articles(typed, limit=6)
    if len(matches) > 1:
        shown = "; ".join(f"“{m.title}”" for m in matches[:5])
        return shorten(safe_text(f"Several articles match “{typed}”: {shown}. Pick one from the list as you type."), CONTENT_LIMIT)
    return shorten(
        safe_text(f"No indexed article matches “{typed}”. Start typing a title and pick it from the list, or see `/articles`."),
        CONTENT_LIMIT,
    )


class ArticlesPageButton(discord.ui.DynamicItem[discord.ui.Button], template=r"pb:articles:(?P<page>\d{1,6}):(?P<way>prev|next)"):
    """◀ / ▶ under the article list: shows the page in its custom id (so it works after a restart)."""

    def __init__(self, page: int, way: str, disabled: bool = False):
        self.page = page
        self.way = way
        super().__init__(
            discord.ui.Button(
                emoji="◀️" if way == "prev" else "▶️",
                style=discord.ButtonStyle.secondary,
                custom_id=f"pb:articles:{page}:{way}",
                disabled=disabled,
            )
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /) -> Self:
        return cls(int(match["page"]), match["way"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: PolicyBot = interaction.client  # type: ignore[assignment]
        try:
            embed, view = articles_message(bot, self.page)
            await interaction.response.edit_message(embed=embed, view=view)
        except Exception as exc:
            await bot.report_error(interaction, exc, "turning the page")


def articles_message(bot: PolicyBot, page: int) -> tuple[discord.Embed, discord.ui.View]:
    """One page of the article list with its page buttons."""
    articles = bot.services.knowledge.articles
    embed, pages = articles_page(articles, page)
    page = min(max(page, 0), pages - 1)
    view = discord.ui.View(timeout=None)
    view.add_item(ArticlesPageButton(max(page - 1, 0), "prev", disabled=page == 0))
    view.add_item(ArticlesPageButton(min(page + 1, pages - 1), "next", disabled=page >= pages - 1))
    return embed, view


class LibraryCog(commands.Cog, name="Library"):
    """What the bot has read, and summaries of it."""

    def __init__(self, bot: PolicyBot):
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ArticlesPageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ArticlesPageButton)

    @app_commands.command(name="summary", description="A cited summary of one article")
    @app_commands.describe(article="Start typing a title and pick the article", length="How long (default: medium)")
    @app_commands.choices(length=LENGTHS)
    async def summary(
        self, interaction: discord.Interaction, article: app_commands.Range[str, 1, 200], length: app_commands.Choice[str] | None = None
    ) -> None:
        """Summarise the chosen article in a worker thread."""
        knowledge = self.bot.services.knowledge
        chosen = length.value if length else "medium"
        if interaction.guild_id is None and not self.bot.services.settings.discord.allow_dms:
            await send_private(interaction, "I don't answer in direct messages here; use `/summary` in the server.")
            return
        await interaction.response.defer(thinking=True)
        async with self.bot.tracked():
            started = time.perf_counter()
            try:
                info = await self.bot.compute(chosen_article, knowledge, article)
            except LookupError:
                await interaction.edit_original_response(content=no_article_message(knowledge, article))
                return
            summary = await self.bot.compute(knowledge.summarize, info.article_id, chosen)
            embed = summary_embed(summary, info.title, info.url, chosen, time.perf_counter() - started)
            await interaction.edit_original_response(embed=embed)

    @summary.autocomplete("article")
    async def article_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Titles matching what was typed, from memory: autocomplete must answer within 3 s and cannot defer."""
        return article_choices(self.bot.services.knowledge.match_articles(current))

    @app_commands.command(name="articles", description="List the articles I can answer from")
    async def articles(self, interaction: discord.Interaction) -> None:
        """The first page of the article list, with page buttons."""
        embed, view = articles_message(self.bot, 0)
        await interaction.response.send_message(embed=embed, view=view)

    @app_commands.command(name="help", description="What I know and how to ask")
    async def help(self, interaction: discord.Interaction) -> None:
        """Counts, last reindex time and the commands, privately."""
        articles, passages, indexed_at = self.bot.services.knowledge.stats()
        await interaction.response.send_message(embed=help_embed(articles, passages, indexed_at), ephemeral=True)


async def setup(bot: PolicyBot) -> None:
    """Extension entry point."""
    await bot.add_cog(LibraryCog(bot))
