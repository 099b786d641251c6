"""Embeds stay inside every Discord limit, whatever the answer, title or passage looks like."""

from __future__ import annotations

import discord
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import render
from index.types import Answer, ArticleInfo, Citation


def citation(n: int, title: str = "Title", quote: str = "A quoted sentence.", url: str = "https://example.org/a") -> Citation:
    return Citation(n, f"article-{n}", title, url, n, quote, 0, len(quote), 0.9)


def within_limits(embeds: list[discord.Embed]) -> None:
    assert len(embeds) <= render.EMBEDS_PER_MESSAGE
    assert sum(len(e) for e in embeds) <= render.EMBEDS_TOTAL_LIMIT
    for embed in embeds:
        assert len(embed.title or "") <= render.TITLE_LIMIT
        assert len(embed.description or "") <= render.DESCRIPTION_LIMIT
        assert len(embed.fields) <= render.FIELD_COUNT_LIMIT
        for field in embed.fields:
            assert 0 < len(field.value) <= render.FIELD_VALUE_LIMIT
            assert len(field.name) <= render.FIELD_NAME_LIMIT
        assert len(embed.footer.text or "") <= render.FOOTER_LIMIT


def test_shorten_cuts_at_a_word_and_marks_the_cut():
    assert render.shorten("short", 10) == "short"
    cut = render.shorten("the quick brown fox jumps over the lazy dog", 20)
    assert len(cut) <= 20 and cut.endswith("…") and cut == "the quick brown fox…"
    assert len(render.shorten("x" * 5000, 256)) == 256


def test_answer_embed_has_text_sources_and_footer():
    answer = Answer("What happened?", "It happened [1]. Then more [2].", False, (citation(1), citation(2, "Second")))
    embed = render.answer_embed(answer, passages_searched=1234, seconds=0.42)
    assert embed.title == "What happened?"
    assert "[1]" in embed.description
    sources = embed.fields[0]
    assert sources.name == "Sources"
    assert "[1] [Title](https://example.org/a) — paragraph 1" in sources.value
    assert "[2] [Second]" in sources.value
    assert embed.footer.text == "Searched 1,234 passages · 0.42 s"


def test_very_long_titles_passages_and_many_sources_stay_within_limits():
    long_title = "T" * 3000
    quote = "word " * 3000
    answer = Answer("q" * 5000, "a " * 5000, False, tuple(citation(i, long_title, quote) for i in range(1, 60)))
    embed = render.answer_embed(answer, 10, 1.0)
    within_limits([embed])
    paragraphs = [quote] * 59
    messages = render.passage_messages(answer.citations, paragraphs)
    assert sum(len(m) for m in messages) == 59
    for embeds in messages:
        within_limits(embeds)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=6000), st.text(max_size=600), st.lists(st.text(max_size=1500), max_size=12))
def test_any_text_renders_within_limits(text, title, quotes):
    cites = tuple(citation(i + 1, title, q or "x") for i, q in enumerate(quotes))
    answer = Answer(title or "q", text or "a", not cites, cites)
    within_limits([render.answer_embed(answer, 5, 0.1)])
    within_limits([render.summary_embed(answer, title, "https://example.org", "medium", 0.1)])
    for embeds in render.passage_messages(cites, [q * 3 for q in quotes]):
        within_limits(embeds)


def test_mentions_in_answers_and_titles_cannot_ping():
    hostile = "@everyone look <@123456789012345678> and <@&987654321098765432> @here"
    answer = Answer(hostile, hostile, False, (citation(1, hostile, hostile),))
    embed = render.answer_embed(answer, 1, 0.1)
    for text in (embed.title, embed.description, embed.fields[0].value):
        assert "@everyone" not in text and "@here" not in text
        assert "<@123456789012345678>" not in text and "<@&987654321098765432>" not in text


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://example.org/a b", "https://example.org/a%20b"),
        ("https://example.org/x)(y", "https://example.org/x%29%28y"),
        ("javascript:alert(1)", None),
        ("ftp://example.org/file", None),
        ("", None),
        ("not a url", None),
    ],
)
def test_only_http_links_are_linked_and_cannot_break_markdown(url, expected):
    assert render.link_url(url) == expected


