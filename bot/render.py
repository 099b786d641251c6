"""Answers, summaries and lists as Discord embeds, always inside Discord's size limits."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import discord

from index.types import Answer, ArticleInfo, Citation

if TYPE_CHECKING:
    from index.knowledge import KnowledgeBase

# Discord's documented limits; a message over any of them is refused with HTTP 400.
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELD_COUNT_LIMIT = 25
FOOTER_LIMIT = 2048
EMBEDS_TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10
CHOICE_LIMIT = 100
CHOICES_PER_AUTOCOMPLETE = 25
THREAD_NAME_LIMIT = 100
BUTTON_LABEL_LIMIT = 80

ANSWER_COLOR = discord.Colour(0x2B6CB0)
ABSTAIN_COLOR = discord.Colour(0x718096)
ERROR_COLOR = discord.Colour(0xC53030)
ARTICLES_PER_PAGE = 10
ELLIPSIS = "…"
_MARKDOWN_LINK_TEXT = re.compile(r"[\[\]]")
# Discord pings for @everyone and @here wherever they stand, even glued to more letters
# ("@everyone_", "@here2"), so no word boundary here; and for <@id>, <@!id>, <@&role>, <#channel>.
_MENTION = re.compile(r"@(?:everyone|here)|<@[!&]?\d+>|<#\d+>")
# `[text](url)` is a masked link in embeds; without the "](" it is plain text.
_MASKED_LINK = re.compile(r"\]\(")
# Choice values for articles whose id is too long for Discord ("#" never appears in an article id).
ARTICLE_TOKEN_PREFIX = "#"


def shorten(text: str, limit: int) -> str:
    """The text cut to at most `limit` characters, at a word boundary when one is near, ending with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # Keep the last word when the cut falls just after it.
    if not text[limit - 1].isspace() and space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def duration(seconds: float) -> str:
    """'0.04 s' below a second, '2.3 s' above."""
    return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"


def neutralize_mentions(text: str) -> str:
    """Break @everyone, @here and <@id> syntax with a zero-width space so nothing can ping."""
    return _MENTION.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


def safe_text(text: str) -> str:
    """Article or member text made inert for Discord: no mention syntax survives."""
    return neutralize_mentions(text)


def escape_masked_links(text: str) -> str:
    """Article text whose `[text](url)` shows as written instead of as a link hiding where it goes.

    Escaping the "(" of every "](" leaves no link Discord can parse, however the brackets nest
    (discord.utils.escape_markdown escapes only the first "[" of a line, so a later link survives it).
    """
    return _MASKED_LINK.sub(r"]\\(", text)


def link_url(url: str) -> str | None:
    """An http(s) URL fit for a Markdown link (no spaces or parentheses to break it), else None."""
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


def linked_title(title: str, url: str, limit: int = 200) -> str:
    """`[title](url)` when the URL is usable, else the plain title; brackets and Markdown escaped."""
    text = discord.utils.escape_markdown(
        _MARKDOWN_LINK_TEXT.sub(lambda m: "(" if m.group(0) == "[" else ")", shorten(safe_text(title), limit))
    )
    target = link_url(url)
    return f"[{text}]({target})" if target else text


def source_line(citation: Citation) -> str:
    """`[n] linked title — paragraph p`."""
    return f"[{citation.n}] {linked_title(citation.title, citation.url)} — paragraph {citation.paragraph}"


