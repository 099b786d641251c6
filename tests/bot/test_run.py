"""`policybot run` and `policybot sync` as real processes against the emulator: start, answer, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tests.conftest import ROOT
from tests.support.discord_emulator import DiscordEmulator

pytestmark = pytest.mark.timeout(180)
TOKEN = "MTIz.bot-token-that-must-never-be-logged.XYZ"


def bot_environment(emulator: DiscordEmulator, corpus, index_dir, **extra: str) -> dict[str, str]:
    """The process environment of a bot pointed at the emulator; nothing inherited that could change settings."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN=TOKEN,
        DISCORD_API_URL=emulator.api_base,
        DISCORD_GATEWAY_URL=emulator.gateway_url,
        CORPUS_DIR=str(corpus),
        INDEX_DIR=str(index_dir),
        ASK_COOLDOWN_SECONDS="0",
        **extra,
    )
    return env


async def policybot(env: dict[str, str], *argv: str, cwd) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


def test_run_answers_then_stops_cleanly_on_sigterm_finishing_the_answer_in_flight(paths, tmp_path):
    corpus, index_dir = paths

    async def scenario():
        async with DiscordEmulator() as emulator:
            env = bot_environment(emulator, corpus, index_dir, DEV_GUILD_ID=str(emulator.guild_id))
            process = await policybot(env, "run", cwd=tmp_path)
            try:
                await emulator.wait_until_identified(timeout=120)
                # DEV_GUILD_ID syncs to that guild only; nothing global is ever synced at start.
                await emulator.wait_for(lambda: emulator.commands.get(emulator.guild_id), timeout=30)
                assert emulator.commands["global"] == []
                assert not any(r.method == "PUT" and r.path.endswith("/commands") and "/guilds/" not in r.path for r in emulator.requests)
                asked = await emulator.slash("ask", {"question": "What did Russia give North Korea?"})
                assert "[1]" in str((await asked.wait_final(timeout=60))["embeds"])

                # discord.py declares itself ready once no more guilds arrive for a while (2 s by default).
                await asyncio.sleep(2.5)
                question = await emulator.send_message("why did the Hanoi summit collapse?", mention_bot=True)
                await emulator.wait_for(lambda: emulator.typing, timeout=30)
                process.send_signal(signal.SIGTERM)
                reply = await emulator.wait_for(
                    lambda: next(
                        (m for m in emulator.bot_messages() if (m.get("message_reference") or {}).get("message_id") == question["id"]), None
                    ),
                    timeout=60,
                )
                code = await asyncio.wait_for(process.wait(), 60)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            out = (await process.stdout.read()).decode() + (await process.stderr.read()).decode()
            return code, out, reply

    code, out, reply = asyncio.run(scenario())
    assert code == 0, out
    assert reply["embeds"], "the answer in flight was sent before the bot stopped"
    assert "ready as policybot" in out and "shutting down on a signal" in out and "stopped" in out
    assert TOKEN not in out and "never-be-logged" not in out
    assert "Traceback" not in out and "ERROR" not in out


def test_sync_registers_the_commands_globally_or_in_one_guild(paths, tmp_path):
    corpus, index_dir = paths

    async def scenario():
        async with DiscordEmulator() as emulator:
            env = bot_environment(emulator, corpus, index_dir)
            guild = await policybot(env, "sync", "--guild", str(emulator.guild_id), cwd=tmp_path)
            guild_out, guild_err = await asyncio.wait_for(guild.communicate(), 120)
            everywhere = await policybot(env, "sync", cwd=tmp_path)
            global_out, global_err = await asyncio.wait_for(everywhere.communicate(), 120)
            return (
                guild.returncode,
                guild_out.decode(),
                guild_err.decode(),
                everywhere.returncode,
                global_out.decode(),
                global_err.decode(),
                emulator.commands,
            )

    guild_code, guild_out, guild_err, global_code, global_out, global_err, commands = asyncio.run(scenario())
    assert guild_code == 0, guild_err
    assert global_code == 0, global_err
    names = {"ask", "summary", "articles", "help", "reindex", "add", "remove", "feed"}
    assert {c["name"] for c in commands["global"]} == names
    guild_commands = [v for k, v in commands.items() if k != "global"]
    assert {c["name"] for c in guild_commands[0]} == names
    assert guild_out.startswith("Synced 8 commands to server ") and "/ask" in guild_out
    assert "global" in global_out
    assert TOKEN not in guild_out + guild_err + global_out + global_err


def test_a_refused_token_is_a_clear_error(paths, tmp_path):
    corpus, index_dir = paths

    async def scenario():
        async with DiscordEmulator(token="the-right-token") as emulator:
            process = await policybot(bot_environment(emulator, corpus, index_dir), "run", cwd=tmp_path)
            out, err = await asyncio.wait_for(process.communicate(), 120)
            return process.returncode, out.decode() + err.decode()

    code, out = asyncio.run(scenario())
    assert code == 1
    assert "Discord refused DISCORD_TOKEN" in out and "Traceback" not in out
    assert TOKEN not in out


def test_the_bot_starts_from_an_up_to_date_index_and_ctrl_c_stops_it_cleanly(paths, tmp_path):
    corpus, index_dir = paths
    (corpus / "ferries.md").write_text("---\ntitle: Ferry fares\n---\n\nIsland ferry fares stay frozen for a year.\n")

    async def scenario():
        async with DiscordEmulator() as emulator:
            process = await policybot(bot_environment(emulator, corpus, index_dir), "run", cwd=tmp_path)
            try:
                await emulator.wait_until_identified(timeout=120)
                process.send_signal(signal.SIGINT)
                code = await asyncio.wait_for(process.wait(), 60)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            return code, (await process.stderr.read()).decode()

    code, err = asyncio.run(scenario())
    assert code == 0, err
    assert "shutting down on a signal" in err and "stopped" in err and "Traceback" not in err
    assert "indexed the corpus: 1 added, 0 updated, 0 removed" in err
