"""Asking: `/ask`, mentions, DMs and follow-ups in the bot's threads, and the buttons under each answer."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import PolicyBot, new_error_id, send_private
from bot.render import (
    THREAD_NAME_LIMIT,
    answer_embed,
    error_text,
    passage_messages,
    shorten,
)
from index.answering.conversations import HISTORY_TURNS
from index.text import clean_question as cleaned_question
from index.text import has_words
from index.types import Answer

log = logging.getLogger("policybot." + __name__)

MAX_QUESTION_CHARS = 1000
EMPTY_MENTION_REPLY = (
    "Ask me a question about the indexed articles — for example, mention me with "
    "“what did the Hanoi summit achieve?” — or use `/ask`. `/help` says what I know."
)
THREAD_WELCOME = "Ask follow-up questions here — no need to mention me. I read each one with the earlier questions in this thread."


@dataclass(frozen=True)
class Asked:
    """One answered question, ready to send."""

    answer: Answer
    answer_id: int
    embed: discord.Embed


def clean_question(raw: str) -> str:
    """Whitespace collapsed; ValueError with a member-facing sentence when empty or too long."""
    try:
        return cleaned_question(raw, MAX_QUESTION_CHARS)
    except ValueError as exc:
        reason = str(exc)
        raise ValueError(f"{reason[:1].upper()}{reason[1:]}.") from None


def thread_conversation(thread_id: int) -> str:
    """The conversation id of a follow-up thread."""
    return f"discord-thread:{thread_id}"


def dm_conversation(user_id: int) -> str:
    """The conversation id of a member's direct messages."""
    return f"discord-dm:{user_id}"


def bot_of(interaction: discord.Interaction) -> PolicyBot:
    """The PolicyBot that received an interaction."""
    return interaction.client  # type: ignore[return-value]


async def guarded(interaction: discord.Interaction, doing: str, action: Callable[[PolicyBot], Awaitable[None]]) -> None:
    """Run a button's action; anything unexpected becomes the private apology with an error id."""
    bot = bot_of(interaction)
    try:
        await action(bot)
    except Exception as exc:
        await bot.report_error(interaction, exc, doing)


