"""Starting and stopping the Discord bot: build the dependencies once, connect, shut down cleanly on a signal."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import aiohttp
import discord
import yarl

from bot.app import PolicyBot
from bot.services import NoModel, build_services
from bot.settings import Settings, SettingsError
from index.indexing.embedding import Embedder

log = logging.getLogger("policybot." + __name__)


def point_at_discord(settings: Settings) -> None:
    """Use another API and gateway endpoint when configured (a rate-limit proxy; the emulator in the tests).

    discord.py reads these class attributes for every request and connection; there is no
    per-client option, so the entry point sets them once before the client starts.
    """
    if settings.discord.api_url:
        discord.http.Route.BASE = settings.discord.api_url
    if settings.discord.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord.gateway_url)


class DiscordUnreachableError(ConnectionError):
    """Discord's API (or DISCORD_API_URL) cannot be reached; the message is one line."""


def without_voice_warnings() -> None:
    """The bot never joins a voice channel: discord.py's warnings that voice libraries are missing are noise."""
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False


def require_token(settings: Settings) -> str:
    """The bot token, or a clear error saying where to put it."""
    if not settings.discord.token:
        raise SettingsError(
            "DISCORD_TOKEN is not set: put your bot's token in .env (see .env.example), or use `policybot chat` for the terminal session"
        )
    return settings.discord.token


async def serve(bot: PolicyBot, token: str) -> None:
    """Run the bot until it fails or SIGINT/SIGTERM asks it to stop; then finish in-flight work and close."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with bot:
            running = asyncio.create_task(bot.start(token))
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if running in done:
                running.result()
                return
            log.info("shutting down on a signal")
            await bot.close()
            await running
    except discord.LoginFailure:
        raise SettingsError("Discord refused DISCORD_TOKEN; copy the bot token again from the developer portal") from None
    except (OSError, aiohttp.ClientConnectionError, TimeoutError) as exc:
        # Connection refused, no route, DNS failure, TLS failure, timeout: one line, not a traceback.
        raise DiscordUnreachableError(f"cannot reach Discord at {discord.http.Route.BASE}: {exc or type(exc).__name__}") from None
    except discord.PrivilegedIntentsRequired:
        raise SettingsError(
            "enable the Message Content intent for the bot in the Discord developer portal "
            "(Bot → Privileged Gateway Intents); mentions and DMs need it"
        ) from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_bot(settings: Settings, embedder: Embedder) -> None:
    """`policybot run`: the Discord bot over the index (built first if missing)."""
    token = require_token(settings)
    discord.utils.setup_logging(level=logging.getLevelName(settings.host.log_level.upper()))
    without_voice_warnings()
    point_at_discord(settings)
    # Like the terminal session, the bot starts from an index that matches the corpus folder.
    services = build_services(settings, embedder, update_index=True)
    # The model and index are ~500k long-lived objects; a full garbage collection walking them
    # stalls the bot for 0.3-0.4 s (docs/measurements/discord.md). Freezing them keeps collections short.
    gc.collect()
    gc.freeze()
    asyncio.run(serve(PolicyBot(services), token))


async def sync_commands(settings: Settings, guild_id: int | None) -> list[str]:
    """Register the slash commands with Discord, globally or in one guild; returns their names."""
    token = require_token(settings)
    without_voice_warnings()
    point_at_discord(settings)
    services = build_services(settings, NoModel(), load_index=False)
    bot = PolicyBot(services)
    try:
        async with bot:
            await bot.login(token)
            if guild_id is None:
                synced = await bot.tree.sync()
            else:
                guild = discord.Object(id=guild_id)
                bot.tree.copy_global_to(guild=guild)
                synced = await bot.tree.sync(guild=guild)
    except discord.LoginFailure:
        raise SettingsError("Discord refused DISCORD_TOKEN; copy the bot token again from the developer portal") from None
    except (OSError, aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise DiscordUnreachableError(f"cannot reach Discord at {discord.http.Route.BASE}: {exc or type(exc).__name__}") from None
    return [command.name for command in synced]