def pack_lines(lines: Sequence[str], limit: int) -> list[str]:
    """Join lines into blocks of at most `limit` characters; a single over-long line is shortened."""
    blocks: list[str] = []
    current = ""
    for line in lines:
        line = shorten(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            blocks.append(current)
            current = line
        else:
            current = candidate
    if current:
        blocks.append(current)
    return blocks


def add_line_fields(embed: discord.Embed, name: str, lines: Sequence[str], max_fields: int = 5) -> None:
    """Add lines as one or more fields named `name`, `name (continued)`; never past the field limits."""
    room = min(max_fields, FIELD_COUNT_LIMIT - len(embed.fields))
    for i, block in enumerate(pack_lines(lines, FIELD_VALUE_LIMIT)[: max(room, 0)]):
        embed.add_field(name=shorten(name if i == 0 else f"{name} (continued)", FIELD_NAME_LIMIT), value=block, inline=False)


def fit_embeds(embeds: Sequence[discord.Embed]) -> list[discord.Embed]:
    """Shorten descriptions, then drop trailing fields, until the embeds fit Discord's 6,000-character total."""
    embeds = list(embeds)[:EMBEDS_PER_MESSAGE]
    for embed in embeds:
        if embed.title:
            embed.title = shorten(embed.title, TITLE_LIMIT)
        if embed.description:
            embed.description = shorten(embed.description, DESCRIPTION_LIMIT)
        if embed.footer and embed.footer.text:
            embed.set_footer(text=shorten(embed.footer.text, FOOTER_LIMIT), icon_url=embed.footer.icon_url)
    while sum(len(e) for e in embeds) > EMBEDS_TOTAL_LIMIT:
        excess = sum(len(e) for e in embeds) - EMBEDS_TOTAL_LIMIT
        longest = max(embeds, key=lambda e: len(e.description or ""))
        description = longest.description or ""
        if len(description) > 200:
            longest.description = shorten(description, max(200, len(description) - excess))
            continue
        with_fields = [e for e in embeds if e.fields]
        if with_fields:
            with_fields[-1].remove_field(len(with_fields[-1].fields) - 1)
            continue
        embeds.pop()
    return embeds


def answer_embed(answer: Answer, passages_searched: int, seconds: float) -> discord.Embed:
    """The embed members see for an answer: text with [n] markers, the sources, and what was searched."""
    description = escape_masked_links(safe_text(answer.text))
    if answer.note:
        description += f"\n\n*{safe_text(answer.note)}*"
    embed = discord.Embed(
        title=shorten(safe_text(answer.question), TITLE_LIMIT),
        description=shorten(description, DESCRIPTION_LIMIT),
        colour=ABSTAIN_COLOR if answer.abstained else ANSWER_COLOR,
    )
    if answer.citations:
        add_line_fields(embed, "Sources", [source_line(c) for c in answer.citations])
    elif answer.related:
        add_line_fields(embed, "Related reading", [source_line(c) for c in answer.related])
    embed.set_footer(text=f"Searched {passages_searched:,} passages · {duration(seconds)}")
    return fit_embeds([embed])[0]


def summary_embed(summary: Answer, title: str, url: str, length: str, seconds: float) -> discord.Embed:
    """A cited summary of one article."""
    description = escape_masked_links(safe_text(summary.text))
    if summary.note:
        description += f"\n\n*{safe_text(summary.note)}*"
    embed = discord.Embed(
        title=shorten(f"Summary: {safe_text(title)}", TITLE_LIMIT),
        url=link_url(url),
        description=shorten(description, DESCRIPTION_LIMIT),
        colour=ANSWER_COLOR,
    )
    if summary.citations:
        paragraphs = sorted({c.paragraph for c in summary.citations})
        add_line_fields(
            embed,
            "Sources",
            [f"[{c.n}] paragraph {c.paragraph}" for c in summary.citations]
            if len(paragraphs) > 1
            else [source_line(c) for c in summary.citations],
        )
    embed.set_footer(text=f"{length.capitalize()} summary · {duration(seconds)}")
    return fit_embeds([embed])[0]


def bold_quote(paragraph: str, quote_text: str) -> str:
    """The paragraph with the quoted sentences in bold, Markdown in the article escaped."""
    escape = discord.utils.escape_markdown
    at = paragraph.find(quote_text)
    if at < 0 or not quote_text:
        return escape_masked_links(escape(paragraph))
    before, after = paragraph[:at], paragraph[at + len(quote_text) :]
    return escape_masked_links(f"{escape(before)}**{escape(quote_text)}**{escape(after)}")


def window_around(paragraph: str, quote_text: str, limit: int) -> str:
    """At most `limit` characters of the paragraph, centred on the quote so it always shows."""
    if len(paragraph) <= limit:
        return paragraph
    at = max(paragraph.find(quote_text), 0)
    start = max(0, min(at - (limit - len(quote_text)) // 2, len(paragraph) - limit))
    piece = paragraph[start : start + limit - 2]
    return (ELLIPSIS if start > 0 else "") + piece + (ELLIPSIS if start + limit - 2 < len(paragraph) else "")


def passage_messages(citations: Sequence[Citation], paragraphs: Sequence[str]) -> list[list[discord.Embed]]:
    """Each cited passage in full (its paragraph, quote in bold), grouped into messages that fit the limits."""
    embeds = []
    for citation, paragraph in zip(citations, paragraphs):
        # Escaping can lengthen the text; leave room for it and for the bold markers.
        body = window_around(safe_text(paragraph), safe_text(citation.quote), DESCRIPTION_LIMIT - 600)
        embed = discord.Embed(
            title=shorten(f"[{citation.n}] {safe_text(citation.title)} — paragraph {citation.paragraph}", TITLE_LIMIT),
            url=link_url(citation.url),
            description=shorten(bold_quote(body, safe_text(citation.quote)), DESCRIPTION_LIMIT),
            colour=ANSWER_COLOR,
        )
        embeds.append(embed)
    messages: list[list[discord.Embed]] = []
    for embed in embeds:
        if messages and len(messages[-1]) < EMBEDS_PER_MESSAGE and sum(len(e) for e in messages[-1]) + len(embed) <= EMBEDS_TOTAL_LIMIT:
            messages[-1].append(embed)
        else:
            messages.append(fit_embeds([embed]))
    return messages


def articles_page(articles: Sequence[ArticleInfo], page: int) -> tuple[discord.Embed, int]:
    """One page of the article list and the number of pages."""
    pages = max(1, -(-len(articles) // ARTICLES_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = articles[page * ARTICLES_PER_PAGE : (page + 1) * ARTICLES_PER_PAGE]
    lines = [
        f"{page * ARTICLES_PER_PAGE + i + 1}. {linked_title(a.title, a.url, 150)} — {a.chunks} passages · added {a.added_at[:10]}"
        for i, a in enumerate(shown)
    ]
    embed = discord.Embed(
        title=f"Indexed articles ({len(articles):,})",
        description="\n".join(lines) if lines else "No articles are indexed yet. An admin can add some with /add.",
        colour=ANSWER_COLOR,
    )
    embed.set_footer(text=f"Page {page + 1} of {pages}")
    return fit_embeds([embed])[0], pages


def help_embed(articles: int, passages: int, indexed_at: str, admin_commands: bool = True) -> discord.Embed:
    """What the bot knows and how to ask it."""
    when = indexed_at.replace("T", " ")[:16] + " UTC" if indexed_at else "never"
    embed = discord.Embed(
        title="policybot",
        description=(
            f"I answer questions from **{articles:,} article{'s' if articles != 1 else ''}** "
            f"({passages:,} passages; last indexed {when}). Every answer cites the passages it comes from "
            "as [1], [2]; when the articles don't say, I say so instead of guessing."
        ),
        colour=ANSWER_COLOR,
    )
    embed.add_field(
        name="Ask",
        value=(
            "`/ask question:` — a cited answer, with **Show passages** to read the sources in full.\n"
            "Or mention me with your question, or send me a direct message.\n"
            "**Follow up in a thread** under an answer: questions there are read with the earlier ones."
        ),
        inline=False,
    )
    embed.add_field(
        name="Read",
        value=("`/summary article:` — a cited summary (start typing a title).\n`/articles` — everything I have read."),
        inline=False,
    )
    if admin_commands:
        embed.add_field(
            name="Admins (Manage Server)",
            value=(
                "`/add url:` — add a web page · `/add file:` — add an upload (.md, .txt, .html, .pdf, .docx) · "
                "`/remove article:` — take one out · `/reindex` — pick up changes in the corpus folder.\n"
                "`/feed add url:` — follow an RSS or Atom feed, its new items added as they appear · "
                "`/feed list` · `/feed remove feed:`."
            ),
            inline=False,
        )
    return fit_embeds([embed])[0]


def error_text(error_id: str, doing: str = "answering") -> str:
    """The short apology a member sees when something broke; the id finds the traceback in the log."""
    return f"Sorry, something went wrong while {doing}. Error id `{error_id}` — an admin can find the details in the bot's log."


def article_choice_value(article_id: str) -> str:
    """What an autocomplete choice sends back for an article, within Discord's 100 characters and naming it exactly:
    the id when it fits, else "#" and a hash of the id (never cut: a cut id could name another article)."""
    if len(article_id) <= CHOICE_LIMIT and not article_id.startswith(ARTICLE_TOKEN_PREFIX):
        return article_id
    return ARTICLE_TOKEN_PREFIX + hashlib.sha256(article_id.encode("utf-8")).hexdigest()[:40]


def article_choices(articles: Sequence[ArticleInfo]) -> list[discord.app_commands.Choice[str]]:
    """Autocomplete choices: the title shown, a value naming the article exactly sent back (see article_choice_value)."""
    return [
        discord.app_commands.Choice(
            name=shorten(a.title, CHOICE_LIMIT) or shorten(a.article_id, CHOICE_LIMIT), value=article_choice_value(a.article_id)
        )
        for a in articles[:CHOICES_PER_AUTOCOMPLETE]
    ]


def chosen_article(knowledge: KnowledgeBase, value: str) -> ArticleInfo:
    """The article an `article:` option names: exactly when the value came from a choice (an id, or the
    token of a long id), else as typed (an id or title, or the start of one); LookupError when none or several."""
    articles = knowledge.articles
    exact = next((a for a in articles if a.article_id == value), None)
    if exact is not None:
        return exact
    if value.startswith(ARTICLE_TOKEN_PREFIX):
        token = next((a for a in articles if article_choice_value(a.article_id) == value), None)
        if token is not None:
            return token
    return knowledge.find_article(value)