# ---- the buttons under an answer: their custom ids carry the answer's number, so they survive restarts ----


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"pb:vote:(?P<answer>\d{1,18}):(?P<vote>up|down)"):
    """👍 or 👎: one vote per member per answer; clicking the other one changes it."""

    def __init__(self, answer_id: int, vote: str):
        self.answer_id = answer_id
        self.vote = vote
        super().__init__(
            discord.ui.Button(
                emoji="👍" if vote == "up" else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"pb:vote:{answer_id}:{vote}",
            )
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /) -> Self:
        return cls(int(match["answer"]), match["vote"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, "recording your vote", lambda bot: self.record(bot, interaction))

    async def record(self, bot: PolicyBot, interaction: discord.Interaction) -> None:
        """Store the vote (replacing this member's earlier one) and thank them privately."""
        # Acknowledge before touching the database: worker threads may all be busy answering.
        await interaction.response.defer(ephemeral=True, thinking=True)
        answers = bot.services.answers
        if await asyncio.to_thread(answers.get, self.answer_id) is None:
            await send_private(interaction, "That answer is no longer on record, so it can't be rated.")
            return
        await asyncio.to_thread(answers.vote, self.answer_id, interaction.user.id, 1 if self.vote == "up" else -1)
        mine, other = ("👍", "👎") if self.vote == "up" else ("👎", "👍")
        await send_private(interaction, f"Thanks — your {mine} is recorded. Click {other} to change it.")


class PassagesButton(discord.ui.DynamicItem[discord.ui.Button], template=r"pb:passages:(?P<answer>\d{1,18})"):
    """Show the cited passages in full, privately."""

    def __init__(self, answer_id: int):
        self.answer_id = answer_id
        super().__init__(
            discord.ui.Button(label="Show passages", emoji="📄", style=discord.ButtonStyle.primary, custom_id=f"pb:passages:{answer_id}")
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /) -> Self:
        return cls(int(match["answer"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, "showing the passages", lambda bot: self.show(bot, interaction))

    async def show(self, bot: PolicyBot, interaction: discord.Interaction) -> None:
        """Each cited paragraph, privately, in as many messages as Discord's limits need."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        stored = await asyncio.to_thread(bot.services.answers.get, self.answer_id)
        if stored is None or not stored.citations:
            await interaction.followup.send("This answer has no passages to show.", ephemeral=True)
            return
        knowledge = bot.services.knowledge
        paragraphs = await bot.compute(lambda: [knowledge.passage(c) for c in stored.citations])
        for embeds in passage_messages(stored.citations, paragraphs):
            await interaction.followup.send(embeds=embeds, ephemeral=True)


class ThreadButton(discord.ui.DynamicItem[discord.ui.Button], template=r"pb:thread:(?P<answer>\d{1,18})"):
    """Open a thread under the answer where every message is a follow-up question."""

    def __init__(self, answer_id: int):
        self.answer_id = answer_id
        super().__init__(
            discord.ui.Button(
                label="Follow up in a thread", emoji="🧵", style=discord.ButtonStyle.secondary, custom_id=f"pb:thread:{answer_id}"
            )
        )

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /) -> Self:
        return cls(int(match["answer"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, "opening a thread", lambda bot: open_follow_up_thread(bot, interaction, self.answer_id))


def answer_view(answer_id: int, answer: Answer, offer_thread: bool) -> discord.ui.View:
    """The buttons under an answer."""
    view = discord.ui.View(timeout=None)
    if answer.citations or answer.related:
        view.add_item(PassagesButton(answer_id))
    if offer_thread and not answer.abstained:
        view.add_item(ThreadButton(answer_id))
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view


async def open_follow_up_thread(bot: PolicyBot, interaction: discord.Interaction, answer_id: int) -> None:
    """Start (once) a public thread from the answer's message and seed its conversation with the answer."""
    message = interaction.message
    if interaction.guild is None or message is None or isinstance(interaction.channel, discord.Thread):
        await send_private(interaction, "Follow-up threads work under answers in server channels. Here, just ask your next question.")
        return
    # Acknowledge first: the lock below may be held by another click while Discord creates a thread.
    await interaction.response.defer(ephemeral=True, thinking=True)
    services = bot.services
    async with bot.thread_lock:
        existing = await asyncio.to_thread(services.answers.thread_for_answer, answer_id)
        if existing is not None:
            await send_private(interaction, f"Follow-ups for this answer are in <#{existing}>.")
            return
        stored = await asyncio.to_thread(services.answers.get, answer_id)
        if stored is None:
            await send_private(interaction, "That answer is no longer on record; ask again to start a thread.")
            return
        thread = await message.create_thread(name=shorten(stored.question, THREAD_NAME_LIMIT), auto_archive_duration=1440)
        await asyncio.to_thread(services.answers.add_thread, thread.id, answer_id)
        await asyncio.to_thread(services.conversations.add, thread_conversation(thread.id), stored.question, stored.text)
    await thread.send(THREAD_WELCOME)
    await interaction.followup.send(f"Ask your follow-ups in {thread.mention}.", ephemeral=True)


# ---- the cog -----------------------------------------------------------------------------------


class AskCog(commands.Cog, name="Ask"):
    """Questions from slash commands, mentions, DMs and follow-up threads, all answered the same way."""

    def __init__(self, bot: PolicyBot):
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(VoteButton, PassagesButton, ThreadButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(VoteButton, PassagesButton, ThreadButton)

    async def answer(
        self, question: str, user_id: int, guild_id: int | None, channel_id: int | None, conversation: str | None, offer_thread: bool
    ) -> tuple[Asked, discord.ui.View]:
        """Answer in a worker thread, record the answer, and build its embed and buttons."""
        services = self.bot.services
        started = time.perf_counter()
        history = await asyncio.to_thread(services.conversations.history, conversation, HISTORY_TURNS) if conversation else ()
        answer = await self.bot.compute(services.knowledge.ask, question, history)
        answer_id = await asyncio.to_thread(services.answers.record, answer, user_id, guild_id, channel_id)
        if conversation and has_words(question):
            await asyncio.to_thread(services.conversations.add, conversation, question, answer.text)
        passages = services.knowledge.stats().passages
        embed = answer_embed(answer, passages, time.perf_counter() - started)
        return Asked(answer, answer_id, embed), answer_view(answer_id, answer, offer_thread)

    def is_bot_thread(self, channel_id: int | None) -> bool:
        """True when the channel is a follow-up thread the bot opened."""
        return channel_id is not None and self.bot.services.answers.is_bot_thread(channel_id)

    @app_commands.command(name="ask", description="Ask a question; the answer cites the articles it comes from")
    @app_commands.describe(question="Your question about the indexed articles")
    async def ask(self, interaction: discord.Interaction, question: app_commands.Range[str, 1, MAX_QUESTION_CHARS]) -> None:
        """Acknowledge at once (Discord allows 3 s), then replace the 'thinking…' message with the answer."""
        try:
            question = clean_question(question)
        except ValueError as exc:
            await send_private(interaction, str(exc))
            return
        if interaction.guild_id is None and not self.bot.services.settings.discord.allow_dms:
            await send_private(interaction, "I don't answer in direct messages here; ask with `/ask` in the server.")
            return
        if self.bot.stopping:
            await send_private(interaction, "I'm restarting; please ask again in a minute.")
            return
        wait = self.bot.cooldown.retry_after(interaction.user.id)
        if wait:
            await send_private(interaction, f"You're asking quickly — please wait {wait:.0f} s before the next question.")
            return
        await interaction.response.defer(thinking=True)
        async with self.bot.tracked():
            channel_id = interaction.channel_id
            conversation = thread_conversation(channel_id) if channel_id is not None and self.is_bot_thread(channel_id) else None
            asked, view = await self.answer(
                question,
                interaction.user.id,
                interaction.guild_id,
                interaction.channel_id,
                conversation,
                offer_thread=interaction.guild_id is not None and not isinstance(interaction.channel, discord.Thread),
            )
            await interaction.edit_original_response(embed=asked.embed, view=view)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer a mention, a DM, or any message in one of the bot's follow-up threads."""
        if message.author.bot or message.webhook_id is not None or self.bot.user is None:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return  # members joining a thread, pins and other system messages are not questions
        me = self.bot.user
        # Written out in the text, not only implied by replying to one of the bot's messages.
        mentioned = re.search(rf"<@!?{me.id}>", message.content) is not None
        if message.guild is None:
            if not self.bot.services.settings.discord.allow_dms:
                await message.channel.send("I don't answer direct messages here; ask with `/ask` in the server.")
                return
            conversation = dm_conversation(message.author.id)
        elif isinstance(message.channel, discord.Thread) and self.is_bot_thread(message.channel.id):
            conversation = thread_conversation(message.channel.id)
        elif mentioned:
            conversation = None
        else:
            return
        text = re.sub(rf"<@!?{me.id}>", " ", message.content)
        try:
            question = clean_question(text)
        except ValueError as exc:
            await message.reply(EMPTY_MENTION_REPLY if not text.strip() else str(exc), mention_author=False)
            return
        if self.bot.stopping:
            await message.reply("I'm restarting; please ask again in a minute.", mention_author=False)
            return
        wait = self.bot.cooldown.retry_after(message.author.id)
        if wait:
            await message.reply(f"You're asking quickly — please wait {wait:.0f} s before the next question.", mention_author=False)
            return
        async with self.bot.tracked():
            try:
                async with message.channel.typing():
                    asked, view = await self.answer(
                        question,
                        message.author.id,
                        message.guild.id if message.guild else None,
                        message.channel.id,
                        conversation,
                        offer_thread=message.guild is not None and conversation is None and not isinstance(message.channel, discord.Thread),
                    )
                await message.reply(embed=asked.embed, view=view, mention_author=False)
            except Exception as exc:
                error_id = new_error_id()
                log.error(
                    "error %s while answering a message from user %s",
                    error_id,
                    message.author.id,
                    exc_info=(type(exc), exc, exc.__traceback__),
                )
                try:
                    await message.reply(error_text(error_id), mention_author=False)
                except discord.HTTPException:
                    log.warning("could not send the error reply for %s", error_id)


async def setup(bot: PolicyBot) -> None:
    """Extension entry point."""
    await bot.add_cog(AskCog(bot))