def test_titles_with_brackets_do_not_break_the_link():
    line = render.linked_title("A [bracketed] *title*", "https://example.org")
    assert line == "[A (bracketed) \\*title\\*](https://example.org)"


def test_passage_shows_the_quote_in_bold_even_in_a_huge_paragraph():
    quote = "THE QUOTED SENTENCE."
    paragraph = "before " * 2000 + quote + " after" * 2000
    [[embed]] = render.passage_messages([citation(1, quote=quote)], [paragraph])
    assert f"**{quote}**" in embed.description
    within_limits([embed])


def test_article_pages_and_autocomplete_choices():
    infos = [ArticleInfo(f"id-{i}" + "x" * 150, "Title " * 40, "https://e.org", 3, "2026-01-01T00:00:00", "", "h") for i in range(23)]
    embed, pages = render.articles_page(infos, 2)
    assert pages == 3 and embed.footer.text == "Page 3 of 3"
    assert embed.description.startswith("21. ")
    _, pages = render.articles_page([], 0)
    assert pages == 1
    choices = render.article_choices(infos * 2)
    assert len(choices) == 25
    assert all(len(c.name) <= 100 and len(c.value) <= 100 for c in choices)


def test_help_embed_says_what_is_known():
    embed = render.help_embed(3, 120, "2026-11-27T10:00:00+00:00")
    assert "3 articles" in embed.description and "120 passages" in embed.description
    assert "2026-11-27 10:00 UTC" in embed.description


@pytest.mark.parametrize("text", ["@everyone_ now", "@here2 now", "x@everyone", "@everyonehere", "<@!123> <#456> <@&789>"])
def test_mention_syntax_glued_to_more_text_is_broken_too(text):
    safe = render.safe_text(text)
    assert "@everyone" not in safe and "@here" not in safe and "<@" not in safe and "<#" not in safe
    assert safe.replace("\u200b", "") == text


def test_neutralising_mentions_is_the_discord_layers_job():
    import index.text

    assert not hasattr(index.text, "neutralize_mentions")
    assert render.neutralize_mentions("@here") == "@\u200bhere"


def test_masked_links_from_articles_show_as_text_in_answers_summaries_and_passages():
    text = "See [1] and [the official notice](https://evil.example/x) [1]. Also [a [nested] link](https://evil.example/y)."
    answer = Answer("What happened?", text, False, (citation(1, quote=text),))
    embeds = [
        render.answer_embed(answer, 1, 0.1),
        render.summary_embed(answer, "Title", "https://example.org", "short", 0.1),
        *[e for m in render.passage_messages(answer.citations, [text]) for e in m],
    ]
    for embed in embeds:
        assert "](" not in embed.description and "evil.example" in embed.description
    assert "[1]" in embeds[0].description and "[the official notice]\\(https://evil.example/x)" in embeds[0].description


def test_help_names_every_admin_command():
    admins = next(f.value for f in render.help_embed(3, 120, "").fields if f.name.startswith("Admins"))
    for command in ("/add url:", "/add file:", "/remove article:", "/reindex", "/feed add url:", "/feed list", "/feed remove"):
        assert command in admins


def test_choice_values_name_articles_exactly_even_past_100_characters():
    class Library:
        def __init__(self, infos):
            self.articles = tuple(infos)

        def find_article(self, value):
            raise LookupError(value)

    ids = ["long-" * 20 + "tariffs", "long-" * 20 + "quotas", "short"]
    infos = [ArticleInfo(i, f"Title {i[-7:]}", "", 1, "2026-01-01T00:00:00", "", "h") for i in ids]
    values = [c.value for c in render.article_choices(infos)]
    assert values[2] == "short" and len(set(values)) == 3 and all(len(v) <= render.CHOICE_LIMIT for v in values)
    library = Library(infos)
    assert [render.chosen_article(library, v).article_id for v in values] == ids
    with pytest.raises(LookupError):
        render.chosen_article(library, ids[0][:100])
