"""An in-process Discord API emulator (REST v10 + JSON gateway) that a real discord.py bot connects to.

The emulator is an aiohttp server on 127.0.0.1 with a random port. It holds a small world (one
application and its bot user, one guild with roles, members and a text channel; add_guild() adds
more guilds the bot is in), speaks the REST
routes and the gateway protocol discord.py uses, and lets a test play the users: type a slash
command, click a button, send a message, drop the WebSocket. Everything the bot does over HTTP is
recorded so tests can assert on it.

    emulator = DiscordEmulator()
    await emulator.start()
    with emulator.patched():
        async with emulator.run_bot(bot):
            await bot.tree.sync()
            interaction = await emulator.slash("ask", {"question": "What is the quota?"})
            answer = await interaction.wait_final()
    await emulator.close()

Where real Discord enforces a rule that a bot can break (message and embed limits, the 3-second
interaction acknowledgement deadline, acknowledging twice, privileged intents, send permissions,
command payload validation), the emulator enforces it too and answers with Discord's error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import json
import logging
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

try:  # discord.py asks for zstd-stream transport compression when zstandard is installed.
    import zstandard
except ImportError:  # pragma: no cover - depends on the environment
    zstandard = None

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
INTERACTION_ACK_DEADLINE = 3.0
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class Perm:
    """Permission bits the emulator computes with (Discord's values)."""

    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = discord.Permissions.all().value


# What a new guild's @everyone may do, roughly Discord's defaults.
EVERYONE_PERMISSIONS = (
    Perm.CREATE_INSTANT_INVITE
    | Perm.ADD_REACTIONS
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CONNECT
    | Perm.SPEAK
    | Perm.CHANGE_NICKNAME
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.CREATE_PRIVATE_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
)
# What the bot's managed role grants: what a Q&A bot is invited with.
BOT_PERMISSIONS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.SEND_MESSAGES_IN_THREADS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.ADD_REACTIONS
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.USE_APPLICATION_COMMANDS
)
DM_PERMISSIONS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.ADD_REACTIONS
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.USE_APPLICATION_COMMANDS
)


class Intent:
    """Gateway intent bits the emulator honours."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


class AppFlag:
    """Application flags: the *_LIMITED ones say which privileged intents the portal enabled."""

    GATEWAY_PRESENCE_LIMITED = 1 << 13
    GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
    GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
    APPLICATION_COMMAND_BADGE = 1 << 23


class MessageFlag:
    """Message flag bits the emulator sets or reads."""

    SUPPRESS_EMBEDS = 1 << 2
    HAS_THREAD = 1 << 5
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_COMPONENTS_V2 = 1 << 15


class MessageType:
    """Message types the emulator produces."""

    DEFAULT = 0
    REPLY = 19
    CHAT_INPUT_COMMAND = 20
    CONTEXT_MENU_COMMAND = 23


class InteractionType:
    """Interaction types (INTERACTION_CREATE d.type)."""

    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType:
    """Interaction callback types (POST /interactions/{id}/{token}/callback body.type)."""

    PONG = 1
    CHANNEL_MESSAGE = 4
    DEFERRED_CHANNEL_MESSAGE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9


# Which callbacks Discord accepts for which interaction type.
ALLOWED_CALLBACKS = {
    InteractionType.APPLICATION_COMMAND: {4, 5, 9},
    InteractionType.MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
    InteractionType.AUTOCOMPLETE: {8},
    InteractionType.MODAL_SUBMIT: {4, 5, 6, 7},
}

# Application command option types.
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
)

TEXT_CHANNEL, DM_CHANNEL, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 11, 12
THREAD_TYPES = {10, PUBLIC_THREAD, PRIVATE_THREAD}

COMMAND_NAME = re.compile(r"[-_'\w]{1,32}")
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


def iso_now() -> str:
    """The current UTC time as Discord's ISO-8601 timestamp."""
    return dt.datetime.now(dt.UTC).isoformat()


# Kept on stored messages for tests, never sent: Discord's message objects have no such field.
PRIVATE_MESSAGE_KEYS = frozenset({"allowed_mentions"})


def public(payload: Any) -> Any:
    """A deep copy of a payload as Discord would send it: messages lose the emulator's private keys."""
    if isinstance(payload, dict):
        is_message = "author" in payload and "channel_id" in payload and "timestamp" in payload
        return {k: public(v) for k, v in payload.items() if not (is_message and k in PRIVATE_MESSAGE_KEYS)}
    if isinstance(payload, list):
        return [public(item) for item in payload]
    return payload


def json_response(payload: Any, status: int = 200) -> web.Response:
    """A JSON response whose Content-Type is exactly ``application/json``.

    discord.py (http.json_or_text) compares the header with ``== 'application/json'``; aiohttp's
    web.json_response sends ``application/json; charset=utf-8``, for which discord.py hands the raw
    text to its callers instead of the parsed body. Passing the header (not content_type=) keeps
    aiohttp from appending a charset.
    """
    return web.Response(status=status, body=json.dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"})


class ApiError(Exception):
    """An error answer in Discord's JSON shape: {"message", "code", "errors"?}."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None):
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict:
        """The JSON error body."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def form_error(path: Sequence[str | int], code: str, message: str) -> ApiError:
    """A 400 Invalid Form Body (50035) whose `errors` point at one field."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(list(path)):
        errors = {str(key): errors}
    return ApiError(400, 50035, "Invalid Form Body", errors)


@dataclasses.dataclass
class EmulatedGuild:
    """One guild the bot is in: its roles (the @everyone role's id is the guild's), members and channels."""

    id: int
    name: str
    owner_id: int = 0
    system_channel_id: int = 0
    roles: dict[int, dict] = dataclasses.field(default_factory=dict)
    members: dict[int, dict] = dataclasses.field(default_factory=dict)  # by user id
    channels: dict[int, dict] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RequestRecord:
    """One HTTP request the emulator received and what it answered."""

    method: str
    path: str  # below /api/v10 (e.g. "/channels/1/messages"); the raw path for other routes
    query: dict[str, str]
    json: Any  # the JSON body, or a multipart body's payload_json; None without a body
    time: float  # time.perf_counter() on arrival
    files: list[dict] = dataclasses.field(default_factory=list)  # field, filename, content_type, data
    status: int | None = None
    response: Any = None  # the JSON the emulator answered with (None for 204)

    def __str__(self) -> str:
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        return f"{self.method} {self.path}{query} -> {self.status}"


class Interaction:
    """One interaction the emulator dispatched, and everything the bot answered to it."""

    def __init__(self, emulator: DiscordEmulator, payload: dict, dispatched_at: float):
        self._emulator = emulator
        self.payload = payload  # the INTERACTION_CREATE d
        self.id: int = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.dispatched_at = dispatched_at
        self.callbacks: list[tuple[int, dict | None, float]] = []
        self.choices: list[dict] | None = None  # autocomplete answer
        self.modal: dict | None = None  # a modal the bot opened
        self.errors: list[str] = []  # requests for this interaction that Discord would reject
        self.message_id: int | None = int(payload["message"]["id"]) if "message" in payload else None
        self.original_id: int | None = None
        self.followup_ids: list[int] = []
        self._touched_ids: list[int] = []  # messages created or edited through this interaction, oldest first

    def __repr__(self) -> str:
        name = self.payload.get("data", {}).get("name") or self.payload.get("data", {}).get("custom_id")
        return f"<Interaction id={self.id} type={self.type} {name!r} callbacks={[c[0] for c in self.callbacks]}>"

    @property
    def acked_at(self) -> float | None:
        """perf_counter time of the first callback, None before it."""
        return self.callbacks[0][2] if self.callbacks else None

    @property
    def ack_latency(self) -> float | None:
        """Seconds from dispatch to the first callback."""
        return None if self.acked_at is None else self.acked_at - self.dispatched_at

    @property
    def original(self) -> dict | None:
        """The current @original message (updated by edits), None if there is none."""
        return None if self.original_id is None else self._emulator.get_message(self.original_id)

    @property
    def followups(self) -> list[dict]:
        """Current versions of the follow-up messages, oldest first."""
        found = (self._emulator.get_message(mid) for mid in self.followup_ids)
        return [message for message in found if message is not None]

    @property
    def ephemeral(self) -> bool:
        """Whether the first callback asked for an ephemeral response (flags 64)."""
        if not self.callbacks:
            return False
        data = self.callbacks[0][1] or {}
        return bool(int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)

    @property
    def deferred(self) -> bool:
        """Whether the first callback was a deferral (type 5 or 6)."""
        return bool(self.callbacks) and self.callbacks[0][0] in (5, 6)

    @property
    def expired(self) -> bool:
        """Whether the acknowledgement deadline passed without a callback."""
        return not self.callbacks and time.perf_counter() - self.dispatched_at > self._emulator.ack_deadline

    def final_messages(self) -> list[dict]:
        """Messages showing this interaction's answer: @original first (once past 'thinking'), then follow-ups.

        Only messages the interaction created or edited count, so a component's message after a
        deferred update (type 6) is not an answer until the bot edits it.
        """
        ids = dict.fromkeys([self.original_id, *self.followup_ids])
        found = []
        for message_id in ids:
            if message_id is None or message_id not in self._touched_ids:
                continue
            message = self._emulator.get_message(message_id)
            if message is None or message["flags"] & MessageFlag.LOADING:
                continue
            if message["content"] or message["embeds"] or message["attachments"]:
                found.append(message)
        return found

    async def wait_acked(self, timeout: float = 5) -> float:
        """Wait for the first callback; returns its perf_counter time."""
        await self._emulator.wait_for(lambda: self.acked_at is not None, timeout, what=f"an acknowledgement of {self!r}")
        assert self.acked_at is not None
        return self.acked_at

    async def wait_final(self, predicate: Callable[[dict], Any] | None = None, timeout: float = 30) -> dict:
        """Wait for a visible answer (the 'thinking' @original replaced, or a follow-up) and return it.

        With a predicate, wait for an answer message for which predicate(message) is truthy.
        """

        def answered() -> dict | None:
            return next((m for m in self.final_messages() if predicate is None or predicate(m)), None)

        return await self._emulator.wait_for(answered, timeout, what=f"a final answer to {self!r}")


class _GatewayConnection:
    """One WebSocket a client opened on the gateway."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request):
        self.ws = ws
        self.transport = request.transport
        self.query = dict(request.query)
        self.compression: str | None = None
        self.opened_at = time.perf_counter()
        self.closed_code: int | None = None  # the code the socket finally closed with (the client's reply)
        self.close_code_sent: int | None = None  # the code the emulator closed with, if it closed first
        self.session: _GatewaySession | None = None
        self.frames_sent = 0
        self.binary_frames_sent = 0
        self._lock = asyncio.Lock()  # compression state and frame order need one writer at a time
        self._compress = self._make_compressor(self.query.get("compress"))

    def _make_compressor(self, requested: str | None) -> Callable[[bytes], bytes] | None:
        """A per-connection stream compressor for the transport compression the client asked for."""
        if requested == "zlib-stream":
            compressor = zlib.compressobj()
            self.compression = requested
            # Every gateway message ends with a sync flush (00 00 ff ff), which is how clients find message ends.
            return lambda data: compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if requested == "zstd-stream" and zstandard is not None:
            stream = zstandard.ZstdCompressor().compressobj()
            self.compression = requested
            # One zstd stream per connection, flushed at a block boundary after each message.
            return lambda data: stream.compress(data) + stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        # No (or an unavailable) transport compression: plain text frames, which discord.py also reads.
        return None

    @property
    def open(self) -> bool:
        """Whether frames can still be sent."""
        return not self.ws.closed

    async def send(self, payload: dict) -> bool:
        """Send one gateway payload; False if the socket is already gone."""
        text = json.dumps(payload)
        async with self._lock:
            if self.ws.closed:
                return False
            try:
                if self._compress is not None:
                    await self.ws.send_bytes(self._compress(text.encode("utf-8")))
                    self.binary_frames_sent += 1
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError, aiohttp.ClientConnectionResetError):
                return False
            self.frames_sent += 1
            return True

    async def close(self, code: int, message: str = "") -> None:
        """Close the WebSocket with a close code, as Discord does."""
        if not self.ws.closed:
            self.close_code_sent = code
            await self.ws.close(code=code, message=message.encode())


class _GatewaySession:
    """A gateway session: its sequence numbers and every dispatch, so RESUME can replay."""

    def __init__(self, session_id: str, intents: int, identify: dict):
        self.id = session_id
        self.intents = intents
        self.identify = identify
        self.seq = 0
        self.backlog: list[dict] = []
        self.connection: _GatewayConnection | None = None
        self.lock = asyncio.Lock()  # one dispatch at a time: sequence numbers go out in order
        self.guilds_sent = False


