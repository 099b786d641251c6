"""End to end: the real PolicyBot (discord.py) over a real index, talking HTTP and WebSocket to the emulator.

Each test runs its own event loop (asyncio.run), emulator and bot over a private copy of a
library indexed once per session with the real packaged model.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.records import AnswerLog
from bot.services import engine_factory
from index.knowledge import KnowledgeBase
from tests.conftest import write_article
from tests.support.discord_bot import bot_settings, discord_world
from tests.support.discord_emulator import DiscordEmulator, Perm

pytestmark = pytest.mark.timeout(120)


def embed_text(message: dict) -> str:
    """Everything visible in a message's embeds, as one string."""
    parts = []
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(parts)


def custom_ids(message: dict) -> list[str]:
    return [c["custom_id"] for row in message.get("components") or [] for c in row.get("components") or [] if "custom_id" in c]


def no_problems(emulator) -> None:
    """Discord would have accepted every request the bot made."""
    assert emulator.unknown_requests == []
    assert [f"{r} {r.response}" for r in emulator.failed_requests] == []
    assert all(not i.errors for i in emulator.interactions.values())


def test_ask_is_acknowledged_quickly_and_answered_with_citations(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            asked = await emulator.slash("ask", {"question": "Why did the Hanoi summit collapse?"})
            acked = await asked.wait_acked()
            assert acked - asked.dispatched_at < 3.0
            assert asked.deferred and not asked.ephemeral
            answer = await asked.wait_final()
            text = embed_text(answer)
            assert "[1]" in text and "Sources" in text
            assert "North Korea" in text and "paragraph" in text
            assert "Searched" in answer["embeds"][0]["footer"]["text"]
            ids = custom_ids(answer)
            assert any(i.startswith("pb:passages:") for i in ids) and any(i.startswith("pb:thread:") for i in ids)

            # Show passages: privately, each quoted passage in full.
            shown = await emulator.click(answer, next(i for i in ids if i.startswith("pb:passages:")), user=emulator.member)
            passages = await shown.wait_final()
            assert shown.ephemeral and passages["flags"] & 64
            assert "**" in embed_text(passages)

            # 👍 then 👎 from the same member: one vote, changed.
            answer_id = int(ids[0].split(":")[2])
            for vote in ("up", "down"):
                click = await emulator.click(answer, f"pb:vote:{answer_id}:{vote}", user=emulator.member)
                await click.wait_final()
                assert click.ephemeral
            no_problems(emulator)

    asyncio.run(scenario())
    log = AnswerLog(index_dir / "bot.sqlite")
    [(user, vote)] = log.votes(1)
    assert vote == -1


def test_summary_autocompletes_titles_and_summarises(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            started = time.perf_counter()
            choices = await emulator.autocomplete("summary", {"article": "north"}, focused="article")
            assert time.perf_counter() - started < 3.0
            assert len(choices) == 1 and "North Korea" in choices[0]["name"]
            assert await emulator.autocomplete("summary", {"article": ""}, focused="article")
            summary = await emulator.slash("summary", {"article": choices[0]["value"], "length": "short"})
            message = await summary.wait_final()
            assert message["embeds"][0]["title"].startswith("Summary: ")
            assert "[1]" in message["embeds"][0]["description"]

            unknown = await emulator.slash("summary", {"article": "no such article at all"})
            reply = await unknown.wait_final()
            assert "No indexed article matches" in reply["content"]

            # The member's text is echoed, but inert.
            hostile = await emulator.slash("summary", {"article": "@everyone <@&1> nothing like this"})
            echoed = (await hostile.wait_final())["content"]
            assert "No indexed article matches" in echoed and "nothing like this" in echoed
            assert "@everyone" not in echoed and "<@&1>" not in echoed
            no_problems(emulator)

    asyncio.run(scenario())


def test_reindex_is_refused_to_members_and_run_for_admins(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            command = next(c for c in emulator.commands["global"] if c["name"] == "reindex")
            assert str(command["default_member_permissions"]) == str(1 << 5)  # Manage Server

            refused = await emulator.slash("reindex", user=emulator.member)
            reply = await refused.wait_final()
            assert refused.ephemeral and "manage this server" in reply["content"]

            write_article(
                corpus,
                "lighthouses.md",
                "Automated lighthouses",
                "The coast guard automated the last staffed lighthouse on the northern cape in 2019.",
            )
            run = await emulator.slash("reindex", user=emulator.admin)
            final = await run.wait_final(lambda m: m["content"].startswith("Reindexed"), timeout=60)
            assert "1 added, 0 updated, 0 removed" in final["content"]
            assert run.ephemeral

            asked = await emulator.slash("ask", {"question": "When was the last staffed lighthouse automated?"})
            answer = await asked.wait_final()
            assert "2019" in embed_text(answer) and "Automated lighthouses" in embed_text(answer)
            no_problems(emulator)

    asyncio.run(scenario())


def test_an_allow_listed_role_may_administer(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        emulator_role = {}

        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            role = emulator.add_role("librarians")
            emulator_role["id"] = role
            librarian = emulator.add_member("librarian", roles=[role])
            object.__setattr__(bot.services.settings.discord, "admin_role_id", role)
            run = await emulator.slash("reindex", user=librarian)
            final = await run.wait_final(lambda m: m["content"].startswith("Reindexed"), timeout=60)
            assert "0 added" in final["content"]

    asyncio.run(scenario())


def test_a_mention_gets_a_reply_and_a_thread_takes_follow_ups(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            question = await emulator.send_message("what did Russia give North Korea?", mention_bot=True)
            reply = await emulator.wait_for(
                lambda: next(
                    (
                        m
                        for m in emulator.bot_messages(emulator.channel_id)
                        if (m.get("message_reference") or {}).get("message_id") == question["id"]
                    ),
                    None,
                )
            )
            assert "[1]" in embed_text(reply)
            sent = next(m for m in emulator.messages if m["id"] == reply["id"] and m["action"] == "create")
            assert sent["allowed_mentions"]["parse"] == [] and sent["allowed_mentions"].get("replied_user") is False
            assert any(channel == emulator.channel_id for channel, _ in emulator.typing)

            thread_id = next(i for i in custom_ids(reply) if i.startswith("pb:thread:"))
            opened = await emulator.click(reply, thread_id, user=emulator.member)
            note = await opened.wait_final()
            assert opened.ephemeral and "<#" in note["content"]
            [thread] = emulator.threads.values()
            assert int(thread["owner_id"]) == emulator.application_id

            # A second click points to the same thread instead of opening another.
            again = await emulator.click(reply, thread_id, user=emulator.admin)
            await again.wait_final()
            assert len(emulator.threads) == 1

            await emulator.send_message("and what about China?", channel_id=int(thread["id"]))
            follow_up = await emulator.wait_for(
                lambda: next((m for m in emulator.bot_messages(int(thread["id"])) if m.get("embeds")), None)
            )
            assert "China" in embed_text(follow_up)
            turns = bot.services.conversations.history(f"discord-thread:{thread['id']}")
            assert [t.question for t in turns] == ["what did Russia give North Korea?", "and what about China?"]

            # Plain chatter in the channel, without a mention, is left alone.
            await emulator.send_message("lunch anyone?")
            await asyncio.sleep(0.3)
            assert not any("lunch" in embed_text(m) for m in emulator.bot_messages())
            no_problems(emulator)

    asyncio.run(scenario())


def test_direct_messages_are_answered_unless_turned_off(paths, embedder):
    corpus, index_dir = paths

    async def scenario(allow: bool):
        async with discord_world(bot_settings(corpus, index_dir, allow_dms=allow), embedder) as (emulator, bot):
            await emulator.send_message("How many warheads does North Korea have?", dm=True)
            dm = emulator.dm_channel_for(emulator.member)
            reply = await emulator.wait_for(lambda: next(iter(emulator.bot_messages(int(dm["id"]))), None))
            no_problems(emulator)
            return reply

    answered = asyncio.run(scenario(True))
    assert "[1]" in embed_text(answered)
    refused = asyncio.run(scenario(False))
    assert "don't answer direct messages" in refused["content"] and not refused["embeds"]


def test_mention_syntax_in_questions_and_articles_pings_nobody(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            asked = await emulator.slash("ask", {"question": "@everyone why did the harbour pilots strike? @here"})
            answer = await asked.wait_final()
            await emulator.send_message("@everyone <@&1> why did the harbour pilots go on strike?", mention_bot=True, user=emulator.admin)
            await emulator.wait_for(lambda: len([m for m in emulator.bot_messages() if m.get("message_reference")]) >= 1)
            text = embed_text(answer)
            assert "pension" in text
            for message in emulator.messages:
                assert message["allowed_mentions"] is None or message["allowed_mentions"]["parse"] == []
                shown = message["content"] + embed_text(message)
                assert "@everyone" not in shown and "@here" not in shown
                assert "<@123456789012345678>" not in shown and "<@&223456789012345678>" not in shown
                assert message["mention_everyone"] is False and message["mentions"] == [] and message["mention_roles"] == []
            # discord.py sends the client's AllowedMentions.none() with every interaction response too.
            bodies = [
                r.json
                for r in emulator.requests
                if r.method in ("POST", "PATCH")
                and isinstance(r.json, dict)
                and ("content" in r.json or "embeds" in r.json or "data" in r.json)
            ]
            for body in bodies:
                allowed = body.get("allowed_mentions") or (body.get("data") or {}).get("allowed_mentions")
                if allowed is not None:
                    assert allowed["parse"] == []
            no_problems(emulator)

    asyncio.run(scenario())


class BrokenKnowledge(KnowledgeBase):
    """A knowledge base whose answering fails, as a bug deep in the engine would."""

    def ask(self, question, history=()):
        raise RuntimeError("simulated failure inside the answer engine")


def test_an_exception_in_a_command_gives_a_friendly_message_with_an_error_id(paths, embedder, caplog):
    corpus, index_dir = paths
    settings = bot_settings(corpus, index_dir)
    broken = BrokenKnowledge(corpus, index_dir, embedder, engine_factory(settings, embedder))

    async def scenario():
        async with discord_world(settings, embedder, knowledge=broken) as (emulator, bot):
            asked = await emulator.slash("ask", {"question": "Why did the Hanoi summit collapse?"})
            reply = await asked.wait_final(lambda m: "Sorry" in m["content"])
            await emulator.send_message("why did the summit collapse?", mention_bot=True)
            mention_reply = await emulator.wait_for(lambda: next((m for m in emulator.bot_messages() if "Sorry" in m["content"]), None))
            no_problems(emulator)
            return reply, mention_reply

    with caplog.at_level(logging.ERROR, logger="policybot"):
        reply, mention_reply = asyncio.run(scenario())
    for message in (reply, mention_reply):
        error_id = message["content"].split("`")[1]
        assert len(error_id) == 8
        logged = [r for r in caplog.records if error_id in r.getMessage()]
        assert logged and logged[0].exc_info and "simulated failure" in str(logged[0].exc_info[1])
    assert reply["flags"] & 64  # the apology is private


def test_the_bot_resumes_after_the_gateway_drops_and_still_answers(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            await emulator.drop_connection()
            await emulator.wait_for(lambda: emulator.resume_count == 1, timeout=30)
            asked = await emulator.slash("ask", {"question": "What is the small deal?"})
            answer = await asked.wait_final()
            assert "[1]" in embed_text(answer)
            await emulator.drop_connection(code=None)
            await emulator.wait_for(lambda: emulator.resume_count == 2, timeout=30)
            question = await emulator.send_message("what is the small deal?", mention_bot=True)
            await emulator.wait_for(
                lambda: any((m.get("message_reference") or {}).get("message_id") == question["id"] for m in emulator.bot_messages())
            )
            assert emulator.identify_count == 1
            no_problems(emulator)

    asyncio.run(scenario())


def test_articles_are_paginated_and_help_says_what_is_known(paths, embedder):
    corpus, index_dir = paths
    for i in range(12):
        write_article(corpus, f"extra-{i:02}.md", f"Extra article {i:02}", f"Article {i} is about canal locks and barges.")

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            await asyncio.to_thread(bot.services.knowledge.reindex)
            listing = await emulator.slash("articles")
            first = await listing.wait_final()
            assert first["embeds"][0]["footer"]["text"] == "Page 1 of 2"
            next_id = next(i for i in custom_ids(first) if i.endswith(":next"))
            turned = await emulator.click(first, next_id)
            await turned.wait_acked()
            page_two = await emulator.wait_for(
                lambda: (lambda m: m if m["embeds"][0]["footer"]["text"] == "Page 2 of 2" else None)(emulator.get_message(int(first["id"])))
            )
            assert page_two["embeds"][0]["description"].startswith("11. ")

            shown = await emulator.slash("help")
            help_message = await shown.wait_final()
            assert shown.ephemeral and "18 articles" in help_message["embeds"][0]["description"]
            no_problems(emulator)

    asyncio.run(scenario())


def test_admins_add_and_remove_articles_and_broken_uploads_are_refused(paths, embedder, tmp_path):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            upload = emulator.add_attachment(
                "Tidal Power.md",
                b"---\ntitle: Tidal power in the estuary\n---\n\nThe estuary barrage will generate 240 megawatts from the tides.\n",
            )
            added = await emulator.slash("add", {"file": upload}, subcommand="file", user=emulator.admin)
            final = await added.wait_final(lambda m: m["content"].startswith("Added"), timeout=60)
            assert "Tidal power in the estuary" in final["content"] and "tidal-power.md" in final["content"]
            assert (corpus / "tidal-power.md").is_file()

            again = await emulator.slash(
                "add",
                {"file": emulator.add_attachment("copy.md", emulator.attachment_bytes(upload))},
                subcommand="file",
                user=emulator.admin,
            )
            assert "already indexed" in (await again.wait_final())["content"]

            for name, data, reason in [
                ("image.png", b"\x89PNG\r\n\x1a\n", "not an article file"),
                ("binary.md", b"\x00\x01\x02" * 100, "binary"),
                ("../../escape.md", b"Escaped text about dams and reservoirs in the northern valleys.", "Added"),
                ("latin1.txt", "Caf\u00e9 prices in Li\u00e8ge rose after the dairy tax.".encode("latin-1"), "Added"),
                ("ping.md", b"---\ntitle: Cranes @everyone_ and @here2\n---\n\nThe port bought four electric cranes.\n", "Added"),
            ]:
                tried = await emulator.slash("add", {"file": emulator.add_attachment(name, data)}, subcommand="file", user=emulator.admin)
                reply = await tried.wait_final(lambda m: not m["content"].startswith(("Saved", "Reindexing")), timeout=60)
                assert reason in reply["content"], reply["content"]
            # The /add reply names the article by its title, made inert.
            assert "Cranes @\u200beveryone_ and @\u200bhere2" in reply["content"]
            assert all("@everyone" not in m["content"] and "@here" not in m["content"] for m in emulator.messages)
            assert not (corpus.parent / "escape.md").exists() and (corpus / "escape.md").is_file()

            refused = await emulator.slash(
                "add", {"file": emulator.add_attachment("x.md", b"text")}, subcommand="file", user=emulator.member
            )
            assert "manage this server" in (await refused.wait_final())["content"]

            choices = await emulator.autocomplete("remove", {"article": "tidal"}, focused="article", user=emulator.admin)
            removed = await emulator.slash("remove", {"article": choices[0]["value"]}, user=emulator.admin)
            final = await removed.wait_final(lambda m: m["content"].startswith("Removed"), timeout=60)
            assert "1 removed" in final["content"]
            assert not (corpus / "tidal-power.md").exists()
            [trashed] = (index_dir / "removed").glob("*tidal-power.md")
            # The article by name, and where its file went relative to the data folder: no host path.
            assert final["content"].startswith("Removed “Tidal power in the estuary”.")
            assert f"`removed/{trashed.name}` in the bot's data folder" in final["content"]
            assert str(index_dir.parent) not in final["content"] and str(corpus.parent) not in final["content"]
            asked = await emulator.slash("ask", {"question": "How many megawatts will the estuary barrage generate?"})
            assert "240" not in embed_text(await asked.wait_final())
            no_problems(emulator)

    asyncio.run(scenario())


def test_a_member_asking_too_fast_is_told_to_wait(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir, ask_cooldown_seconds=30), embedder) as (emulator, bot):
            first = await emulator.slash("ask", {"question": "What is the small deal?"})
            second = await emulator.slash("ask", {"question": "What about China?"})
            reply = await second.wait_final()
            assert second.ephemeral and "please wait" in reply["content"]
            assert "[1]" in embed_text(await first.wait_final())
            other = await emulator.slash("ask", {"question": "What about China?"}, user=emulator.admin)
            assert (await other.wait_final())["embeds"]

    asyncio.run(scenario())


def test_the_event_loop_never_stalls_during_a_reindex(paths, embedder):
    corpus, index_dir = paths
    for i in range(40):
        write_article(
            corpus,
            f"bulk-{i:02}.md",
            f"Bulk article {i}",
            "\n\n".join(
                f"Paragraph {p} of article {i} discusses tariffs, ports, fisheries and budget rules in region {i * p}." for p in range(12)
            ),
        )

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            stalls: list[float] = []
            done = asyncio.Event()

            async def watch_the_loop():
                while not done.is_set():
                    before = time.perf_counter()
                    await asyncio.sleep(0.01)
                    stalls.append(time.perf_counter() - before - 0.01)

            watcher = asyncio.create_task(watch_the_loop())
            run = await emulator.slash("reindex", user=emulator.admin)
            asked = await emulator.slash("ask", {"question": "What is the small deal?"}, user=emulator.member)
            answer = await asked.wait_final(timeout=60)
            final = await run.wait_final(lambda m: m["content"].startswith("Reindexed"), timeout=120)
            done.set()
            await watcher
            assert "40 added" in final["content"]
            assert "[1]" in embed_text(answer)
            progress_edits = [r.time for r in emulator.requests if r.method == "PATCH" and run.token in r.path]
            gaps = [b - a for a, b in zip(progress_edits, progress_edits[1:-1])]
            assert all(gap >= 0.9 for gap in gaps), gaps
            return max(stalls)

    longest = asyncio.run(scenario())
    assert longest < 0.25, f"the event loop stalled for {longest * 1000:.0f} ms"


TIDAL_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Estuary barrage approved</title>
<meta name="author" content="Lena Fischer"></head><body><nav>Home | Energy | Climate</nav><article>
<h1>Estuary barrage approved</h1>
<p>The regional assembly approved a tidal barrage across the Severn estuary on Tuesday. The barrage will generate
{megawatts} megawatts from the tides and protect low-lying villages from storm surges.</p>
<p>Construction is expected to take seven years. Fishing groups fear the structure will change the silt flows that
feed the mudflats where migrating birds rest, and have asked for an independent study.</p>
<p>The energy ministry says the project will cost four billion euros, paid for by a levy on electricity bills over
thirty years, and that it will supply power to about six hundred thousand homes.</p>
</article><footer>Subscribe to our newsletter</footer></body></html>"""


def test_admins_add_a_web_page_by_url_and_re_adding_a_changed_page_replaces_it(paths, embedder):
    from tests.support.web_server import send, web_server

    corpus, index_dir = paths
    page = {"megawatts": "240"}

    async def scenario(base, routes):
        settings = bot_settings(corpus, index_dir, fetch_allow_loopback=True)
        async with discord_world(settings, embedder) as (emulator, bot):
            added = await emulator.slash("add", {"url": f"{base}/tidal?utm_source=discord"}, subcommand="url", user=emulator.admin)
            final = await added.wait_final(lambda m: m["content"].startswith(("Added", "Nothing")), timeout=60)
            assert final["content"].startswith("Added “Estuary barrage approved”"), final["content"]
            asked = await emulator.slash("ask", {"question": "How many megawatts will the estuary barrage generate?"})
            assert "240" in embed_text(await asked.wait_final())

            again = await emulator.slash("add", {"url": f"{base}/tidal"}, subcommand="url", user=emulator.admin)
            assert "already indexed" in (await again.wait_final(lambda m: "Fetching" not in m["content"]))["content"]

            page["megawatts"] = "320"
            changed = await emulator.slash("add", {"url": f"{base}/tidal"}, subcommand="url", user=emulator.admin)
            final = await changed.wait_final(lambda m: m["content"].startswith(("Updated", "Nothing")), timeout=60)
            assert final["content"].startswith("Updated “Estuary barrage approved”"), final["content"]
            asked = await emulator.slash("ask", {"question": "How many megawatts will the estuary barrage generate?"})
            text = embed_text(await asked.wait_final())
            assert "320" in text and "240" not in text

            for url, reason in [
                ("http://169.254.169.254/latest/meta-data/", "link-local"),
                ("file:///etc/passwd", "only http and https"),
                (f"{base}/missing", "404"),
            ]:
                tried = await emulator.slash("add", {"url": url}, subcommand="url", user=emulator.admin)
                reply = await tried.wait_final(lambda m: m["content"].startswith("Nothing"), timeout=30)
                assert reason in reply["content"], reply["content"]
            no_problems(emulator)
        return [a for a in (corpus).glob("*.md") if a.name.startswith("estuary")]

    with web_server() as (base, routes):
        routes.add("/tidal", lambda h: send(h, 200, TIDAL_PAGE.format(**page).encode()))
        files = asyncio.run(scenario(base, routes))
    assert [f.name for f in files] == ["estuary-barrage-approved.md"]
    text = files[0].read_text()
    assert "url: http://127.0.0.1:" in text and "/tidal\n" in text and "utm_source" not in text
    assert "fetched: " in text and "author: Lena Fischer" in text


def test_loopback_pages_are_refused_unless_the_setting_allows_them(paths, embedder):
    from tests.support.web_server import web_server

    corpus, index_dir = paths

    async def scenario(base):
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            tried = await emulator.slash("add", {"url": f"{base}/article"}, subcommand="url", user=emulator.admin)
            return (await tried.wait_final(lambda m: m["content"].startswith("Nothing"), timeout=30))["content"]

    with web_server() as (base, routes):
        reply = asyncio.run(scenario(base))
        assert "loopback" in reply and routes.hits == []


def test_admins_subscribe_to_a_feed_whose_new_items_become_answerable(paths, embedder):
    from tests.support.web_server import send, web_server

    corpus, index_dir = paths
    items = ["tidal"]

    def feed(base):
        entries = "".join(f"<item><title>{name}</title><link>{base}/{name}</link></item>" for name in items)
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Energy desk</title>{entries}</channel></rss>'.encode()

    async def scenario(base):
        settings = bot_settings(corpus, index_dir, fetch_allow_loopback=True, feed_check_minutes=0)
        async with discord_world(settings, embedder) as (emulator, bot):
            refused = await emulator.slash("feed", {"url": f"{base}/feed.xml"}, subcommand="add", user=emulator.member)
            assert "manage this server" in (await refused.wait_final())["content"]

            added = await emulator.slash("feed", {"url": f"{base}/feed.xml"}, subcommand="add", user=emulator.admin)
            final = await added.wait_final(lambda m: m["content"].startswith(("Subscribed to", "Not")), timeout=60)
            assert "Subscribed to “Energy desk”" in final["content"] and "Estuary barrage approved" in final["content"]

            # The next check finds a reindex running (which read the corpus before the new item was
            # written): it waits for that one and then indexes, instead of leaving the item unindexed.
            items.append("wind")
            running = bot.services.knowledge._reindex_lock
            running.acquire()
            try:
                checking = asyncio.create_task(bot.get_cog("Feeds").check_all())
                await emulator.wait_for(lambda: (corpus / "offshore-wind-auction.md").is_file(), timeout=30)
                await asyncio.sleep(0.5)
                assert not checking.done()
            finally:
                running.release()
            checks = await asyncio.wait_for(checking, 60)
            assert [a.article.title for a in checks[0].added] == ["Offshore wind auction"]
            assert any(a.title == "Offshore wind auction" for a in bot.services.knowledge.articles)
            asked = await emulator.slash("ask", {"question": "How many gigawatts were offered in the offshore wind auction?"})
            assert "Offshore wind auction" in embed_text(await asked.wait_final())

            listing = await emulator.slash("feed", subcommand="list", user=emulator.admin)
            assert "Energy desk" in (await listing.wait_final())["content"]
            choices = await emulator.autocomplete("feed", {"feed": "energy"}, focused="feed", subcommand="remove", user=emulator.admin)
            removed = await emulator.slash("feed", {"feed": choices[0]["value"]}, subcommand="remove", user=emulator.admin)
            assert "Unsubscribed" in (await removed.wait_final())["content"]
            no_problems(emulator)

    wind = TIDAL_PAGE.replace("Estuary barrage approved", "Offshore wind auction").replace(
        "approved a tidal barrage across the Severn estuary", "offered four gigawatts of offshore wind leases in an auction"
    )
    with web_server() as (base, routes):
        routes.add("/feed.xml", lambda h: send(h, 200, feed(base), "application/rss+xml"))
        routes.add("/tidal", lambda h: send(h, 200, TIDAL_PAGE.format(megawatts="240").encode()))
        routes.add("/wind", lambda h: send(h, 200, wind.format(megawatts="900").encode()))
        asyncio.run(scenario(base))


def test_an_article_added_during_a_reindex_waits_for_it_and_is_then_indexed(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            running = bot.services.knowledge._reindex_lock
            running.acquire()  # as if another reindex were running
            try:
                upload = emulator.add_attachment(
                    "canals.md", b"---\ntitle: Canal tolls\n---\n\nThe canal authority doubled tolls for coal barges in March.\n"
                )
                added = await emulator.slash("add", {"file": upload}, subcommand="file", user=emulator.admin)
                await added.wait_final(lambda m: "waiting for the reindex" in m["content"], timeout=30)
            finally:
                running.release()
            final = await added.wait_final(lambda m: m["content"].startswith("Added"), timeout=60)
            assert "Canal tolls" in final["content"]
            assert sorted(p.name for p in corpus.glob("canals*.md")) == ["canals.md"]
            assert any(a.article_id == "canals" for a in bot.services.knowledge.articles)
            no_problems(emulator)

    asyncio.run(scenario())


def test_replying_to_an_answer_without_mentioning_the_bot_is_not_a_question(paths, embedder):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            question = await emulator.send_message("what is the small deal?", mention_bot=True)
            reply = await emulator.wait_for(
                lambda: next(
                    (m for m in emulator.bot_messages() if (m.get("message_reference") or {}).get("message_id") == question["id"]), None
                )
            )
            await emulator.send_message("thanks!", reply_to=reply)
            await asyncio.sleep(0.5)
            assert len([m for m in emulator.bot_messages() if m.get("message_reference")]) == 1
            no_problems(emulator)

    asyncio.run(scenario())


def test_autocomplete_values_name_articles_exactly_even_when_ids_share_100_characters(paths, embedder):
    corpus, index_dir = paths
    stem = "long-" * 20  # article ids are file stems: these two share their first 100 characters
    write_article(corpus, f"{stem}tariffs.md", "Steel tariffs explained", "The steel tariff rises to twelve percent next spring.")
    write_article(corpus, f"{stem}quotas.md", "Herring quotas explained", "Herring quotas fall by a fifth under the new fisheries plan.")

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            await asyncio.to_thread(bot.services.knowledge.reindex)
            choices = await emulator.autocomplete("summary", {"article": "explained"}, focused="article")
            values = {c["name"]: c["value"] for c in choices}
            assert set(values) == {"Steel tariffs explained", "Herring quotas explained"}
            assert len(set(values.values())) == 2 and all(len(v) <= 100 for v in values.values())
            summary = await emulator.slash("summary", {"article": values["Herring quotas explained"], "length": "short"})
            assert (await summary.wait_final())["embeds"][0]["title"] == "Summary: Herring quotas explained"

            choices = await emulator.autocomplete("remove", {"article": "explained"}, focused="article", user=emulator.admin)
            value = next(c["value"] for c in choices if c["name"] == "Steel tariffs explained")
            removed = await emulator.slash("remove", {"article": value}, user=emulator.admin)
            final = await removed.wait_final(lambda m: m["content"].startswith(("Removed", "Nothing")), timeout=60)
            assert final["content"].startswith("Removed “Steel tariffs explained”"), final["content"]
            assert not (corpus / f"{stem}tariffs.md").exists() and (corpus / f"{stem}quotas.md").exists()
            no_problems(emulator)

    asyncio.run(scenario())


ADMIN_COMMANDS = [
    ("reindex", {}, None),
    ("remove", {"article": "carbon-tax"}, None),
    ("add", {"url": "https://example.org/article"}, "url"),
    ("feed", {"url": "https://example.org/feed.xml"}, "add"),
    ("feed", {}, "list"),
]


def test_only_the_home_servers_change_the_library_every_server_shares(paths, embedder):
    corpus, index_dir = paths
    emulator = DiscordEmulator()
    neighbour = emulator.add_guild("Neighbouring Server")
    neighbour_admin = emulator.add_member("neighbour-admin", permissions=Perm.MANAGE_GUILD, guild_id=neighbour)
    channel = emulator.guilds[neighbour].system_channel_id
    settings = bot_settings(corpus, index_dir, home_guild_ids=(emulator.guild_id,))

    async def scenario():
        async with discord_world(settings, embedder, emulator=emulator) as (_, bot):
            assert {g.id for g in bot.guilds} == {emulator.guild_id, neighbour}
            for name, options, subcommand in ADMIN_COMMANDS:
                refused = await emulator.slash(name, options, subcommand=subcommand, user=neighbour_admin, channel_id=channel)
                reply = await refused.wait_final()
                assert refused.ephemeral and "only my home server" in reply["content"], (name, reply["content"])
            assert (corpus / "carbon-tax.md").is_file() and bot.services.feeds.feeds() == []

            # The neighbours still read the library.
            asked = await emulator.slash("ask", {"question": "What is the carbon tax dividend?"}, user=neighbour_admin, channel_id=channel)
            assert "[1]" in embed_text(await asked.wait_final())
            # Members of the home server may change it.
            removed = await emulator.slash("remove", {"article": "carbon-tax"}, user=emulator.admin)
            final = await removed.wait_final(lambda m: m["content"].startswith("Removed"), timeout=60)
            assert "1 removed" in final["content"] and not (corpus / "carbon-tax.md").exists()
            no_problems(emulator)

    asyncio.run(scenario())


def test_without_home_servers_admin_commands_stop_when_the_bot_joins_a_second_server(paths, embedder, caplog):
    corpus, index_dir = paths

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), embedder) as (emulator, bot):
            run = await emulator.slash("reindex", user=emulator.admin)
            await run.wait_final(lambda m: m["content"].startswith("Reindexed"), timeout=60)

            emulator.add_guild("Neighbouring Server")
            await emulator.wait_for(lambda: len(bot.guilds) == 2)
            for name, options, subcommand in ADMIN_COMMANDS:
                refused = await emulator.slash(name, options, subcommand=subcommand, user=emulator.admin)
                reply = await refused.wait_final()
                assert refused.ephemeral and "HOME_GUILD_IDS" in reply["content"], (name, reply["content"])
            assert (corpus / "carbon-tax.md").is_file()
            no_problems(emulator)

    with caplog.at_level(logging.WARNING, logger="policybot"):
        asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("policybot")]
    assert any("HOME_GUILD_IDS is empty" in message for message in warnings), warnings


def test_an_add_whose_indexing_fails_says_the_file_is_saved_but_not_indexed(tmp_path, fake_embedder, monkeypatch):
    from index.indexing.indexer import update_index
    from tests.conftest import write_small_corpus

    corpus, index_dir = write_small_corpus(tmp_path / "corpus"), tmp_path / "data" / "index"
    update_index(corpus, index_dir, fake_embedder)[1].close()

    def broken_reindex(self, *args, **kwargs):
        raise OSError(f"No space left on device: {index_dir}")

    async def scenario():
        async with discord_world(bot_settings(corpus, index_dir), fake_embedder) as (emulator, bot):
            monkeypatch.setattr(KnowledgeBase, "reindex", broken_reindex)
            text = b"---\ntitle: Tidal power\n---\n\nThe estuary barrage will generate 240 megawatts.\n"
            upload = emulator.add_attachment("Tidal Power.md", text)
            added = await emulator.slash("add", {"file": upload}, subcommand="file", user=emulator.admin)
            final = await added.wait_final(lambda m: not m["content"].startswith(("Saved tidal-power.md;", "Fetching")), timeout=60)
            return final["content"]

    reply = asyncio.run(scenario())
    assert reply == "Saved tidal-power.md but it is not indexed yet: indexing failed (the bot's log says why); run /reindex."
    assert (corpus / "tidal-power.md").is_file()
