"""Self-test of the Discord emulator: a real discord.py commands.Bot connects to it and is driven end to end."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import time
import zlib
from collections.abc import Awaitable, Callable

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.support.discord_emulator import DiscordEmulator, MessageFlag, Perm, zstandard

pytestmark = pytest.mark.timeout(60)

TOPICS = ["Water quotas", "Water pricing", "Housing permits", "School funding"]


class Confirm(discord.ui.View):
    """A one-button view whose click edits the message it sits on."""

    @discord.ui.button(label="Confirm", custom_id="confirm", style=discord.ButtonStyle.primary)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="Confirmed.", view=None)


class QuickBot(commands.Bot):
    """A Bot that re-IDENTIFYs at once after an invalidated session."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every non-initial IDENTIFY (Discord's identify rate limit);
        # the emulator has no such limit, and the test would wait for nothing.
        return None


def make_bot(*, members_intent: bool = False, message_content: bool = True) -> commands.Bot:
    """A tiny bot exercising what the emulator must support; it notes what it saw in `bot.seen`."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    intents.members = members_intent
    bot = QuickBot(command_prefix="!", intents=intents, guild_ready_timeout=0.05, allowed_mentions=discord.AllowedMentions.none())
    bot.seen = {"errors": [], "dm_channel_types": [], "threads_created": [], "resumed": 0, "contents": []}

    @bot.tree.command(name="echo", description="Echo text back after thinking")
    async def echo(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.defer(thinking=True)
        await asyncio.sleep(0.05)
        await interaction.edit_original_response(content=f"echo: {text}")

    @bot.tree.command(name="confirm", description="Ask for a confirmation, privately")
    async def confirm(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Are you sure?", view=Confirm(), ephemeral=True)

    async def topic_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=t, value=t) for t in TOPICS if current.lower() in t.lower()]

    @bot.tree.command(name="topic", description="Pick a topic")
    @app_commands.autocomplete(name=topic_choices)
    async def topic(interaction: discord.Interaction, name: str, detailed: bool = False, limit: int = 3) -> None:
        await interaction.response.send_message(f"topic={name} detailed={detailed} limit={limit}")
        await interaction.followup.send("See also the archive.", ephemeral=True)

    @bot.tree.command(name="upload", description="Read an attached file and answer with a file")
    async def upload(interaction: discord.Interaction, document: discord.Attachment) -> None:
        data = await document.read()
        await interaction.response.defer()
        upper = discord.File(fp=io.BytesIO(data.upper()), filename="upper.txt")
        await interaction.followup.send(f"{document.filename}: {len(data)} bytes", file=upper)

    @bot.tree.command(name="slow", description="Acknowledges too late")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        await interaction.response.send_message("too late")

    @bot.tree.command(name="long", description="Answers with more than 2000 characters")
    async def long(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("x" * 2001)

    @bot.tree.error
    async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        bot.seen["errors"].append(error)

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        bot.seen["contents"].append(message.content)
        if message.guild is None:
            bot.seen["dm_channel_types"].append(type(message.channel).__name__)
            await message.channel.send(f"dm: {message.content}")
        elif bot.user in message.mentions:
            if "thread" in message.content:
                reply = await message.reply("Let's take this to a thread.")
                thread = await reply.create_thread(name="Discussion")
                await thread.send("Answer in the thread.")
            else:
                await message.reply("pong")

    @bot.event
    async def on_thread_create(thread: discord.Thread) -> None:
        bot.seen["threads_created"].append(thread.id)

    @bot.event
    async def on_resumed() -> None:
        bot.seen["resumed"] += 1

    return bot


Scenario = Callable[[DiscordEmulator, commands.Bot], Awaitable[None]]


def run(scenario: Scenario, *, emulator_options: dict | None = None, **bot_options: bool) -> None:
    """Start an emulator and a bot, run the scenario, close both; fail on unknown routes or unclosed sessions.

    emulator.run_bot starts the bot with asyncio.create_task(bot.start(token)), waits for
    bot.wait_until_ready() and awaits bot.close() afterwards.
    """
    loop_errors: list[dict] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
        async with DiscordEmulator(**(emulator_options or {})) as emulator:
            with emulator.patched():
                bot = make_bot(**bot_options)
                async with emulator.run_bot(bot, "test-token"):
                    await scenario(emulator, bot)
            assert emulator.unknown_requests == []
        gc.collect()  # an unclosed aiohttp session reports itself when collected

    asyncio.run(main())
    assert loop_errors == []


def test_bot_connects_and_caches_the_guild() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        assert emulator.identify_count == 1
        assert emulator.identify_payload["intents"] == bot.intents.value
        assert bot.user.id == emulator.application_id and bot.application_id == emulator.application_id
        guild = bot.get_guild(emulator.guild_id)
        assert guild is not None and not guild.unavailable and guild.name == emulator.guild_name
        assert guild.default_role.id == emulator.guild_id
        assert guild.member_count == len(guild.members) == len(emulator.members)
        assert guild.chunked
        admin = guild.get_member(int(emulator.admin["id"]))
        assert admin.guild_permissions.administrator and admin.guild_permissions.manage_guild
        member = guild.get_member(int(emulator.member["id"]))
        assert member.guild_permissions.send_messages and not member.guild_permissions.manage_guild
        assert guild.me.guild_permissions.create_public_threads
        assert guild.get_channel(emulator.channel_id).name == "general"

    run(scenario, members_intent=True)


def test_sync_registers_global_and_guild_commands() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        synced = await bot.tree.sync()
        registered = {c["name"]: c for c in emulator.commands["global"]}
        assert set(registered) == {"echo", "confirm", "topic", "upload", "slow", "long"}
        assert {c.name: c.id for c in synced} == {name: int(c["id"]) for name, c in registered.items()}
        assert all(c["application_id"] == str(emulator.application_id) for c in registered.values())
        assert (await bot.tree.sync())[0].id == synced[0].id  # re-syncing keeps ids, as Discord does

        guild = discord.Object(emulator.guild_id)
        bot.tree.copy_global_to(guild=guild)
        guild_commands = await bot.tree.sync(guild=guild)
        assert {c.guild_id for c in guild_commands} == {emulator.guild_id}
        interaction = await emulator.slash("echo", {"text": "guild"})
        assert interaction.payload["data"]["guild_id"] == str(emulator.guild_id)
        assert (await interaction.wait_final(timeout=5))["content"] == "echo: guild"

    run(scenario)


def test_slash_command_defers_then_edits_the_original() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await bot.tree.sync()
        interaction = await emulator.slash("echo", {"text": "hello"}, user=emulator.admin)
        final = await interaction.wait_final(timeout=5)

        assert [c[0] for c in interaction.callbacks] == [5]  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
        assert 0 <= interaction.ack_latency < 1.0
        assert final["content"] == "echo: hello" and final is interaction.original
        assert not final["flags"] & MessageFlag.LOADING and not interaction.ephemeral
        assert final["interaction_metadata"]["user"]["id"] == emulator.admin["id"]
        assert final["webhook_id"] == str(emulator.application_id)
        placeholder, edit = emulator.messages
        assert placeholder["flags"] & MessageFlag.LOADING and placeholder["content"] == ""
        assert edit["action"] == "edit" and edit["request"]["content"] == "echo: hello"
        edit_request = next(r for r in emulator.requests if r.method == "PATCH")
        assert edit_request.time - interaction.acked_at >= 0.04  # the bot slept 50 ms between ack and edit
        assert emulator.failed_requests == []

    run(scenario)


def test_autocomplete_returns_the_bots_choices_and_options_arrive_typed() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await bot.tree.sync()
        choices = await emulator.autocomplete("topic", {"name": "water"}, focused="name")
        assert choices == [{"name": "Water quotas", "value": "Water quotas"}, {"name": "Water pricing", "value": "Water pricing"}]
        sent = emulator.interactions[max(emulator.interactions)].payload["data"]["options"]
        assert sent == [{"type": 3, "name": "name", "value": "water", "focused": True}]

        interaction = await emulator.slash("topic", {"name": "Water quotas", "detailed": True, "limit": 5})
        answer = await interaction.wait_final(timeout=5)
        assert answer["content"] == "topic=Water quotas detailed=True limit=5" and answer is interaction.original
        assert [c[0] for c in interaction.callbacks] == [4]  # CHANNEL_MESSAGE_WITH_SOURCE
        (followup,) = await emulator.wait_for(lambda: interaction.followups, 5)
        assert followup["content"] == "See also the archive." and followup["flags"] & MessageFlag.EPHEMERAL
        assert followup["interaction_metadata"]["original_response_message_id"] == answer["id"]
        with pytest.raises(TypeError):
            await emulator.slash("topic", {"name": "x", "limit": "five"})

    run(scenario)


def test_button_click_edits_the_ephemeral_message() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await bot.tree.sync()
        command = await emulator.slash("confirm")
        prompt = await command.wait_final(timeout=5)
        assert command.ephemeral and prompt["flags"] & MessageFlag.EPHEMERAL
        assert prompt["components"][0]["components"][0]["custom_id"] == "confirm"
        assert emulator.channel_messages(emulator.channel_id) == []  # ephemerals are not in the history

        click = await emulator.click(prompt, "confirm")
        await click.wait_acked()
        assert [c[0] for c in click.callbacks] == [7]  # UPDATE_MESSAGE
        assert command.original["content"] == "Confirmed." and command.original["components"] == []
        assert click.original is command.original

    run(scenario)


def test_mention_gets_a_reply_with_the_allowed_mentions_recorded() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        question = await emulator.send_message("ping?", mention_bot=True)
        assert question["content"].startswith(f"<@{emulator.application_id}>")
        reply = await emulator.wait_for(lambda: next((m for m in emulator.messages if m["content"] == "pong"), None), 5)
        assert reply["type"] == 19 and reply["message_reference"]["message_id"] == question["id"]
        assert reply["referenced_message"]["id"] == question["id"]
        # AllowedMentions.none(); discord.py leaves replied_user out when false, Discord's default then.
        assert reply["allowed_mentions"] == {"parse": []}
        assert reply["mentions"] == []  # so the replied-to user is not pinged
        assert emulator.get_message(int(reply["id"]))["allowed_mentions"] == {"parse": []}
        sent = next(r for r in emulator.requests if r.method == "POST" and r.path.endswith("/messages"))
        assert "allowed_mentions" not in sent.response  # bookkeeping only: Discord's messages have no such field
        assert reply["author"]["id"] == emulator.bot_user["id"] and reply["guild_id"] == str(emulator.guild_id)
        assert [m["id"] for m in emulator.channel_messages(emulator.channel_id)] == [question["id"], reply["id"]]

    run(scenario)


def test_a_second_guild_is_joined_and_served_apart_from_the_first() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        other_id = emulator.add_guild("Other Guild")  # the bot is connected: it joins (GUILD_CREATE)
        other = emulator.guilds[other_id]
        await emulator.wait_for(lambda: bot.get_guild(other_id) is not None, 5)
        assert {g.id for g in bot.guilds} == {emulator.guild_id, other_id}
        guild = bot.get_guild(other_id)
        assert guild.name == "Other Guild" and guild.default_role.id == other_id
        assert guild.get_channel(other.system_channel_id).name == "general"
        assert guild.me.guild_permissions.send_messages

        # The first guild's admin is only a member over there; another user manages it.
        emulator.add_member("admin", user=emulator.admin, guild_id=other_id)
        manager = emulator.add_member("manager", permissions=Perm.MANAGE_GUILD, guild_id=other_id)
        assert not emulator.permissions_for(int(emulator.admin["id"]), other.channels[other.system_channel_id]) & Perm.MANAGE_GUILD
        assert emulator.permissions_for(int(emulator.admin["id"])) & Perm.MANAGE_GUILD
        assert emulator.permissions_for(int(manager["id"]), guild_id=other_id) & Perm.MANAGE_GUILD
        assert not emulator.permissions_for(int(manager["id"])) & Perm.MANAGE_GUILD  # not in the first guild at all

        await bot.tree.sync()
        there = await emulator.slash("echo", {"text": "over there"}, user=manager, channel_id=other.system_channel_id)
        assert there.payload["guild_id"] == str(other_id) and there.payload["member"]["user"]["id"] == manager["id"]
        assert int(there.payload["member"]["permissions"]) & Perm.MANAGE_GUILD
        answer = await there.wait_final(timeout=5)
        assert answer["content"] == "echo: over there" and answer["guild_id"] == str(other_id)
        with pytest.raises(ValueError):
            await emulator.slash("echo", {"text": "x"}, user=emulator.member, channel_id=other.system_channel_id)

        question = await emulator.send_message("ping?", mention_bot=True, user=manager, channel_id=other.system_channel_id)
        reply = await emulator.wait_for(lambda: next((m for m in emulator.messages if m["content"] == "pong"), None), 5)
        assert reply["channel_id"] == str(other.system_channel_id) and reply["guild_id"] == str(other_id)
        assert reply["message_reference"]["message_id"] == question["id"]

        # A fresh IDENTIFY gets both guilds in READY.
        await emulator.invalidate_session()
        await emulator.wait_for(lambda: emulator.identify_count == 2 and emulator._session.guilds_sent, 10)
        ready = next(f for f in reversed(emulator._session.backlog) if f["t"] == "READY")
        assert {g["id"] for g in ready["d"]["guilds"]} == {str(emulator.guild_id), str(other_id)}

    run(scenario)


def test_reply_becomes_a_thread_and_the_answer_goes_into_it() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await emulator.send_message("open a thread please", mention_bot=True)
        answer = await emulator.wait_for(lambda: next((m for m in emulator.messages if m["content"] == "Answer in the thread."), None), 5)
        ((thread_id, thread),) = emulator.threads.items()
        reply = next(m for m in emulator.messages if m["content"].startswith("Let's take"))
        assert thread_id == int(reply["id"])  # a thread started from a message shares its id
        assert thread["type"] == 11 and thread["owner_id"] == emulator.bot_user["id"]
        assert thread["parent_id"] == str(emulator.channel_id) and thread["guild_id"] == str(emulator.guild_id)
        assert answer["channel_id"] == str(thread_id) and thread["message_count"] == 1
        assert emulator.get_message(int(reply["id"]))["flags"] & MessageFlag.HAS_THREAD
        await emulator.wait_for(lambda: bot.seen["threads_created"], 5)
        assert bot.seen["threads_created"] == [thread_id]
        assert isinstance(bot.get_channel(thread_id), discord.Thread)  # cached from THREAD_CREATE
        assert [m["id"] for m in emulator.channel_messages(thread_id)] == [answer["id"]]

    run(scenario)


def test_direct_message_and_dm_slash_command() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        stranger = emulator.add_user("stranger")
        await emulator.send_message("hello bot", user=stranger, dm=True)
        reply = await emulator.wait_for(lambda: next((m for m in emulator.messages if m["content"] == "dm: hello bot"), None), 5)
        dm_channel = emulator.dm_channel_for(stranger)
        assert reply["channel_id"] == dm_channel["id"] and "guild_id" not in reply
        assert bot.seen["dm_channel_types"] == ["DMChannel"]

        await bot.tree.sync()
        interaction = await emulator.slash("echo", {"text": "private"}, user=stranger, dm=True)
        assert "member" not in interaction.payload and interaction.payload["user"]["id"] == stranger["id"]
        assert (await interaction.wait_final(timeout=5))["content"] == "echo: private"

    run(scenario)


def test_dropped_connection_resumes_and_replays_missed_events() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await bot.tree.sync()
        await emulator.drop_connection()
        # Dispatched while the bot is away: kept in the session backlog and replayed on RESUME.
        missed = await emulator.send_message("are you there?", mention_bot=True)
        await emulator.wait_for(lambda: emulator.resume_count == 1, 10)
        await emulator.wait_for(lambda: any(m.get("message_reference", {}).get("message_id") == missed["id"] for m in emulator.messages), 5)
        assert emulator.identify_count == 1
        await emulator.wait_for(lambda: bot.seen["resumed"] == 1, 5)  # on_resumed runs as its own task

        interaction = await emulator.slash("echo", {"text": "still here"})
        assert (await interaction.wait_final(timeout=5))["content"] == "echo: still here"

        await emulator.drop_connection(code=None)  # no close frame: the TCP connection just dies
        await emulator.wait_for(lambda: emulator.resume_count == 2, 10)

        await emulator.request_reconnect()  # op 7: discord.py closes and resumes by itself
        await emulator.wait_for(lambda: emulator.resume_count == 3, 10)

        await emulator.invalidate_session()  # not resumable: discord.py must IDENTIFY again
        old_session = emulator._session
        await emulator.wait_for(lambda: emulator.identify_count == 2, 10)
        sequence = [frame["s"] for frame in old_session.backlog]
        assert sequence == list(range(1, len(sequence) + 1))  # strictly increasing, none skipped
        assert old_session.backlog[-1]["t"] == "RESUMED"
        await emulator.wait_for(lambda: bot.seen["resumed"] == 3, 5)
        await bot.wait_until_ready()
        interaction = await emulator.slash("echo", {"text": "new session"})
        assert (await interaction.wait_final(timeout=5))["content"] == "echo: new session"

    run(scenario)


def test_without_the_message_content_intent_only_mentions_carry_content() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await emulator.send_message("nobody mentioned")
        await emulator.send_message("ping?", mention_bot=True)
        await emulator.send_message("a private word", dm=True)
        await emulator.wait_for(lambda: len(bot.seen["contents"]) == 3, 5)
        assert bot.seen["contents"] == ["", f"<@{emulator.application_id}> ping?", "a private word"]

    run(scenario, message_content=False)


def test_a_privileged_intent_the_portal_did_not_enable_is_refused() -> None:
    async def main() -> None:
        async with DiscordEmulator(allowed_privileged_intents=0) as emulator:
            with emulator.patched(), pytest.raises(discord.PrivilegedIntentsRequired):
                async with emulator.run_bot(make_bot()):
                    pass
            assert emulator.gateway_connections[0].close_code_sent == 4014 and emulator.identify_count == 0

    asyncio.run(main())


def test_heartbeats_are_acknowledged() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        # Every heartbeat gets its ACK (checked together: a heartbeat may be mid-ACK at any instant).
        await emulator.wait_for(lambda: emulator.heartbeat_acks >= 3 and emulator.heartbeat_acks == emulator.heartbeats, 5)
        assert bot.latency < 1.0

    run(scenario, emulator_options={"heartbeat_interval_ms": 50})


def test_json_responses_carry_exactly_application_json() -> None:
    async def main() -> None:
        async with DiscordEmulator() as emulator, aiohttp.ClientSession() as session:
            auth = {"Authorization": "Bot test-token"}
            async with session.get(f"{emulator.api_base}/users/@me", headers=auth) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/json"
                assert (await response.json())["id"] == str(emulator.application_id)
            async with session.get(f"{emulator.api_base}/users/@me") as response:
                assert response.status == 401 and response.headers["Content-Type"] == "application/json"
            async with session.get(f"{emulator.api_base}/no/such/route", headers=auth) as response:
                assert response.status == 404 and response.headers["Content-Type"] == "application/json"
                assert await response.json() == {"message": "Unknown route", "code": 0}
            assert [r.path for r in emulator.unknown_requests] == ["/no/such/route"]

    asyncio.run(main())


def test_gateway_transport_compression() -> None:
    async def read_hello(emulator: DiscordEmulator, session: aiohttp.ClientSession, compress: str | None) -> tuple[aiohttp.WSMsgType, dict]:
        query = "?v=10&encoding=json" + (f"&compress={compress}" if compress else "")
        async with session.ws_connect(emulator.gateway_url + query) as ws:
            frame = await ws.receive(timeout=5)
            if frame.type is aiohttp.WSMsgType.TEXT:
                return frame.type, json.loads(frame.data)
            if compress == "zlib-stream":
                # As discord.py's zlib context reads it: a message ends with the sync-flush marker.
                assert frame.data.endswith(b"\x00\x00\xff\xff")
                return frame.type, json.loads(zlib.decompressobj().decompress(frame.data))
            return frame.type, json.loads(zstandard.ZstdDecompressor().decompressobj().decompress(frame.data))

    async def main() -> None:
        async with DiscordEmulator(heartbeat_interval_ms=1234) as emulator, aiohttp.ClientSession() as session:
            kind, hello = await read_hello(emulator, session, "zlib-stream")
            assert kind is aiohttp.WSMsgType.BINARY and hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 1234
            kind, hello = await read_hello(emulator, session, "zstd-stream")
            assert hello["op"] == 10 and kind is (aiohttp.WSMsgType.BINARY if zstandard else aiohttp.WSMsgType.TEXT)
            kind, hello = await read_hello(emulator, session, None)
            assert kind is aiohttp.WSMsgType.TEXT and hello["op"] == 10

    asyncio.run(main())

    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        # discord.py asks for zstd-stream when a zstd module is importable, else zlib-stream.
        requested = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
        connection = emulator.gateway_connections[0]
        assert connection.query["compress"] == requested == connection.compression
        assert connection.binary_frames_sent == connection.frames_sent > 0

    run(scenario)


def test_attachment_option_is_served_over_http_and_uploads_are_kept() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await bot.tree.sync()
        document = emulator.add_attachment("../policy notes.txt", b"reservoirs at a third")
        interaction = await emulator.slash("upload", {"document": document})
        answer = await interaction.wait_final(timeout=5)
        assert answer["content"] == "../policy notes.txt: 21 bytes"
        assert interaction.payload["data"]["resolved"]["attachments"][document["id"]] == document
        (uploaded,) = answer["attachments"]
        assert uploaded["filename"] == "upper.txt" and emulator.attachment_bytes(uploaded) == b"RESERVOIRS AT A THIRD"
        upload_request = next(r for r in emulator.requests if r.files)
        assert upload_request.json["attachments"][0]["filename"] == "upper.txt"

    run(scenario)


def test_discord_rules_are_enforced() -> None:
    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await bot.tree.sync()
        emulator.ack_deadline = 0.2  # /slow acknowledges after 0.3 s
        late = await emulator.slash("slow")
        await emulator.wait_for(lambda: late.errors, 5)
        assert late.callbacks == [] and "after dispatch" in late.errors[0]

        emulator.ack_deadline = 3.0
        too_long = await emulator.slash("long")
        await emulator.wait_for(lambda: too_long.errors, 5)
        assert too_long.callbacks == []
        rejected = [r for r in emulator.failed_requests if r.path.endswith("/callback")]
        assert [r.status for r in rejected] == [404, 400]
        assert rejected[1].response["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
        await emulator.wait_for(lambda: len(bot.seen["errors"]) == 2, 5)

        with pytest.raises(LookupError):
            await emulator.slash("not-synced")
        assert Perm.ADMINISTRATOR & emulator.permissions_for(int(emulator.admin["id"]))

    run(scenario)


def test_each_scenario_is_quick() -> None:
    started = time.perf_counter()

    async def scenario(emulator: DiscordEmulator, bot: commands.Bot) -> None:
        await bot.tree.sync()
        await (await emulator.slash("echo", {"text": "x"})).wait_final(timeout=5)

    run(scenario)
    assert time.perf_counter() - started < 5