class DiscordEmulator:
    """Discord's REST API and gateway on 127.0.0.1, with one guild (more with add_guild), for end-to-end bot tests.

    `guild_id`, `roles`, `members`, `channels` and `channel_id` are the first guild's; world-building
    methods take `guild_id=` to act on another one.
    """

    def __init__(
        self,
        *,
        heartbeat_interval_ms: int = 41250,
        ack_deadline: float = INTERACTION_ACK_DEADLINE,
        token: str | None = None,
        allowed_privileged_intents: int = Intent.PRIVILEGED,
        echo_own_messages: bool = True,
        bot_name: str = "policybot",
    ):
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.ack_deadline = ack_deadline  # seconds the bot has to acknowledge an interaction
        self.token = token  # None accepts any token
        self.allowed_privileged_intents = allowed_privileged_intents
        # Discord sends a bot MESSAGE_CREATE/UPDATE/DELETE for its own (non-ephemeral) messages too.
        self.echo_own_messages = echo_own_messages

        self._next_snowflake = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

        # records
        self.requests: list[RequestRecord] = []
        self.unknown_requests: list[RequestRecord] = []
        self.interactions: dict[int, Interaction] = {}
        self.messages: list[dict] = []  # snapshots of bot messages after each create/edit, newest last
        self.user_messages: list[dict] = []  # messages the emulated users sent
        self.deleted_message_ids: list[int] = []
        self.commands: dict[Any, list[dict]] = {"global": []}
        self.threads: dict[int, dict] = {}
        self.typing: list[tuple[int, float]] = []  # (channel_id, perf_counter) of typing indicators
        self.reactions: list[tuple[int, str, float]] = []  # (message_id, emoji, perf_counter) the bot added
        self.gateway_connections: list[_GatewayConnection] = []
        self.gateway_received: list[dict] = []  # every payload clients sent on the gateway
        self.identify_payload: dict | None = None
        self.presence: dict | None = None
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeats = 0
        self.heartbeat_acks = 0

        self._messages: dict[int, dict] = {}
        self._channel_message_ids: dict[int, list[int]] = {}
        self._interactions_by_token: dict[str, Interaction] = {}
        self._attachment_files: dict[int, tuple[bytes, str]] = {}
        self._sessions: dict[str, _GatewaySession] = {}
        self._session: _GatewaySession | None = None
        self._live_connections: set[_GatewayConnection] = set()
        self._background_tasks: set[asyncio.Task] = set()  # referenced so they are not collected mid-flight
        self._routes = self._route_table()

        # the world
        self.application_id = self._snowflake()
        self.bot_user: dict = {
            "id": str(self.application_id),
            "username": bot_name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "system": False,
            "public_flags": 0,
            "banner": None,
            "accent_color": None,
        }
        self.owner_user = self._new_user("app-owner")
        self.users: dict[int, dict] = {self.application_id: self.bot_user}
        self.guilds: dict[int, EmulatedGuild] = {}
        self.dm_channels: dict[int, dict] = {}
        self._dm_channel_by_user: dict[int, int] = {}
        self.guild_id = self.add_guild("Policy Test Guild")
        first = self.guilds[self.guild_id]
        self.roles: dict[int, dict] = first.roles
        self.members: dict[int, dict] = first.members
        self.channels: dict[int, dict] = first.channels
        self.bot_role_id = next(role_id for role_id, role in first.roles.items() if role.get("tags"))
        self.channel_id = first.system_channel_id
        self.admin: dict = self.add_member("admin", permissions=Perm.ADMINISTRATOR | Perm.MANAGE_GUILD)
        self.member: dict = self.add_member("member")

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:{port}"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """The REST base discord.py's Route.BASE must point at."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The gateway WebSocket URL (READY's resume_gateway_url too)."""
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        # Uploads arrive as multipart bodies of up to Discord's attachment limit; aiohttp's default cap is 1 MiB.
        app = web.Application(client_max_size=ATTACHMENT_SIZE_LIMIT * 10 + 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Close every gateway connection and stop the server."""
        for connection in list(self._live_connections):
            await connection.close(1001, "emulator shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def patched(self) -> Iterator[DiscordEmulator]:
        """Point discord.py's REST base, webhook routes and gateway at the emulator; restore on exit.

        discord.webhook.async_ builds its routes with discord.http.Route, so Route.BASE covers the
        interaction callback and webhook routes as well. A plain Client never asks GET /gateway/bot;
        it connects to DiscordWebSocket.DEFAULT_GATEWAY (a yarl.URL) and later to READY's
        resume_gateway_url.
        """
        if not self.port:
            raise RuntimeError("start() the emulator before patching discord.py")
        saved_base = discord.http.Route.BASE
        saved_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            discord.http.Route.BASE = saved_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved_gateway

    @contextlib.asynccontextmanager
    async def run_bot(
        self,
        bot: discord.Client,
        token: str = "test-token",
        ready_timeout: float = 10,
    ) -> AsyncIterator[discord.Client]:
        """Start `bot` against the emulator (inside patched()), wait until it is ready, close it after.

        If the bot stops before it is ready (a refused intent, a bad token) or crashes while the
        test drives it, its exception is raised.
        """
        task = asyncio.create_task(bot.start(token), name="emulated-bot")
        ready = asyncio.create_task(bot.wait_until_ready())
        try:
            done, _ = await asyncio.wait({task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
                raise RuntimeError("the bot stopped before it was ready")
            if ready not in done:
                raise TimeoutError(self.describe(f"the bot was not ready within {ready_timeout}s"))
            yield bot
        except BaseException:
            await self._stop_bot(bot, task)
            raise
        finally:
            ready.cancel()
        crash = await self._stop_bot(bot, task)
        if crash is not None:
            raise crash

    @staticmethod
    async def _stop_bot(bot: discord.Client, task: asyncio.Task) -> BaseException | None:
        """Close the bot, wait for its start() task to end; returns the exception it ended with, if any."""
        await bot.close()
        if not task.done():
            await asyncio.wait({task}, timeout=5)
        if not task.done():
            task.cancel()
            return None
        return None if task.cancelled() else task.exception()

    # ---------------------------------------------------------------- ids, state change, waiting

    def _snowflake(self) -> int:
        """A new snowflake: time-based like Discord's, strictly increasing."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._next_snowflake = max(candidate, self._next_snowflake + 1)
        return self._next_snowflake

    def _notify(self) -> None:
        """Wake everything waiting in wait_for."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10, *, what: str | None = None) -> Any:
        """Wait until predicate() is truthy and return its value.

        Woken by every emulator state change; also re-checked every 20 ms so predicates over the
        bot's own state work. TimeoutError says what the bot did recently.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self.describe(f"timed out after {timeout}s waiting for {what or predicate}"))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.02))

    async def wait_until_identified(self, timeout: float = 10) -> None:
        """Wait until a client identified and got READY and its guilds."""
        await self.wait_for(lambda: self._session is not None and self._session.guilds_sent, timeout, what="IDENTIFY")

    def describe(self, headline: str) -> str:
        """A headline followed by the emulator's recent history, for failure messages."""
        lines = [headline, "recent requests:"]
        lines += [f"  {record}" for record in self.requests[-15:]] or ["  (none)"]
        if self.unknown_requests:
            lines.append("unknown routes: " + ", ".join(str(r) for r in self.unknown_requests))
        session = self._session
        connected = session is not None and session.connection is not None and session.connection.open
        lines.append(
            f"gateway: connected={connected} identify={self.identify_count} resume={self.resume_count} "
            f"seq={session.seq if session else None} heartbeats={self.heartbeats}"
        )
        for interaction in list(self.interactions.values())[-3:]:
            lines.append(f"interaction {interaction!r} errors={interaction.errors}")
        return "\n".join(lines)

    @property
    def failed_requests(self) -> list[RequestRecord]:
        """Requests the emulator answered with a 4xx/5xx status."""
        return [record for record in self.requests if record.status is not None and record.status >= 400]

    # ---------------------------------------------------------------- the world

    def _new_user(self, name: str, *, bot: bool = False) -> dict:
        """A user payload with a fresh id."""
        return {
            "id": str(self._snowflake()),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "banner": None,
            "accent_color": None,
        }

    @property
    def guild_name(self) -> str:
        """The first guild's name."""
        return self.guilds[self.guild_id].name

    @property
    def guild_owner_id(self) -> int:
        """The first guild's owner."""
        return self.guilds[self.guild_id].owner_id

    def add_guild(self, name: str) -> int:
        """A guild the bot is in, with @everyone, the bot's role, a "general" channel and an owner; returns its id.

        Added after the bot connected, it arrives as GUILD_CREATE, as when the bot joins a server.
        """
        guild_id = self._snowflake()
        guild = self.guilds[guild_id] = EmulatedGuild(guild_id, name)
        self._add_role_payload(guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0, guild_id=guild_id)
        bot_role_id = self.add_role(self.bot_user["username"], BOT_PERMISSIONS, managed_by_bot=True, guild_id=guild_id)
        guild.system_channel_id = self.add_channel("general", guild_id=guild_id)
        guild.owner_id = int(self.add_member("guild-owner", guild_id=guild_id)["id"])
        self._add_member_payload(self.bot_user, [bot_role_id], guild_id=guild_id)
        self._dispatch_later("GUILD_CREATE", self.guild_payload(guild_id), Intent.GUILDS)
        return guild_id

    def _guild(self, guild_id: int | str | None = None) -> EmulatedGuild:
        """A guild by id (the first one when None)."""
        return self.guilds[self.guild_id if guild_id is None else int(guild_id)]

    def _channel_guild(self, channel: dict) -> EmulatedGuild | None:
        """The guild a channel or thread belongs to; None for DMs."""
        return self.guilds.get(int(channel["guild_id"])) if "guild_id" in channel else None

    def _role_guild(self, role_id: int) -> EmulatedGuild:
        """The guild that has a role."""
        return next(guild for guild in self.guilds.values() if role_id in guild.roles)

    def _add_role_payload(
        self, role_id: int, name: str, permissions: int, *, position: int, tags: dict | None = None, guild_id: int | None = None
    ) -> dict:
        """Store a role payload as GUILD_CREATE carries it."""
        role = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": tags is not None,
            "mentionable": False,
            "flags": 0,
        }
        if tags is not None:
            role["tags"] = tags
        self._guild(guild_id).roles[role_id] = role
        return role

    def add_role(self, name: str, permissions: int = 0, *, managed_by_bot: bool = False, guild_id: int | None = None) -> int:
        """Add a role to the guild (dispatched as GUILD_ROLE_CREATE if the bot is connected); returns its id."""
        guild = self._guild(guild_id)
        role_id = self._snowflake()
        tags = {"bot_id": str(self.application_id)} if managed_by_bot else None
        role = self._add_role_payload(role_id, name, permissions, position=len(guild.roles), tags=tags, guild_id=guild.id)
        self._dispatch_later("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role}, Intent.GUILDS)
        return role_id

    def set_role_permissions(self, role_id: int, permissions: int) -> None:
        """Change a role's permissions (dispatched as GUILD_ROLE_UPDATE if the bot is connected)."""
        guild = self._role_guild(role_id)
        role = guild.roles[role_id]
        role["permissions"] = str(permissions)
        self._dispatch_later("GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": role}, Intent.GUILDS)

    def add_channel(
        self, name: str, *, permission_overwrites: Sequence[dict] = (), topic: str | None = None, guild_id: int | None = None
    ) -> int:
        """Add a text channel (dispatched as CHANNEL_CREATE if the bot is connected); returns its id.

        Overwrites are Discord's: {"id": role or user id, "type": 0 role / 1 member, "allow": "bits", "deny": "bits"}.
        """
        guild = self._guild(guild_id)
        channel_id = self._snowflake()
        guild.channels[channel_id] = {
            "id": str(channel_id),
            "type": TEXT_CHANNEL,
            "guild_id": str(guild.id),
            "name": name,
            "position": len(guild.channels),
            "permission_overwrites": [dict(o) for o in permission_overwrites],
            "topic": topic,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
            "default_auto_archive_duration": 1440,
        }
        self._channel_message_ids[channel_id] = []
        self._dispatch_later("CHANNEL_CREATE", guild.channels[channel_id], Intent.GUILDS)
        return channel_id

    def _add_member_payload(self, user: dict, role_ids: Sequence[int], *, guild_id: int | None = None) -> dict:
        """Store a guild member payload (as GUILD_CREATE carries it)."""
        self.users[int(user["id"])] = user
        member = {
            "user": user,
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in role_ids],
            "joined_at": iso_now(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        self._guild(guild_id).members[int(user["id"])] = member
        return member

    def add_member(
        self, name: str, *, permissions: int = 0, roles: Sequence[int] = (), guild_id: int | None = None, user: dict | None = None
    ) -> dict:
        """Add a human member to the guild and return its user payload (a new user, or `user` joining this guild too).

        Non-zero `permissions` get a role of their own ("{name} role"). Added after the bot connected,
        the member is dispatched as GUILD_MEMBER_ADD (needs the members intent, as on Discord).
        """
        guild = self._guild(guild_id)
        user = user or self._new_user(name)
        role_ids = list(roles)
        if permissions:
            role_ids.append(self.add_role(f"{name} role", permissions, guild_id=guild.id))
        member = self._add_member_payload(user, role_ids, guild_id=guild.id)
        self._dispatch_later("GUILD_MEMBER_ADD", dict(member, guild_id=str(guild.id)), Intent.GUILD_MEMBERS)
        return user

    def add_user(self, name: str) -> dict:
        """A user who is not in the guild (can only DM the bot)."""
        user = self._new_user(name)
        self.users[int(user["id"])] = user
        return user

    def add_attachment(self, filename: str, data: bytes, content_type: str = "text/plain") -> dict:
        """An attachment object whose url serves `data` over HTTP from the emulator."""
        return self._store_attachment(filename, data, content_type, ephemeral=True)

    def _store_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        ephemeral: bool = False,
        description: str | None = None,
    ) -> dict:
        """Keep the bytes and build the attachment object pointing at /attachments/{id}/{filename}."""
        attachment_id = self._snowflake()
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self._attachment_files[attachment_id] = (data, content_type)
        # Filenames are kept as given (Discord would sanitise them); quoting every "/" keeps a name
        # like "../x.md" one path segment instead of dot-segments a client would normalise away.
        url = f"{self.base_url}/attachments/{attachment_id}/{quote(filename, safe='')}"
        attachment = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            "ephemeral": ephemeral,
        }
        if description is not None:
            attachment["description"] = description
        return attachment

    def attachment_bytes(self, attachment: dict | int) -> bytes:
        """The bytes behind an attachment (one the bot uploaded or one added with add_attachment)."""
        attachment_id = int(attachment["id"] if isinstance(attachment, dict) else attachment)
        return self._attachment_files[attachment_id][0]

    def guild_payload(self, guild_id: int | None = None) -> dict:
        """The guild (the first one by default) as GUILD_CREATE carries it."""
        guild = self._guild(guild_id)
        members = list(guild.members.values())
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "application_id": None,
            "system_channel_id": str(guild.system_channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "roles": list(guild.roles.values()),
            "emojis": [],
            "stickers": [],
            "joined_at": guild.members[self.application_id]["joined_at"],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(members),
            "members": members,
            "channels": list(guild.channels.values()),
            "threads": [t for t in self.threads.values() if int(t["guild_id"]) == guild.id],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "incidents_data": None,
            "hub_type": None,
        }

    def _find_channel(self, channel_id: int) -> dict | None:
        """A guild channel, thread or DM channel by id."""
        guild_channel = next((g.channels[channel_id] for g in self.guilds.values() if channel_id in g.channels), None)
        return guild_channel or self.threads.get(channel_id) or self.dm_channels.get(channel_id)

    def _require_channel(self, channel_id: int) -> dict:
        """The channel, or Discord's 404 Unknown Channel."""
        channel = self._find_channel(channel_id)
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def dm_channel_for(self, user: dict) -> dict:
        """The DM channel between the bot and `user`, created on first use."""
        user_id = int(user["id"])
        self.users.setdefault(user_id, user)
        channel_id = self._dm_channel_by_user.get(user_id)
        if channel_id is None:
            channel_id = self._snowflake()
            self._dm_channel_by_user[user_id] = channel_id
            self.dm_channels[channel_id] = {
                "id": str(channel_id),
                "type": DM_CHANNEL,
                "last_message_id": None,
                "flags": 0,
                "recipients": [user],
            }
            self._channel_message_ids[channel_id] = []
        return self.dm_channels[channel_id]

    def permissions_for(self, user_id: int, channel: dict | None = None, *, guild_id: int | None = None) -> int:
        """A user's permission bits in a guild (the channel's, else `guild_id`, else the first), or in `channel`
        with its overwrites (threads use their parent's)."""
        if channel is not None and channel["type"] == DM_CHANNEL:
            return DM_PERMISSIONS
        guild = (self._channel_guild(channel) if channel is not None else None) or self._guild(guild_id)
        if user_id == guild.owner_id:
            return Perm.ALL
        member = guild.members.get(user_id)
        if member is None:
            return 0
        role_ids = [guild.id] + [int(r) for r in member["roles"]]
        permissions = 0
        for role_id in role_ids:
            if role_id in guild.roles:
                permissions |= int(guild.roles[role_id]["permissions"])
        if permissions & Perm.ADMINISTRATOR:
            return Perm.ALL
        if channel is None:
            return permissions
        if channel["type"] in THREAD_TYPES:
            channel = guild.channels.get(int(channel["parent_id"]), channel)
        overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites", [])}
        everyone = overwrites.get(guild.id)
        if everyone is not None:
            permissions = (permissions & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role_id in role_ids[1:]:
            overwrite = overwrites.get(role_id)
            if overwrite is not None and overwrite.get("type", 0) == 0:
                allow |= int(overwrite["allow"])
                deny |= int(overwrite["deny"])
        permissions = (permissions & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None and own.get("type", 1) == 1:
            permissions = (permissions & ~int(own["deny"])) | int(own["allow"])
        return permissions

    def _member_payload_without_user(self, user_id: int, guild_id: int | None = None) -> dict | None:
        """The partial member MESSAGE_CREATE carries next to `author`."""
        member = self._guild(guild_id).members.get(user_id)
        if member is None:
            return None
        return {key: value for key, value in member.items() if key != "user"}

    # ---------------------------------------------------------------- messages

    def get_message(self, message_id: int) -> dict | None:
        """The current version of a message (bot's or user's), None if unknown or deleted."""
        return self._messages.get(int(message_id))

    def channel_messages(self, channel_id: int) -> list[dict]:
        """Current versions of the channel's messages, oldest first, as its history shows them (no ephemerals)."""
        found = (self._messages.get(mid) for mid in self._channel_message_ids.get(int(channel_id), []))
        return [m for m in found if m is not None and not m["flags"] & MessageFlag.EPHEMERAL]

    def bot_messages(self, channel_id: int | None = None) -> list[dict]:
        """Current versions of the bot's messages (in one channel if given), oldest first, ephemerals included."""
        seen: dict[int, dict] = {}
        for snapshot in self.messages:
            message = self._messages.get(int(snapshot["id"]))
            if message is not None and (channel_id is None or int(message["channel_id"]) == int(channel_id)):
                seen[int(message["id"])] = message
        return list(seen.values())

    def _mentions(
        self,
        content: str,
        allowed_mentions: dict | None,
        *,
        guild: int | None,
        replied_user: dict | None,
        author_id: int,
    ) -> tuple[list, list, bool]:
        """(mentions, mention_roles, mention_everyone) as Discord computes them from content and allowed_mentions.

        `guild` is the id of the message's guild, None in DMs.
        """
        if allowed_mentions is None:
            parse, users, roles, ping_replied = {"users", "roles", "everyone"}, set(), set(), True
        else:
            parse = set(allowed_mentions.get("parse") or [])
            users = {int(u) for u in allowed_mentions.get("users") or []}
            roles = {int(r) for r in allowed_mentions.get("roles") or []}
            ping_replied = bool(allowed_mentions.get("replied_user", False))
        mentioned: list[dict] = []
        for user_id in dict.fromkeys(int(m) for m in USER_MENTION.findall(content)):
            if user_id in self.users and ("users" in parse or user_id in users):
                mentioned.append(self._mention_payload(user_id, guild))
        if replied_user is not None and ping_replied and all(m["id"] != replied_user["id"] for m in mentioned):
            mentioned.append(self._mention_payload(int(replied_user["id"]), guild))
        mention_roles = [
            str(role_id)
            for role_id in dict.fromkeys(int(r) for r in ROLE_MENTION.findall(content))
            if guild is not None and role_id in self._guild(guild).roles and ("roles" in parse or role_id in roles)
        ]
        everyone = (
            guild is not None
            and ("@everyone" in content or "@here" in content)
            and "everyone" in parse
            and bool(self.permissions_for(author_id, guild_id=guild) & Perm.MENTION_EVERYONE)
        )
        return mentioned, mention_roles, everyone

    def _mention_payload(self, user_id: int, guild: int | None) -> dict:
        """A user as `mentions` lists it: with a partial member in guilds."""
        user = dict(self.users[user_id])
        member = self._member_payload_without_user(user_id, guild) if guild is not None else None
        if member is not None:
            user["member"] = member
        return user

    @staticmethod
    def _validate_allowed_mentions(allowed_mentions: Any) -> None:
        """Discord rejects parse:["users"] together with a users list (and the same for roles)."""
        if allowed_mentions is None:
            return
        parse = allowed_mentions.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and allowed_mentions.get(kind):
                raise form_error(
                    ["allowed_mentions", "parse"],
                    "SET_TYPE_ALREADY_CONTAINS_VALUE",
                    f'parse:["{kind}"] and {kind}: [ids] are mutually exclusive.',
                )

    def _validate_message_fields(self, message: dict) -> None:
        """Discord's message limits: content, embeds, components; 50006 for an empty message."""
        content = message.get("content") or ""
        if len(content) > 2000:
            raise form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = message.get("embeds") or []
        if len(embeds) > 10:
            raise form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for index, embed in enumerate(embeds):
            total += self._validate_embed(embed, index)
        if total > 6000:
            raise form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        self._validate_components(message.get("components") or [], int(message.get("flags") or 0))
        visible = ("components", "attachments", "sticker_items", "poll")
        if not (content or embeds or any(message.get(key) for key in visible)):
            raise ApiError(400, 50006, "Cannot send an empty message")

    @staticmethod
    def _validate_embed(embed: dict, index: int) -> int:
        """Check one embed's field limits; returns its character count toward the 6000 total."""
        limits = {"title": 256, "description": 4096}
        size = 0
        for key, limit in limits.items():
            text = embed.get(key) or ""
            if len(text) > limit:
                raise form_error(["embeds", index, key], "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
            size += len(text)
        for key, inner, limit in (("footer", "text", 2048), ("author", "name", 256)):
            text = (embed.get(key) or {}).get(inner) or ""
            if len(text) > limit:
                raise form_error(["embeds", index, key, inner], "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
            size += len(text)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise form_error(["embeds", index, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for position, field in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                text = field.get(key)
                if not text:
                    raise form_error(["embeds", index, "fields", position, key], "BASE_TYPE_REQUIRED", "This field is required")
                if len(text) > limit:
                    raise form_error(
                        ["embeds", index, "fields", position, key],
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
                size += len(text)
        return size

    @staticmethod
    def _validate_components(components: list, flags: int) -> None:
        """Action rows (5 at most, 5 buttons each) and unique custom_ids of at most 100 characters."""
        if flags & MessageFlag.IS_COMPONENTS_V2:
            return  # layout components (v2) follow other rules; echoed as given
        if len(components) > 5:
            raise form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        seen: set[str] = set()
        for row_index, row in enumerate(components):
            children = row.get("components") or []
            if row.get("type") != 1 or not 1 <= len(children) <= 5:
                raise form_error(["components", row_index], "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "An action row holds 1 to 5 components")
            for child_index, child in enumerate(children):
                custom_id = child.get("custom_id")
                if custom_id is None:
                    if child.get("type") == 2 and not (child.get("url") or child.get("sku_id")):
                        raise form_error(
                            ["components", row_index, "components", child_index, "custom_id"],
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        )
                    continue
                if len(custom_id) > 100:
                    raise form_error(
                        ["components", row_index, "components", child_index, "custom_id"],
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 100 or fewer in length.",
                    )
                if custom_id in seen:
                    raise form_error(
                        ["components", row_index, "components", child_index, "custom_id"],
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(custom_id)

    def _attachments_from_upload(self, body: dict, files: list[dict], existing: list[dict]) -> list[dict] | None:
        """The message's attachments after a request: kept ones (by id) plus uploaded files[n].

        None means the request left the attachments alone (an edit without `attachments` or files).
        """
        uploads = {}
        for position, upload in enumerate(files):
            match = re.fullmatch(r"files\[(\d+)\]", upload["field"]) or re.fullmatch(r"file(\d*)", upload["field"])
            index = int(match.group(1) or 0) if match else position
            uploads[index] = upload
        if "attachments" not in body and not uploads:
            return None
        declared = body.get("attachments")
        if declared is None:
            declared = [{"id": index} for index in sorted(uploads)]
            kept = list(existing)
        else:
            kept = []
        by_id = {a["id"]: a for a in existing}
        result = kept
        for entry in declared:
            entry_id = str(entry.get("id"))
            if entry_id in by_id:
                result.append(by_id[entry_id])
                continue
            upload = uploads.get(int(entry_id)) if entry_id.isdigit() else None
            if upload is None:
                raise form_error(["attachments", entry_id], "ATTACHMENT_NOT_FOUND", "Attachment data not found")
            if len(upload["data"]) > ATTACHMENT_SIZE_LIMIT:
                raise ApiError(413, 40005, "Request entity too large")
            result.append(
                self._store_attachment(
                    entry.get("filename") or upload["filename"],
                    upload["data"],
                    None,
                    description=entry.get("description"),
                )
            )
        return result

    def _message_from_body(
        self,
        body: dict,
        files: list[dict],
        *,
        channel: dict,
        author: dict,
        type_: int,
        extra: dict | None = None,
        flags_allowed: int,
    ) -> dict:
        """A new message object from a create request (channel post, interaction response or follow-up)."""
        self._validate_allowed_mentions(body.get("allowed_mentions"))
        guild = "guild_id" in channel
        content = body.get("content") or ""
        if not isinstance(content, str):
            raise form_error(["content"], "BASE_TYPE_BAD_TYPE", "Must be a string.")
        replied_user = (extra or {}).get("referenced_message", {}) or {}
        mentions, mention_roles, everyone = self._mentions(
            content,
            body.get("allowed_mentions"),
            guild=int(channel["guild_id"]) if guild else None,
            replied_user=replied_user.get("author"),
            author_id=int(author["id"]),
        )
        message_id = self._snowflake()
        message = {
            "id": str(message_id),
            "type": type_,
            "channel_id": channel["id"],
            "author": author,
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": self._attachments_from_upload(body, files, []) or [],
            "embeds": [dict(embed, type=embed.get("type", "rich")) for embed in body.get("embeds") or []],
            "components": copy.deepcopy(body.get("components") or []),
            "pinned": False,
            "flags": int(body.get("flags") or 0) & flags_allowed,
            "allowed_mentions": copy.deepcopy(body.get("allowed_mentions")),
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        if guild:
            message["guild_id"] = channel["guild_id"]
        if body.get("sticker_ids"):
            message["sticker_items"] = [{"id": str(s), "name": "sticker", "format_type": 1} for s in body["sticker_ids"]]
        if body.get("poll"):
            message["poll"] = body["poll"]
        message.update(extra or {})
        self._validate_message_fields(message)
        return message

    def _apply_edit(self, message: dict, body: dict, files: list[dict]) -> dict:
        """Apply an edit request to a copy of `message` and validate the result; returns the new version."""
        self._validate_allowed_mentions(body.get("allowed_mentions"))
        edited = copy.deepcopy(message)
        if "allowed_mentions" in body:
            edited["allowed_mentions"] = copy.deepcopy(body["allowed_mentions"])
        if "content" in body:
            edited["content"] = body["content"] or ""
            edited["mentions"], edited["mention_roles"], edited["mention_everyone"] = self._mentions(
                edited["content"],
                edited.get("allowed_mentions"),
                guild=int(edited["guild_id"]) if "guild_id" in edited else None,
                replied_user=None,
                author_id=int(edited["author"]["id"]),
            )
        if "embeds" in body:
            edited["embeds"] = [dict(embed, type=embed.get("type", "rich")) for embed in body["embeds"] or []]
        if "components" in body:
            edited["components"] = copy.deepcopy(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS can be toggled by an edit; ephemeral and the rest stay as they were.
            keep = edited["flags"] & ~MessageFlag.SUPPRESS_EMBEDS
            edited["flags"] = keep | (int(body["flags"]) & MessageFlag.SUPPRESS_EMBEDS)
        attachments = self._attachments_from_upload(body, files, edited["attachments"])
        if attachments is not None:
            edited["attachments"] = attachments
        if "poll" in body:
            edited["poll"] = body["poll"]
        was_loading = bool(edited["flags"] & MessageFlag.LOADING)
        edited["flags"] &= ~MessageFlag.LOADING
        # Replacing a deferred "thinking" message is its first real content, not an edit.
        edited["edited_timestamp"] = None if was_loading else iso_now()
        self._validate_message_fields(edited)
        return edited

    def _record_message(self, message: dict, body: dict | None, action: str) -> None:
        """Store the current version and append a snapshot (with the request body) to `messages`."""
        message_id = int(message["id"])
        is_new = message_id not in self._messages
        self._messages[message_id] = message
        if is_new:
            self._channel_message_ids.setdefault(int(message["channel_id"]), []).append(message_id)
            channel = self._find_channel(int(message["channel_id"]))
            if channel is not None:
                channel["last_message_id"] = message["id"]
                if channel["type"] in THREAD_TYPES:
                    channel["message_count"] += 1
                    channel["total_message_sent"] += 1
        if int(message["author"]["id"]) == self.application_id:
            snapshot = copy.deepcopy(message)
            snapshot["action"] = action
            snapshot["request"] = copy.deepcopy(body)
            self.messages.append(snapshot)
        self._notify()

    async def _echo(self, event: str, message: dict) -> None:
        """Send the bot MESSAGE_CREATE/UPDATE for its own non-ephemeral message, as Discord does."""
        if not self.echo_own_messages or message["flags"] & MessageFlag.EPHEMERAL:
            return
        await self._dispatch_message_event(event, message)

    async def _dispatch_message_event(self, event: str, message: dict) -> None:
        """MESSAGE_CREATE/UPDATE with guild extras, gated by the message intents."""
        payload = copy.deepcopy(message)
        guild = "guild_id" in payload
        if guild:
            member = self._member_payload_without_user(int(payload["author"]["id"]), int(payload["guild_id"]))
            if member is not None and "webhook_id" not in payload:
                payload["member"] = member
        await self._dispatch(event, payload, intent=Intent.GUILD_MESSAGES if guild else Intent.DIRECT_MESSAGES)

    def _visible_to_bot(self, payload: dict, session: _GatewaySession) -> dict:
        """Without the message content intent, guild messages arrive with empty content (unless they mention the bot or are its own)."""
        if session.intents & Intent.MESSAGE_CONTENT or "guild_id" not in payload or "content" not in payload:
            return payload
        if payload.get("author", {}).get("id") == self.bot_user["id"]:
            return payload
        if any(m.get("id") == self.bot_user["id"] for m in payload.get("mentions", [])):
            return payload
        return dict(payload, content="", embeds=[], attachments=[], components=[])

    # ---------------------------------------------------------------- gateway

    def _ready_payload(self, session: _GatewaySession) -> dict:
        """READY as discord.py's ConnectionState.parse_ready reads it."""
        user = dict(self.bot_user, verified=True, mfa_enabled=True, email=None, flags=0, locale="en-US")
        payload = {
            "v": 10,
            "user": user,
            "user_settings": {},
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in self.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "auth_session_id_hash": secrets.token_hex(8),
            "_trace": ['["discord-emulator",{"micros":0}]'],
        }
        payload["shard"] = session.identify.get("shard") or [0, 1]
        return payload

    def _application_flags(self) -> int:
        """Application flags: which privileged intents the 'developer portal' enabled."""
        flags = AppFlag.APPLICATION_COMMAND_BADGE
        if self.allowed_privileged_intents & Intent.GUILD_PRESENCES:
            flags |= AppFlag.GATEWAY_PRESENCE_LIMITED
        if self.allowed_privileged_intents & Intent.GUILD_MEMBERS:
            flags |= AppFlag.GATEWAY_GUILD_MEMBERS_LIMITED
        if self.allowed_privileged_intents & Intent.MESSAGE_CONTENT:
            flags |= AppFlag.GATEWAY_MESSAGE_CONTENT_LIMITED
        return flags

    async def _serve_gateway(self, request: web.Request) -> web.WebSocketResponse:
        """One gateway WebSocket: HELLO, then the client's opcodes until it closes."""
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        connection = _GatewayConnection(ws, request)
        self.gateway_connections.append(connection)
        self._live_connections.add(connection)
        try:
            if connection.query.get("encoding", "json") != "json":
                await connection.close(4002, "the emulator speaks JSON only")
                return ws
            if connection.query.get("v", "10") not in ("9", "10"):
                await connection.close(4012, "Invalid API version")
                return ws
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["discord-emulator"]}
            await connection.send({"op": 10, "d": hello, "s": None, "t": None})
            async for frame in ws:
                if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    await self._on_gateway_frame(connection, frame.data)
                else:
                    break
        finally:
            connection.closed_code = ws.close_code
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
            self._live_connections.discard(connection)
            self._notify()
        return ws

    async def _on_gateway_frame(self, connection: _GatewayConnection, data: str | bytes) -> None:
        """Handle one client payload: heartbeat, identify, resume, presence, member requests."""
        try:
            payload = json.loads(data)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            await connection.close(4002, "Error while decoding payload")
            return
        self.gateway_received.append(payload)
        d = payload.get("d")
        if op == 1:
            self.heartbeats += 1
            if await connection.send({"op": 11, "d": None, "s": None, "t": None}):
                self.heartbeat_acks += 1
            self._notify()
        elif op == 2:
            await self._identify(connection, d or {})
        elif op == 6:
            await self._resume(connection, d or {})
        elif connection.session is None:
            await connection.close(4003, "Not authenticated")
        elif op == 3:
            self.presence = d
            self._notify()
        elif op == 4:
            pass  # voice state updates: no voice here
        elif op == 8:
            await self._send_member_chunk(connection.session, d or {})
        else:
            await connection.close(4001, "Unknown opcode")

    async def _identify(self, connection: _GatewayConnection, d: dict) -> None:
        """IDENTIFY: check token and intents, start a session, send READY and GUILD_CREATE."""
        if connection.session is not None:
            await connection.close(4005, "Already authenticated")
            return
        if not d.get("token") or (self.token is not None and d["token"] != self.token):
            await connection.close(4004, "Authentication failed")
            return
        intents = d.get("intents")
        if not isinstance(intents, int):
            await connection.close(4013, "Invalid intent(s)")
            return
        if intents & Intent.PRIVILEGED & ~self.allowed_privileged_intents:
            await connection.close(4014, "Disallowed intent(s)")
            return
        self.identify_count += 1
        self.identify_payload = d
        session = _GatewaySession(secrets.token_hex(16), intents, d)
        self._sessions[session.id] = session
        self._session = session
        session.connection, connection.session = connection, session
        await self._dispatch("READY", self._ready_payload(session), session=session)
        for guild_id in self.guilds:
            await self._dispatch("GUILD_CREATE", self.guild_payload(guild_id), session=session, intent=Intent.GUILDS)
        session.guilds_sent = True
        self._notify()

    async def _resume(self, connection: _GatewayConnection, d: dict) -> None:
        """RESUME: replay what the session missed after `seq`, then RESUMED; op 9 for an unknown session."""
        session = self._sessions.get(d.get("session_id") or "")
        seq = d.get("seq")
        valid_seq = isinstance(seq, int) and session is not None and 0 <= seq <= session.seq
        if session is None or not d.get("token") or not valid_seq:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
            return
        async with session.lock:
            previous = session.connection
            session.connection, connection.session = connection, session
            if previous is not None and previous is not connection:
                self._in_background(previous.close(4000, "session resumed elsewhere"))
            for frame in session.backlog:
                if frame["s"] > seq:
                    await connection.send(frame)
            self.resume_count += 1
            await self._send_dispatch(session, "RESUMED", {"_trace": ["discord-emulator"]})
        self._session = session
        self._notify()

    async def _send_member_chunk(self, session: _GatewaySession, d: dict) -> None:
        """REQUEST_GUILD_MEMBERS -> one GUILD_MEMBERS_CHUNK."""
        guild = self.guilds.get(int(d.get("guild_id") or self.guild_id))
        if guild is None:
            return
        members = list(guild.members.values())
        if d.get("user_ids"):
            wanted = {int(u) for u in (d["user_ids"] if isinstance(d["user_ids"], list) else [d["user_ids"]])}
            members = [m for m in members if int(m["user"]["id"]) in wanted]
        elif d.get("query"):
            members = [m for m in members if m["user"]["username"].lower().startswith(d["query"].lower())]
        if d.get("limit"):
            members = members[: d["limit"]]
        chunk = {"guild_id": str(guild.id), "members": members, "chunk_index": 0, "chunk_count": 1, "not_found": []}
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        await self._dispatch("GUILD_MEMBERS_CHUNK", chunk, session=session)

    async def _send_dispatch(self, session: _GatewaySession, event: str, data: dict, on_send: Callable[[], None] | None = None) -> dict:
        """Give a dispatch the next sequence number, keep it for RESUME and send it if connected (hold session.lock)."""
        session.seq += 1
        # A copy: later changes to the world must not rewrite what was already sent (RESUME replays it).
        frame = {"op": 0, "t": event, "s": session.seq, "d": public(data)}
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            frame["d"] = self._visible_to_bot(frame["d"], session)
        session.backlog.append(frame)
        if on_send is not None:
            on_send()
        if session.connection is not None:
            await session.connection.send(frame)
        return frame

    async def _dispatch(
        self,
        event: str,
        data: dict,
        *,
        session: _GatewaySession | None = None,
        intent: int = 0,
        on_send: Callable[[], None] | None = None,
    ) -> dict | None:
        """Dispatch an event (op 0) to the bot's session; None if its intents exclude the event."""
        session = session or self._session
        if session is None:
            raise RuntimeError(self.describe(f"cannot dispatch {event}: no bot has identified yet"))
        if intent and not session.intents & intent:
            return None
        async with session.lock:
            frame = await self._send_dispatch(session, event, data, on_send)
        self._notify()
        return frame

    def _dispatch_later(self, event: str, data: dict, intent: int) -> None:
        """Dispatch from synchronous world-building methods, if a bot session exists."""
        if self._session is not None:
            self._in_background(self._dispatch(event, data, intent=intent))

    def _in_background(self, coroutine: Any) -> None:
        """Run a coroutine as a task the emulator keeps a reference to until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def drop_connection(self, code: int | None = 4000) -> None:
        """Close the bot's gateway WebSocket so discord.py reconnects and RESUMEs.

        With a close code (4000 "unknown error" by default) the emulator sends a close frame;
        code=None cuts the TCP connection without one.
        """
        session = self._session
        connection = session.connection if session else None
        if connection is None:
            raise RuntimeError(self.describe("drop_connection: the bot is not connected"))
        session.connection = None  # from here on, dispatches wait in the backlog for RESUME
        if code is None:
            if connection.transport is not None:
                connection.transport.close()
        else:
            await connection.close(code, "dropped by the emulator")
        self._notify()

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: discord.py closes and RESUMEs."""
        session = self._session
        if session is None or session.connection is None:
            raise RuntimeError("request_reconnect: the bot is not connected")
        await session.connection.send({"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION: with resumable=False discord.py IDENTIFYs afresh."""
        session = self._session
        if session is None or session.connection is None:
            raise RuntimeError("invalidate_session: the bot is not connected")
        if not resumable:
            self._sessions.pop(session.id, None)
        await session.connection.send({"op": 9, "d": resumable, "s": None, "t": None})

    @property
    def connected(self) -> bool:
        """Whether the bot's session has a live WebSocket."""
        session = self._session
        return session is not None and session.connection is not None and session.connection.open

    # ---------------------------------------------------------------- driving the bot

    def _find_command(self, name: str, *, dm: bool, guild_id: int | None = None) -> tuple[dict, int | None]:
        """The registered chat-input command a user could type here (in `guild_id`, default the first guild),
        and its guild id (None if global)."""
        guild_id = self.guild_id if guild_id is None else guild_id
        candidates = [] if dm else [(c, guild_id) for c in self.commands.get(guild_id, [])]
        candidates += [(c, None) for c in self.commands["global"]]
        for command, guild_id in candidates:
            if command["name"] == name and command.get("type", 1) == 1:
                if dm and (command.get("dm_permission") is False or (command.get("contexts") is not None and 1 not in command["contexts"])):
                    raise ValueError(f"/{name} is not available in DMs")
                return command, guild_id
        registered = {scope: [c["name"] for c in cmds] for scope, cmds in self.commands.items()}
        raise LookupError(f"/{name} is not registered{' for DMs' if dm else ''} (did the bot sync its tree?); registered: {registered}")

    def _option_value(self, spec: dict, value: Any, resolved: dict, *, guild: int | None, focused: bool) -> Any:
        """Convert one option value as the Discord client would send it, filling `resolved` (`guild`: its id, None in DMs)."""
        kind, name = spec["type"], spec["name"]
        if focused:
            return value if isinstance(value, str) else str(value)
        if kind == STRING:
            if not isinstance(value, str):
                raise TypeError(f"option {name!r} takes a string")
            if len(value) < spec.get("min_length", 0) or len(value) > spec.get("max_length", 6000):
                raise ValueError(f"option {name!r}: length outside [{spec.get('min_length', 0)}, {spec.get('max_length', 6000)}]")
        elif kind == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"option {name!r} takes an integer")
        elif kind == NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"option {name!r} takes a number")
        elif kind == BOOLEAN:
            if not isinstance(value, bool):
                raise TypeError(f"option {name!r} takes a boolean")
        elif kind == ATTACHMENT:
            attachment = value if isinstance(value, dict) else None
            if attachment is None:
                raise TypeError(f"option {name!r} takes an attachment from add_attachment()")
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return attachment["id"]
        elif kind in (USER, MENTIONABLE) and (isinstance(value, dict) or int(value) in self.users):
            user = value if isinstance(value, dict) else self.users[int(value)]
            resolved.setdefault("users", {})[user["id"]] = user
            member = self._member_payload_without_user(int(user["id"]), guild) if guild is not None else None
            if member is not None:
                permissions = self.permissions_for(int(user["id"]), guild_id=guild)
                resolved.setdefault("members", {})[user["id"]] = dict(member, permissions=str(permissions))
            return user["id"]
        elif kind in (ROLE, MENTIONABLE):
            role = self._guild(guild).roles.get(int(value))
            if role is None:
                raise LookupError(f"option {name!r}: no role {value}")
            resolved.setdefault("roles", {})[role["id"]] = role
            return role["id"]
        elif kind == CHANNEL:
            channel = self._require_channel(int(value))
            resolved.setdefault("channels", {})[channel["id"]] = dict(channel, permissions=str(Perm.ALL))
            return channel["id"]
        if kind in (INTEGER, NUMBER):
            low, high = spec.get("min_value"), spec.get("max_value")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"option {name!r}: {value} outside [{low}, {high}]")
        choices = spec.get("choices")
        if choices and value not in [choice["value"] for choice in choices]:
            raise ValueError(f"option {name!r}: {value!r} is not one of its choices {[c['value'] for c in choices]}")
        return value

    def _interaction_options(
        self,
        command: dict,
        options: dict,
        subcommand: str | None,
        resolved: dict,
        *,
        guild: int | None,
        focused: str | None = None,
    ) -> list[dict]:
        """The data.options tree for a command invocation, checked against the registered schema."""
        specs = command.get("options") or []
        path = subcommand.split() if subcommand else []
        trail: list[dict] = []
        for part in path:
            spec = next((s for s in specs if s["name"] == part and s["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
            if spec is None:
                raise LookupError(f"/{command['name']} has no subcommand {part!r}")
            trail.append({"type": spec["type"], "name": part, "options": []})
            specs = spec.get("options") or []
        if any(s["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for s in specs):
            raise ValueError(f"/{command['name']} {' '.join(path)} needs a subcommand: {[s['name'] for s in specs]}")
        leaf = []
        for name, value in options.items():
            spec = next((s for s in specs if s["name"] == name), None)
            if spec is None:
                raise LookupError(f"/{command['name']} has no option {name!r}; it has {[s['name'] for s in specs]}")
            converted = self._option_value(spec, value, resolved, guild=guild, focused=name == focused)
            entry = {"type": spec["type"], "name": name, "value": converted}
            if name == focused:
                entry["focused"] = True
            leaf.append(entry)
        if focused is not None and focused not in options:
            spec = next((s for s in specs if s["name"] == focused), None)
            if spec is None:
                raise LookupError(f"/{command['name']} has no option {focused!r}")
            leaf.append({"type": spec["type"], "name": focused, "value": "", "focused": True})
        if focused is None:
            missing = [s["name"] for s in specs if s.get("required") and s["name"] not in options]
            if missing:
                raise ValueError(f"/{command['name']}: required options missing: {missing}")
        for level in reversed(trail):
            level["options"] = leaf
            leaf = [level]
        return leaf

    def _interaction_channel(self, channel: dict, user_id: int) -> dict:
        """The partial channel an interaction carries, with the user's permissions in it."""
        partial = {key: value for key, value in channel.items() if key != "permission_overwrites"}
        if channel["type"] != DM_CHANNEL:
            partial["permissions"] = str(self.permissions_for(user_id, channel))
        return partial

    async def _dispatch_interaction(
        self,
        type_: int,
        data: dict,
        *,
        user: dict | None,
        channel_id: int | None,
        dm: bool,
        message: dict | None = None,
    ) -> Interaction:
        """Build INTERACTION_CREATE as Discord sends it, register it, dispatch it."""
        user = user or self.member
        user_id = int(user["id"])
        if dm:
            channel = self.dm_channel_for(user)
        else:
            channel = self._require_channel(channel_id or self.channel_id)
            guild = self._channel_guild(channel)
            if guild is not None and user_id not in guild.members:
                raise ValueError(f"{user['username']} is not a member of the guild")
        in_guild = "guild_id" in channel
        interaction_id = self._snowflake()
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": type_,
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "data": data,
            "channel_id": channel["id"],
            "channel": self._interaction_channel(channel, user_id),
            "locale": "en-US",
            "app_permissions": str(self.permissions_for(self.application_id, channel)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "authorizing_integration_owners": {"0": str(channel["guild_id"]) if in_guild else "0"},
            "context": 0 if in_guild else 1,
        }
        if in_guild:
            payload["guild_id"] = str(channel["guild_id"])
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": str(channel["guild_id"]), "locale": "en-US", "features": []}
            member = copy.deepcopy(self._guild(channel["guild_id"]).members[user_id])
            member["permissions"] = str(self.permissions_for(user_id, channel))
            payload["member"] = member
        else:
            payload["user"] = user
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        interaction = Interaction(self, payload, time.perf_counter())
        self.interactions[interaction.id] = interaction
        self._interactions_by_token[interaction.token] = interaction

        def mark_sent() -> None:
            interaction.dispatched_at = time.perf_counter()

        await self._dispatch("INTERACTION_CREATE", payload, on_send=mark_sent)
        return interaction

    def _typing_guild(self, channel_id: int | None, dm: bool) -> int | None:
        """The id of the guild whose channel a command is typed in (the first guild's by default); None in DMs."""
        if dm:
            return None
        guild = self._channel_guild(self._require_channel(channel_id or self.channel_id))
        return guild.id if guild is not None else None

    async def slash(
        self,
        name: str,
        options: dict | None = None,
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        subcommand: str | None = None,
        dm: bool = False,
    ) -> Interaction:
        """A user runs /name (optionally `subcommand`, "group sub" for groups) with `options`; returns at dispatch.

        Option values: str, int, float, bool; a dict from add_attachment() for attachments; a user
        dict for user options; an id for roles and channels. The command must be registered (synced).
        """
        typed_in = self._typing_guild(channel_id, dm)
        command, guild_id = self._find_command(name, dm=dm, guild_id=typed_in)
        resolved: dict = {}
        data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1}
        opts = self._interaction_options(command, options or {}, subcommand, resolved, guild=typed_in)
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return await self._dispatch_interaction(InteractionType.APPLICATION_COMMAND, data, user=user, channel_id=channel_id, dm=dm)

    async def autocomplete(
        self,
        name: str,
        options: dict,
        focused: str,
        *,
        user: dict | None = None,
        subcommand: str | None = None,
        timeout: float = 5,
        dm: bool = False,
        channel_id: int | None = None,
    ) -> list[dict]:
        """A user types into option `focused` of /name; returns the choices the bot answered."""
        typed_in = self._typing_guild(channel_id, dm)
        command, guild_id = self._find_command(name, dm=dm, guild_id=typed_in)
        resolved: dict = {}
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": 1,
            "options": self._interaction_options(command, options, subcommand, resolved, guild=typed_in, focused=focused),
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        interaction = await self._dispatch_interaction(InteractionType.AUTOCOMPLETE, data, user=user, channel_id=channel_id, dm=dm)
        # An empty list is an answer too, so wait on "not None" rather than on the choices themselves.
        await self.wait_for(lambda: interaction.choices is not None, timeout, what=f"autocomplete choices for {interaction!r}")
        assert interaction.choices is not None
        return interaction.choices

    @staticmethod
    def _iter_components(components: list[dict]) -> Iterator[dict]:
        """Every component in a message, rows and layout containers included."""
        for component in components:
            yield component
            yield from DiscordEmulator._iter_components(component.get("components") or [])
            if isinstance(component.get("accessory"), dict):
                yield component["accessory"]

    async def click(self, message: dict, custom_id: str, *, user: dict | None = None, values: Sequence[str] | None = None) -> Interaction:
        """A user clicks the button (or picks `values` in the select) with `custom_id` on `message`."""
        current = self.get_message(int(message["id"])) or message
        component = next((c for c in self._iter_components(current.get("components") or []) if c.get("custom_id") == custom_id), None)
        if component is None:
            present = [c.get("custom_id") for c in self._iter_components(current.get("components") or []) if c.get("custom_id")]
            raise LookupError(f"message {current['id']} has no component {custom_id!r}; it has {present}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        channel = self._require_channel(int(current["channel_id"]))
        dm = channel["type"] == DM_CHANNEL
        if dm and user is None:
            user = channel["recipients"][0]
        return await self._dispatch_interaction(
            InteractionType.MESSAGE_COMPONENT,
            data,
            user=user,
            channel_id=int(current["channel_id"]),
            dm=dm,
            message=current,
        )

    async def send_message(
        self,
        content: str,
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        mention_bot: bool = False,
        dm: bool = False,
        attachments: Sequence[dict] = (),
        reply_to: dict | None = None,
    ) -> dict:
        """A user posts a message (MESSAGE_CREATE); returns it. `<@id>` in content become mentions."""
        user = user or self.member
        bot_mention = f"<@{self.application_id}>"
        if mention_bot and bot_mention not in content and f"<@!{self.application_id}>" not in content:
            content = f"{bot_mention} {content}"
        if dm:
            channel = self.dm_channel_for(user)
        else:
            channel = self._require_channel(channel_id or self.channel_id)
            member_of = self._channel_guild(channel)
            if member_of is not None and int(user["id"]) not in member_of.members:
                raise ValueError(f"{user['username']} is not a member of the guild")
        guild = "guild_id" in channel
        referenced = self.get_message(int(reply_to["id"])) if reply_to else None
        # A client's reply pings the replied-to author by default.
        mentions, mention_roles, everyone = self._mentions(
            content,
            None,
            guild=int(channel["guild_id"]) if guild else None,
            replied_user=referenced["author"] if referenced else None,
            author_id=int(user["id"]),
        )
        message: dict[str, Any] = {
            "id": str(self._snowflake()),
            "type": MessageType.REPLY if referenced else MessageType.DEFAULT,
            "channel_id": channel["id"],
            "author": user,
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": [dict(a, ephemeral=False) for a in attachments],
            "embeds": [],
            "components": [],
            "pinned": False,
            "flags": 0,
            "nonce": str(self._snowflake()),
            "allowed_mentions": None,
        }
        if guild:
            message["guild_id"] = channel["guild_id"]
        if referenced is not None:
            message["message_reference"] = {"type": 0, "message_id": referenced["id"], "channel_id": referenced["channel_id"]}
            if "guild_id" in referenced:
                message["message_reference"]["guild_id"] = referenced["guild_id"]
            message["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
        self.user_messages.append(message)
        self._record_message(message, None, "create")
        await self._dispatch_message_event("MESSAGE_CREATE", message)
        return message

    # ---------------------------------------------------------------- HTTP plumbing

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any], bool]]:
        """(method, path pattern below /api/v10, handler, needs bot authorization)."""
        app = r"/applications/(?P<app_id>\d+)"
        hook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        channel = r"/channels/(?P<channel_id>\d+)"
        message = channel + r"/messages/(?P<message_id>\d+)"
        table = [
            ("GET", r"/gateway", self._get_gateway, False),
            ("GET", r"/gateway/bot", self._get_gateway_bot, True),
            ("GET", r"/users/@me", self._get_current_user, True),
            ("POST", r"/users/@me/channels", self._create_dm, True),
            ("GET", r"/users/(?P<user_id>\d+)", self._get_user, True),
            ("GET", r"/(?:oauth2/)?applications/@me", self._get_application, True),
            ("GET", app + r"/commands", self._get_commands, True),
            ("PUT", app + r"/commands", self._put_commands, True),
            ("POST", app + r"/commands", self._post_command, True),
            ("GET", app + r"/commands/(?P<command_id>\d+)", self._get_command, True),
            ("PATCH", app + r"/commands/(?P<command_id>\d+)", self._patch_command, True),
            ("DELETE", app + r"/commands/(?P<command_id>\d+)", self._delete_command, True),
            ("GET", app + r"/guilds/(?P<guild_id>\d+)/commands/permissions", self._get_command_permissions, True),
            ("GET", app + r"/guilds/(?P<guild_id>\d+)/commands", self._get_commands, True),
            ("PUT", app + r"/guilds/(?P<guild_id>\d+)/commands", self._put_commands, True),
            ("POST", app + r"/guilds/(?P<guild_id>\d+)/commands", self._post_command, True),
            ("GET", app + r"/guilds/(?P<guild_id>\d+)/commands/(?P<command_id>\d+)", self._get_command, True),
            ("PATCH", app + r"/guilds/(?P<guild_id>\d+)/commands/(?P<command_id>\d+)", self._patch_command, True),
            ("DELETE", app + r"/guilds/(?P<guild_id>\d+)/commands/(?P<command_id>\d+)", self._delete_command, True),
            ("POST", r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback", self._interaction_callback, False),
            ("POST", hook, self._execute_webhook, False),
            ("GET", hook + r"/messages/(?P<message_id>@original|\d+)", self._get_webhook_message, False),
            ("PATCH", hook + r"/messages/(?P<message_id>@original|\d+)", self._edit_webhook_message, False),
            ("DELETE", hook + r"/messages/(?P<message_id>@original|\d+)", self._delete_webhook_message, False),
            ("GET", channel, self._get_channel, True),
            ("GET", channel + r"/messages", self._get_channel_messages, True),
            ("POST", channel + r"/messages", self._create_message, True),
            ("GET", message, self._get_channel_message, True),
            ("PATCH", message, self._edit_channel_message, True),
            ("DELETE", message, self._delete_channel_message, True),
            ("POST", channel + r"/typing", self._trigger_typing, True),
            ("POST", message + r"/threads", self._start_thread_from_message, True),
            ("POST", channel + r"/threads", self._start_thread, True),
            ("PUT", message + r"/reactions/(?P<emoji>[^/]+)/@me", self._add_reaction, True),
            ("DELETE", message + r"/reactions/(?P<emoji>[^/]+)/@me", self._remove_reaction, True),
            ("PUT", channel + r"/thread-members/@me", self._join_thread, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._get_guild, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._get_guild_channels, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._get_guild_roles, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._get_guild_member, True),
        ]
        return [(method, re.compile(pattern), handler, auth) for method, pattern, handler, auth in table]

    async def _read_body(self, request: web.Request) -> tuple[Any, list[dict]]:
        """The JSON body (or multipart payload_json) and any uploaded files."""
        if not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            payload, files = None, []
            for field, value in form.items():
                if isinstance(value, web.FileField):
                    files.append(
                        {
                            "field": field,
                            "filename": value.filename,
                            "content_type": value.content_type,
                            "data": value.file.read(),
                        }
                    )
                elif field == "payload_json":
                    payload = json.loads(value)
            return payload, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode("utf-8", "replace"), []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Every HTTP request: the gateway upgrade, attachment downloads, or a REST route."""
        if request.path == "/" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._serve_gateway(request)
        api = request.path.startswith(API_PREFIX + "/")
        path = request.path[len(API_PREFIX) :] if api else request.path
        body, files = await self._read_body(request)
        record = RequestRecord(request.method, path, dict(request.query), body, time.perf_counter(), files)
        self.requests.append(record)
        try:
            response = await self._route(request, record, api)
        except ApiError as error:
            response = json_response(error.body(), error.status)
            record.response = error.body()
        record.status = response.status
        self._notify()
        return response

    async def _route(self, request: web.Request, record: RequestRecord, api: bool) -> web.StreamResponse:
        """Find the handler for a request and turn its result into a response."""
        if request.method == "GET" and (match := re.fullmatch(r"/attachments/(\d+)/.+", record.path)) and not api:
            found = self._attachment_files.get(int(match.group(1)))
            if found is None:
                raise ApiError(404, 0, "404: Not Found")
            return web.Response(body=found[0], headers={"Content-Type": found[1]})
        for method, pattern, handler, needs_auth in self._routes if api else []:
            match = pattern.fullmatch(record.path)
            if match is None or method != request.method:
                continue
            if needs_auth:
                self._check_authorization(request)
            result = await handler(record, **match.groupdict())
            if isinstance(result, web.StreamResponse):
                return result
            if result is None:
                return web.Response(status=204)
            record.response = public(result)
            return json_response(record.response)
        self.unknown_requests.append(record)
        log.warning("discord emulator: unknown route %s %s", request.method, request.path)
        raise ApiError(404, 0, "Unknown route")

    def _check_authorization(self, request: web.Request) -> None:
        """Bot routes need `Authorization: Bot <token>`."""
        header = request.headers.get("Authorization", "")
        token = header[4:] if header.startswith("Bot ") else ""
        if not token or (self.token is not None and token != self.token):
            raise ApiError(401, 0, "401: Unauthorized")

    def _check_application(self, app_id: str) -> None:
        """Application routes only for our application."""
        if int(app_id) != self.application_id:
            raise ApiError(403, 50001, "Missing Access")

    # ---------------------------------------------------------------- REST: users, application, gateway

    async def _get_gateway(self, record: RequestRecord) -> dict:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, record: RequestRecord) -> dict:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        }

    async def _get_current_user(self, record: RequestRecord) -> dict:
        return dict(self.bot_user, verified=True, mfa_enabled=True, email=None, flags=0, locale="en-US")

    async def _get_user(self, record: RequestRecord, user_id: str) -> dict:
        user = self.users.get(int(user_id))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return user

    async def _create_dm(self, record: RequestRecord) -> dict:
        recipient = self.users.get(int((record.json or {}).get("recipient_id", 0)))
        if recipient is None:
            raise ApiError(404, 10013, "Unknown User")
        return self.dm_channel_for(recipient)

    async def _get_application(self, record: RequestRecord) -> dict:
        return {
            "id": str(self.application_id),
            "name": self.bot_user["username"],
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": self.owner_user,
            "team": None,
            "verify_key": secrets.token_hex(32),
            "flags": self._application_flags(),
            "summary": "",
            "rpc_origins": [],
            "bot": self.bot_user,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self.guilds),
            "terms_of_service_url": None,
            "privacy_policy_url": None,
            "integration_types_config": {"0": {}},
        }

    # ---------------------------------------------------------------- REST: application commands

    def _command_scope(self, guild_id: str | None) -> Any:
        """The key in `commands` for a route's scope."""
        if guild_id is None:
            return "global"
        if int(guild_id) not in self.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return int(guild_id)

    def _validate_command(self, command: Any, index: int | None) -> None:
        """Discord's checks on a command payload (names, descriptions, options); 400 50035 on failure."""
        where: list[Any] = [] if index is None else [index]
        if not isinstance(command, dict) or not isinstance(command.get("name"), str):
            raise form_error(where + ["name"], "BASE_TYPE_REQUIRED", "This field is required")
        kind = command.get("type", 1)
        name = command["name"]
        if kind == 1 and (not COMMAND_NAME.fullmatch(name) or name != name.lower()):
            raise form_error(where + ["name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if kind != 1 and not 1 <= len(name) <= 32:
            raise form_error(where + ["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        description = command.get("description") or ""
        if kind == 1 and not 1 <= len(description) <= 100:
            raise form_error(where + ["description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if kind != 1 and description:
            raise form_error(
                where + ["description"],
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                "Context menu commands cannot have description",
            )
        self._validate_options(command.get("options") or [], where + ["options"])

    def _validate_options(self, options: list, where: list[Any]) -> None:
        """Option rules: at most 25, unique valid names, required before optional, choices XOR autocomplete."""
        if len(options) > 25:
            raise form_error(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        names: set[str] = set()
        seen_optional = False
        subcommands = [o for o in options if o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        if subcommands and len(subcommands) != len(options):
            raise form_error(
                where,
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-command and sub-command group option types are mutually exclusive to all other types",
            )
        for position, option in enumerate(options):
            here = where + [position]
            name = option.get("name") or ""
            if not COMMAND_NAME.fullmatch(name) or name != name.lower():
                raise form_error(here + ["name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            if name in names:
                raise form_error(here + ["name"], "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option name already exists")
            names.add(name)
            if not 1 <= len(option.get("description") or "") <= 100:
                raise form_error(here + ["description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            if option.get("required"):
                if seen_optional:
                    raise form_error(
                        here + ["required"],
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
            choices = option.get("choices") or []
            if len(choices) > 25:
                raise form_error(here + ["choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            if choices and option.get("autocomplete"):
                raise form_error(
                    here + ["autocomplete"],
                    "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_AND_CHOICES",
                    "Autocomplete cannot be set with choices",
                )
            if option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
                self._validate_options(option.get("options") or [], here + ["options"])

    def _stored_command(self, command: dict, scope: Any, previous: dict | None) -> dict:
        """A command as Discord stores and echoes it: ids, version and defaults filled in."""
        stored = copy.deepcopy(command)
        stored["id"] = previous["id"] if previous else str(self._snowflake())
        stored["application_id"] = str(self.application_id)
        stored["version"] = str(self._snowflake())
        stored.setdefault("type", 1)
        stored.setdefault("description", "")
        stored.setdefault("options", [])
        stored.setdefault("default_member_permissions", None)
        stored.setdefault("dm_permission", True)
        stored.setdefault("nsfw", False)
        stored.setdefault("contexts", None)
        stored.setdefault("integration_types", [0])
        if scope != "global":
            stored["guild_id"] = str(scope)
        return stored

    async def _get_commands(self, record: RequestRecord, app_id: str, guild_id: str | None = None) -> list:
        self._check_application(app_id)
        return self.commands.get(self._command_scope(guild_id), [])

    async def _put_commands(self, record: RequestRecord, app_id: str, guild_id: str | None = None) -> list:
        """Bulk overwrite: commands keep their id when name and type match an existing one."""
        self._check_application(app_id)
        scope = self._command_scope(guild_id)
        payload = record.json
        if not isinstance(payload, list):
            raise form_error([], "BASE_TYPE_ARRAY", "Must be an array.")
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(payload):
            self._validate_command(command, index)
            key = (command["name"], command.get("type", 1))
            if key in seen:
                raise form_error(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {command['name']}",
                )
            seen.add(key)
        existing = {(c["name"], c["type"]): c for c in self.commands.get(scope, [])}
        stored = [self._stored_command(c, scope, existing.get((c["name"], c.get("type", 1)))) for c in payload]
        self.commands[scope] = stored
        self._notify()
        return stored

    async def _post_command(self, record: RequestRecord, app_id: str, guild_id: str | None = None) -> dict:
        """Create or replace one command (upsert by name and type)."""
        self._check_application(app_id)
        scope = self._command_scope(guild_id)
        self._validate_command(record.json, None)
        commands = self.commands.setdefault(scope, [])
        key = (record.json["name"], record.json.get("type", 1))
        previous = next((c for c in commands if (c["name"], c["type"]) == key), None)
        stored = self._stored_command(record.json, scope, previous)
        if previous is not None:
            commands[commands.index(previous)] = stored
        else:
            commands.append(stored)
        self._notify()
        return stored

    def _command_by_id(self, scope: Any, command_id: str) -> dict:
        """A stored command, or 404 Unknown application command."""
        found = next((c for c in self.commands.get(scope, []) if c["id"] == command_id), None)
        if found is None:
            raise ApiError(404, 10063, "Unknown application command")
        return found

    async def _get_command(self, record: RequestRecord, app_id: str, command_id: str, guild_id: str | None = None) -> dict:
        self._check_application(app_id)
        return self._command_by_id(self._command_scope(guild_id), command_id)

    async def _patch_command(self, record: RequestRecord, app_id: str, command_id: str, guild_id: str | None = None) -> dict:
        self._check_application(app_id)
        scope = self._command_scope(guild_id)
        command = self._command_by_id(scope, command_id)
        updated = dict(command, **(record.json or {}))
        self._validate_command(updated, None)
        updated["version"] = str(self._snowflake())
        commands = self.commands[scope]
        commands[commands.index(command)] = updated
        self._notify()
        return updated

    async def _delete_command(self, record: RequestRecord, app_id: str, command_id: str, guild_id: str | None = None) -> None:
        self._check_application(app_id)
        scope = self._command_scope(guild_id)
        self.commands[scope].remove(self._command_by_id(scope, command_id))
        self._notify()

    async def _get_command_permissions(self, record: RequestRecord, app_id: str, guild_id: str) -> list:
        self._check_application(app_id)
        return []

    # ---------------------------------------------------------------- REST: interactions and webhooks

    def _interaction_message_extra(self, interaction: Interaction, *, followup: bool) -> dict:
        """What marks a message as an interaction's: webhook and application ids, interaction metadata."""
        user = interaction.payload.get("user") or interaction.payload["member"]["user"]
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": user,
            "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
        }
        data = interaction.payload.get("data", {})
        extra: dict[str, Any] = {"webhook_id": str(self.application_id), "application_id": str(self.application_id)}
        if interaction.type == InteractionType.APPLICATION_COMMAND:
            metadata["name"] = " ".join([data["name"]] + self._subcommand_path(data.get("options") or []))
            metadata["command_type"] = data.get("type", 1)
            extra["interaction"] = {"id": str(interaction.id), "type": interaction.type, "name": metadata["name"], "user": user}
        if interaction.message_id is not None:
            metadata["interacted_message_id"] = str(interaction.message_id)
        if followup and interaction.original_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_id)
        extra["interaction_metadata"] = metadata
        return extra

    @staticmethod
    def _subcommand_path(options: list[dict]) -> list[str]:
        """The subcommand names an invocation went through."""
        for option in options:
            if option.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
                return [option["name"]] + DiscordEmulator._subcommand_path(option.get("options") or [])
        return []

    def _interaction_message(
        self,
        interaction: Interaction,
        body: dict,
        files: list[dict],
        *,
        followup: bool,
        loading: bool = False,
    ) -> dict:
        """A message sent through an interaction (response or follow-up), authored by the bot as a webhook."""
        channel = self._require_channel(int(interaction.payload["channel_id"]))
        if interaction.type == InteractionType.APPLICATION_COMMAND and not followup:
            kind = MessageType.CHAT_INPUT_COMMAND if interaction.payload["data"].get("type", 1) == 1 else MessageType.CONTEXT_MENU_COMMAND
        else:
            kind = MessageType.DEFAULT
        if loading:
            # The "thinking" placeholder: empty, flagged LOADING, ephemeral if the deferral asked for it.
            flags = MessageFlag.LOADING | (int(body.get("flags") or 0) & MessageFlag.EPHEMERAL)
            message = {
                "id": str(self._snowflake()),
                "type": kind,
                "channel_id": channel["id"],
                "author": self.bot_user,
                "content": "",
                "timestamp": iso_now(),
                "edited_timestamp": None,
                "tts": False,
                "mention_everyone": False,
                "mentions": [],
                "mention_roles": [],
                "attachments": [],
                "embeds": [],
                "components": [],
                "pinned": False,
                "flags": flags,
                "allowed_mentions": None,
                **self._interaction_message_extra(interaction, followup=False),
            }
            if "guild_id" in channel:
                message["guild_id"] = channel["guild_id"]
            return message
        allowed = MessageFlag.EPHEMERAL | MessageFlag.SUPPRESS_EMBEDS | MessageFlag.SUPPRESS_NOTIFICATIONS | MessageFlag.IS_COMPONENTS_V2
        return self._message_from_body(
            body,
            files,
            channel=channel,
            author=self.bot_user,
            type_=kind,
            flags_allowed=allowed,
            extra=self._interaction_message_extra(interaction, followup=followup),
        )

    async def _interaction_callback(self, record: RequestRecord, interaction_id: str, token: str) -> Any:
        """POST /interactions/{id}/{token}/callback: the bot's one acknowledgement of an interaction."""
        arrived = record.time
        interaction = self.interactions.get(int(interaction_id))
        if interaction is None or interaction.token != token:
            raise ApiError(404, 10062, "Unknown interaction")
        body = record.json if isinstance(record.json, dict) else {}
        callback_type = body.get("type")
        data = body.get("data")
        if arrived - interaction.dispatched_at > self.ack_deadline:
            late = arrived - interaction.dispatched_at
            interaction.errors.append(f"callback {callback_type} arrived {late:.2f}s after dispatch (limit {self.ack_deadline}s)")
            self._notify()
            raise ApiError(404, 10062, "Unknown interaction")
        if interaction.callbacks:
            interaction.errors.append(f"second callback {callback_type} after {interaction.callbacks[0][0]}")
            self._notify()
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if callback_type not in ALLOWED_CALLBACKS.get(interaction.type, set()):
            interaction.errors.append(f"callback type {callback_type} is invalid for interaction type {interaction.type}")
            self._notify()
            raise form_error(["type"], "INTERACTION_CALLBACK_TYPE_INVALID", "Interaction callback type is invalid for this interaction")
        message: dict | None = None
        try:
            if callback_type == CallbackType.CHANNEL_MESSAGE:
                message = self._interaction_message(interaction, data or {}, record.files, followup=False)
            elif callback_type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
                message = self._interaction_message(interaction, data or {}, [], followup=False, loading=True)
            elif callback_type == CallbackType.UPDATE_MESSAGE:
                clicked = self._require_message(interaction.message_id)
                message = self._apply_edit(clicked, data or {}, record.files)
            elif callback_type == CallbackType.DEFERRED_UPDATE_MESSAGE:
                message = self._require_message(interaction.message_id)
            elif callback_type == CallbackType.AUTOCOMPLETE_RESULT:
                interaction.choices = self._validated_choices((data or {}).get("choices"))
            elif callback_type == CallbackType.MODAL:
                interaction.modal = data
        except ApiError as error:
            interaction.errors.append(f"callback {callback_type} rejected: {error.body()}")
            self._notify()
            raise
        interaction.callbacks.append((callback_type, data, arrived))
        if message is not None:
            interaction.original_id = int(message["id"])
            if callback_type != CallbackType.DEFERRED_UPDATE_MESSAGE:
                new = int(message["id"]) not in self._messages
                self._record_message(message, data, "create" if new else "edit")
                interaction._touched_ids.append(int(message["id"]))
                await self._echo("MESSAGE_CREATE" if new else "MESSAGE_UPDATE", message)
        self._notify()
        if record.query.get("with_response", "").lower() not in ("1", "true"):
            return None  # without with_response Discord answers 204
        return self._callback_response(interaction, callback_type, message)

    def _callback_response(self, interaction: Interaction, callback_type: int, message: dict | None) -> dict:
        """The with_response body discord.py parses into InteractionCallbackResponse."""
        summary: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        if message is not None:
            summary["response_message_id"] = message["id"]
            summary["response_message_loading"] = bool(message["flags"] & MessageFlag.LOADING)
            summary["response_message_ephemeral"] = bool(message["flags"] & MessageFlag.EPHEMERAL)
        response: dict[str, Any] = {"interaction": summary}
        if message is not None and callback_type != CallbackType.DEFERRED_UPDATE_MESSAGE:
            response["resource"] = {"type": callback_type, "message": message}
        elif callback_type in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.MODAL, CallbackType.AUTOCOMPLETE_RESULT):
            response["resource"] = {"type": callback_type}
        return response

    @staticmethod
    def _validated_choices(choices: Any) -> list[dict]:
        """Autocomplete choices: a list of at most 25 {name (1-100 chars), value}."""
        if not isinstance(choices, list):
            raise form_error(["data", "choices"], "BASE_TYPE_REQUIRED", "This field is required")
        if len(choices) > 25:
            raise form_error(["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for index, choice in enumerate(choices):
            if not 1 <= len(str(choice.get("name", ""))) <= 100:
                raise form_error(["data", "choices", index, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            if isinstance(choice.get("value"), str) and len(choice["value"]) > 100:
                raise form_error(["data", "choices", index, "value"], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        return choices

    def _require_message(self, message_id: int | None) -> dict:
        """A current message, or Discord's 404 Unknown Message."""
        message = self._messages.get(int(message_id)) if message_id is not None else None
        if message is None:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    def _webhook_interaction(self, app_id: str, token: str) -> Interaction:
        """The interaction whose token a webhook route uses; 404 Unknown Webhook before it was acknowledged."""
        interaction = self._interactions_by_token.get(token)
        if int(app_id) != self.application_id or interaction is None or not interaction.callbacks:
            raise ApiError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message_id(self, interaction: Interaction, message_id: str) -> int:
        """Resolve @original or an id to a message of this interaction."""
        if message_id == "@original":
            if interaction.original_id is None:
                raise ApiError(404, 10008, "Unknown Message")
            return interaction.original_id
        if int(message_id) not in [interaction.original_id, *interaction.followup_ids]:
            raise ApiError(404, 10008, "Unknown Message")
        return int(message_id)

    async def _execute_webhook(self, record: RequestRecord, app_id: str, token: str) -> Any:
        """A follow-up message. After a 'thinking' deferral the first follow-up replaces the loading message."""
        interaction = self._webhook_interaction(app_id, token)
        body = record.json if isinstance(record.json, dict) else {}
        original = interaction.original
        if original is not None and original["flags"] & MessageFlag.LOADING:
            message = self._apply_edit(original, body, record.files)
            action, event = "edit", "MESSAGE_UPDATE"
        else:
            message = self._interaction_message(interaction, body, record.files, followup=True)
            action, event = "create", "MESSAGE_CREATE"
        interaction.followup_ids.append(int(message["id"]))
        interaction._touched_ids.append(int(message["id"]))
        self._record_message(message, body, action)
        await self._echo(event, message)
        if record.query.get("wait", "").lower() in ("1", "true"):
            return message
        return None

    async def _get_webhook_message(self, record: RequestRecord, app_id: str, token: str, message_id: str) -> dict:
        interaction = self._webhook_interaction(app_id, token)
        return self._require_message(self._webhook_message_id(interaction, message_id))

    async def _edit_webhook_message(self, record: RequestRecord, app_id: str, token: str, message_id: str) -> dict:
        """Edit @original or a follow-up (this is how a deferred answer becomes final)."""
        interaction = self._webhook_interaction(app_id, token)
        current = self._require_message(self._webhook_message_id(interaction, message_id))
        body = record.json if isinstance(record.json, dict) else {}
        message = self._apply_edit(current, body, record.files)
        interaction._touched_ids.append(int(message["id"]))
        self._record_message(message, body, "edit")
        await self._echo("MESSAGE_UPDATE", message)
        return message

    async def _delete_webhook_message(self, record: RequestRecord, app_id: str, token: str, message_id: str) -> None:
        interaction = self._webhook_interaction(app_id, token)
        await self._delete_message(self._require_message(self._webhook_message_id(interaction, message_id)))

    async def _delete_message(self, message: dict) -> None:
        """Remove a message and tell the bot (MESSAGE_DELETE)."""
        del self._messages[int(message["id"])]
        self.deleted_message_ids.append(int(message["id"]))
        self._notify()
        if self.echo_own_messages and not message["flags"] & MessageFlag.EPHEMERAL:
            event = {"id": message["id"], "channel_id": message["channel_id"]}
            if "guild_id" in message:
                event["guild_id"] = message["guild_id"]
            await self._dispatch("MESSAGE_DELETE", event, intent=Intent.GUILD_MESSAGES if "guild_id" in message else Intent.DIRECT_MESSAGES)

    # ---------------------------------------------------------------- REST: channels and messages

    def _require_permissions(self, channel: dict, needed: int) -> None:
        """403 Missing Permissions unless the bot has all `needed` bits in the channel."""
        if channel["type"] == DM_CHANNEL:
            return
        if self.permissions_for(self.application_id, channel) & needed != needed:
            raise ApiError(403, 50013, "Missing Permissions")

    async def _get_channel(self, record: RequestRecord, channel_id: str) -> dict:
        return self._require_channel(int(channel_id))

    async def _get_channel_messages(self, record: RequestRecord, channel_id: str) -> list:
        """Channel history, newest first, with before/after/around and limit (default 50, max 100)."""
        channel = self._require_channel(int(channel_id))
        self._require_permissions(channel, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        history = self.channel_messages(int(channel_id))
        limit = max(1, min(100, int(record.query.get("limit", 50))))
        if "before" in record.query:
            history = [m for m in history if int(m["id"]) < int(record.query["before"])]
        if "after" in record.query:
            history = [m for m in history if int(m["id"]) > int(record.query["after"])][:limit]
        if "around" in record.query:
            pivot = int(record.query["around"])
            older = [m for m in history if int(m["id"]) < pivot][-(limit // 2) :] if limit > 1 else []
            history = older + [m for m in history if int(m["id"]) >= pivot][: limit - len(older)]
        return list(reversed(history[-limit:]))

    async def _get_channel_message(self, record: RequestRecord, channel_id: str, message_id: str) -> dict:
        message = self._require_message(int(message_id))
        if message["channel_id"] != channel_id or message["flags"] & MessageFlag.EPHEMERAL:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def _create_message(self, record: RequestRecord, channel_id: str) -> dict:
        """POST /channels/{id}/messages: a post or a reply (message_reference) by the bot."""
        channel = self._require_channel(int(channel_id))
        in_thread = channel["type"] in THREAD_TYPES
        self._require_permissions(channel, Perm.VIEW_CHANNEL | (Perm.SEND_MESSAGES_IN_THREADS if in_thread else Perm.SEND_MESSAGES))
        body = record.json if isinstance(record.json, dict) else {}
        extra: dict[str, Any] = {}
        kind = MessageType.DEFAULT
        reference = body.get("message_reference")
        if reference and reference.get("type", 0) == 0:
            referenced = self._messages.get(int(reference.get("message_id") or 0))
            if referenced is not None and referenced["channel_id"] != str(reference.get("channel_id", channel_id)):
                referenced = None
            if referenced is None:
                if reference.get("fail_if_not_exists", True):
                    raise form_error(["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            else:
                kind = MessageType.REPLY
                extra["message_reference"] = {"type": 0, "message_id": referenced["id"], "channel_id": referenced["channel_id"]}
                if "guild_id" in referenced:
                    extra["message_reference"]["guild_id"] = referenced["guild_id"]
                extra["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
        # EPHEMERAL only exists for interaction responses; Discord drops it on channel messages.
        allowed = MessageFlag.SUPPRESS_EMBEDS | MessageFlag.SUPPRESS_NOTIFICATIONS | MessageFlag.IS_COMPONENTS_V2
        message = self._message_from_body(
            body,
            record.files,
            channel=channel,
            author=self.bot_user,
            type_=kind,
            extra=extra,
            flags_allowed=allowed,
        )
        self._record_message(message, body, "create")
        await self._echo("MESSAGE_CREATE", message)
        return message

    async def _edit_channel_message(self, record: RequestRecord, channel_id: str, message_id: str) -> dict:
        """PATCH /channels/{id}/messages/{id}: only the bot's own messages."""
        current = await self._get_channel_message(record, channel_id, message_id)
        if current["author"]["id"] != self.bot_user["id"]:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = record.json if isinstance(record.json, dict) else {}
        message = self._apply_edit(current, body, record.files)
        self._record_message(message, body, "edit")
        await self._echo("MESSAGE_UPDATE", message)
        return message

    async def _delete_channel_message(self, record: RequestRecord, channel_id: str, message_id: str) -> None:
        current = await self._get_channel_message(record, channel_id, message_id)
        if current["author"]["id"] != self.bot_user["id"]:
            self._require_permissions(self._require_channel(int(channel_id)), Perm.MANAGE_MESSAGES)
        await self._delete_message(current)

    async def _trigger_typing(self, record: RequestRecord, channel_id: str) -> None:
        channel = self._require_channel(int(channel_id))
        self._require_permissions(channel, Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES)
        self.typing.append((int(channel_id), record.time))

    async def _add_reaction(self, record: RequestRecord, channel_id: str, message_id: str, emoji: str) -> None:
        await self._get_channel_message(record, channel_id, message_id)
        needed = Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY | Perm.ADD_REACTIONS
        self._require_permissions(self._require_channel(int(channel_id)), needed)
        self.reactions.append((int(message_id), emoji, record.time))

    async def _remove_reaction(self, record: RequestRecord, channel_id: str, message_id: str, emoji: str) -> None:
        await self._get_channel_message(record, channel_id, message_id)
        self.reactions = [r for r in self.reactions if (r[0], r[1]) != (int(message_id), emoji)]

    def _thread_payload(self, thread_id: int, parent: dict, name: str, kind: int, auto_archive: int) -> dict:
        """A thread channel object with the bot as owner and (only) member."""
        now = iso_now()
        return {
            "id": str(thread_id),
            "type": kind,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": self.bot_user["id"],
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive,
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
                **({"invitable": True} if kind == PRIVATE_THREAD else {}),
            },
            "member": {"id": str(thread_id), "user_id": self.bot_user["id"], "join_timestamp": now, "flags": 0},
        }

    def _thread_request(self, record: RequestRecord) -> tuple[str, int]:
        """Validated (name, auto_archive_duration) of a thread creation body."""
        body = record.json if isinstance(record.json, dict) else {}
        name = body.get("name") or ""
        if not 1 <= len(name) <= 100:
            raise form_error(["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        auto_archive = body.get("auto_archive_duration") or 1440
        if auto_archive not in (60, 1440, 4320, 10080):
            raise form_error(["auto_archive_duration"], "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}.")
        return name, auto_archive

    async def _create_thread(self, thread: dict) -> dict:
        """Store a new thread and dispatch THREAD_CREATE (newly_created) before answering, as Discord does."""
        thread_id = int(thread["id"])
        self.threads[thread_id] = thread
        self._channel_message_ids[thread_id] = []
        self._notify()
        await self._dispatch("THREAD_CREATE", dict(thread, newly_created=True), intent=Intent.GUILDS)
        return thread

    async def _start_thread_from_message(self, record: RequestRecord, channel_id: str, message_id: str) -> dict:
        """A public thread on a message; like Discord, the thread's id is the message's id."""
        parent = self._require_channel(int(channel_id))
        if parent["type"] not in (0, 5):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        message = self._require_message(int(message_id))
        if message["channel_id"] != channel_id:
            raise ApiError(404, 10008, "Unknown Message")
        self._require_permissions(parent, Perm.VIEW_CHANNEL | Perm.CREATE_PUBLIC_THREADS)
        if int(message_id) in self.threads:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        name, auto_archive = self._thread_request(record)
        thread = self._thread_payload(int(message_id), parent, name, PUBLIC_THREAD, auto_archive)
        message["thread"] = {k: v for k, v in thread.items() if k != "member"}
        message["flags"] |= MessageFlag.HAS_THREAD
        return await self._create_thread(thread)

    async def _start_thread(self, record: RequestRecord, channel_id: str) -> dict:
        """A thread without a starter message (public 11 by default, private 12)."""
        parent = self._require_channel(int(channel_id))
        if parent["type"] not in (0, 5):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        kind = (record.json or {}).get("type") or PRIVATE_THREAD
        if kind not in (PUBLIC_THREAD, PRIVATE_THREAD):
            raise form_error(["type"], "BASE_TYPE_CHOICES", "Value must be one of {11, 12}.")
        needed = Perm.CREATE_PUBLIC_THREADS if kind == PUBLIC_THREAD else Perm.CREATE_PRIVATE_THREADS
        self._require_permissions(parent, Perm.VIEW_CHANNEL | needed)
        name, auto_archive = self._thread_request(record)
        return await self._create_thread(self._thread_payload(self._snowflake(), parent, name, kind, auto_archive))

    async def _join_thread(self, record: RequestRecord, channel_id: str) -> None:
        if int(channel_id) not in self.threads:
            raise ApiError(404, 10003, "Unknown Channel")

    # ---------------------------------------------------------------- REST: guild

    def _require_guild(self, guild_id: str) -> EmulatedGuild:
        """A guild the bot is in, or Discord's 404 Unknown Guild."""
        if int(guild_id) not in self.guilds:
            raise ApiError(404, 10004, "Unknown Guild")
        return self.guilds[int(guild_id)]

    async def _get_guild(self, record: RequestRecord, guild_id: str) -> dict:
        self._require_guild(guild_id)
        payload = self.guild_payload(int(guild_id))
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large", "member_count"):
            payload.pop(key, None)
        return payload

    async def _get_guild_channels(self, record: RequestRecord, guild_id: str) -> list:
        return list(self._require_guild(guild_id).channels.values())

    async def _get_guild_roles(self, record: RequestRecord, guild_id: str) -> list:
        return list(self._require_guild(guild_id).roles.values())

    async def _get_guild_member(self, record: RequestRecord, guild_id: str, user_id: str) -> dict:
        member = self._require_guild(guild_id).members.get(int(user_id))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return member
