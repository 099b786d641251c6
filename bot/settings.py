"""All settings in one place: read from the environment and `.env`, validated once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from index.indexing.ann import ANN_MODES, DEFAULT_ANN_THRESHOLD
from index.indexing.chunking import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP_SENTENCES,
    DEFAULT_TARGET_TOKENS,
)
from index.indexing.corpus import DEFAULT_MAX_ARTICLE_BYTES
from index.indexing.embedding import PACKAGED_MODEL
from index.indexing.indexer import IndexOptions
from index.retrieval.retriever import DEFAULT_RETRIEVAL, RETRIEVAL_MODES

DEFAULT_LLM_TIMEOUT_SECONDS = 30.0
DEFAULT_ASK_COOLDOWN_SECONDS = 5.0
DEFAULT_MAX_CONCURRENT_ANSWERS = 4
DEFAULT_CONVERSATION_DAYS = 30
DEFAULT_ANSWER_LOG_DAYS = 90
LOG_LEVELS = ("debug", "info", "warning", "error")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting has a value that cannot work; the message names the setting."""


@dataclass(frozen=True)
class IndexSettings:
    """Where the articles and the index live, how articles are chunked, embedded and searched."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("data/index")
    embedding_model: str = PACKAGED_MODEL
    retrieval: str = DEFAULT_RETRIEVAL
    ann_index: str = "auto"
    ann_threshold: int = DEFAULT_ANN_THRESHOLD
    chunk_tokens: int = DEFAULT_TARGET_TOKENS
    chunk_overlap: int = DEFAULT_OVERLAP_SENTENCES
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES
    # Threads the model computes with; None = one for answering, every core for indexing.
    torch_threads: int | None = None

    def options(self) -> IndexOptions:
        """The chunking and approximate-index options the indexer needs."""
        return IndexOptions(
            target_tokens=self.chunk_tokens,
            overlap_sentences=self.chunk_overlap,
            max_article_bytes=self.max_article_bytes,
            ann_mode=self.ann_index,
            ann_threshold=self.ann_threshold,
        )


@dataclass(frozen=True)
class LLMSettings:
    """An optional OpenAI-compatible chat endpoint; no base URL means extractive answers only."""

    base_url: str | None = None
    model: str = ""
    # Like the Discord token: never in repr() or logs.
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = DEFAULT_LLM_TIMEOUT_SECONDS

    @property
    def enabled(self) -> bool:
        """True when a language model endpoint is configured."""
        return self.base_url is not None


@dataclass(frozen=True)
class DiscordSettings:
    """The bot's token, who administers it, and how it paces members."""

    # The token has no default and never appears in repr() or logs.
    token: str | None = field(default=None, repr=False)
    # A guild whose commands are synced at start (development), an extra admin role.
    dev_guild_id: int | None = None
    admin_role_id: int | None = None
    # The servers whose admins may change the shared library (/add, /remove, /reindex, /feed);
    # empty = only while the bot is in exactly one server.
    home_guild_ids: tuple[int, ...] = ()
    # Seconds between one member's questions, DMs on or off, answers computed at once.
    ask_cooldown_seconds: float = DEFAULT_ASK_COOLDOWN_SECONDS
    allow_dms: bool = True
    max_concurrent_answers: int = DEFAULT_MAX_CONCURRENT_ANSWERS
    # Another Discord API endpoint (a rate-limit proxy, or the emulator in the tests); None = discord.com.
    api_url: str | None = None
    gateway_url: str | None = None


@dataclass(frozen=True)
class IngestionSettings:
    """Limits on adding articles from web pages, uploads and feeds."""

    fetch_allow_loopback: bool = False
    fetch_max_bytes: int = 10 * 2**20
    fetch_timeout_seconds: float = 20.0
    max_pdf_pages: int = 300
    # Minutes between checks of subscribed feeds by the running bot (0 = only on demand).
    feed_check_minutes: int = 60


@dataclass(frozen=True)
class HostSettings:
    """Where the bot keeps its own state, for how long, and how much it logs."""

    # None = inside the index folder, so two index folders never share conversations or answers.
    data_dir: Path | None = None
    # Days conversation turns and logged answers (with their votes and threads) are kept; 0 = forever.
    conversation_days: int = DEFAULT_CONVERSATION_DAYS
    answer_log_days: int = DEFAULT_ANSWER_LOG_DAYS
    log_level: str = "info"


@dataclass(frozen=True)
class Settings:
    """Typed settings, grouped by concern; see .env.example for what each one does."""

    index: IndexSettings = IndexSettings()
    llm: LLMSettings = LLMSettings()
    discord: DiscordSettings = DiscordSettings()
    ingestion: IngestionSettings = IngestionSettings()
    host: HostSettings = HostSettings()

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields changed, each named as in its group (`corpus_dir=...`, `allow_dms=...`)."""
        groups = {name: getattr(self, name) for name in ("index", "llm", "discord", "ingestion", "host")}
        for key, value in changes.items():
            owner = next((name for name, group in groups.items() if key in {f.name for f in fields(group)}), None)
            if owner is None:
                raise TypeError(f"no setting named {key!r}")
            groups[owner] = replace(groups[owner], **{key: value})
        return Settings(**groups)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, dotenv_path: Path | None = Path(".env")) -> Settings:
        """Settings from `.env` overlaid by the process environment (the environment wins)."""
        values: dict[str, str] = {}
        if dotenv_path is not None and dotenv_path.is_file():
            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        """Validate raw string settings into a Settings."""

        def text(name: str, default: str) -> str:
            value = values.get(name, "").strip()
            return value or default

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = values.get(name, "").strip()
            if not raw:
                return default
            try:
                number = int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
            if not low <= number <= high:
                raise SettingsError(f"{name} must be between {low} and {high}, not {number}")
            return number

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            value = text(name, default).lower()
            if value not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
            return value

        def seconds(name: str, default: float, low: float, high: float) -> float:
            raw = values.get(name, "").strip()
            if not raw:
                return default
            try:
                number = float(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
            if not low <= number <= high:
                raise SettingsError(f"{name} must be between {low:g} and {high:g} seconds, not {raw}")
            return number

        def flag(name: str, default: bool) -> bool:
            raw = values.get(name, "").strip().lower()
            if not raw:
                return default
            if raw not in _TRUE + _FALSE:
                raise SettingsError(f"{name} must be true or false, not {raw!r}")
            return raw in _TRUE

        def snowflake(name: str) -> int | None:
            raw = values.get(name, "").strip()
            if not raw:
                return None
            if not raw.isdigit() or not 0 < int(raw) < 2**64:
                raise SettingsError(f"{name} must be a Discord id (a number; copy it with Developer Mode on), not {raw!r}")
            return int(raw)

        def snowflakes(name: str) -> tuple[int, ...]:
            ids: list[int] = []
            for raw in values.get(name, "").replace(",", " ").split():
                if not raw.isdigit() or not 0 < int(raw) < 2**64:
                    raise SettingsError(
                        f"{name} must be Discord server ids separated by commas (copy them with Developer Mode on), not {raw!r}"
                    )
                ids.append(int(raw))
            return tuple(dict.fromkeys(ids))

        def endpoint(name: str, schemes: tuple[str, ...]) -> str | None:
            raw = values.get(name, "").strip().rstrip("/")
            if not raw:
                return None
            if not raw.startswith(tuple(f"{scheme}://" for scheme in schemes)):
                raise SettingsError(f"{name} must start with {' or '.join(f'{s}://' for s in schemes)}, not {raw!r}")
            return raw

        llm_base_url = values.get("LLM_BASE_URL", "").strip() or None
        llm_model = values.get("LLM_MODEL", "").strip()
        if llm_base_url is not None:
            from index.answering.llm.client import check_base_url

            try:
                llm_base_url = check_base_url(llm_base_url)
            except ValueError as exc:
                raise SettingsError(f"LLM_BASE_URL {exc}") from None
            if not llm_model:
                raise SettingsError("LLM_MODEL must name the model to use when LLM_BASE_URL is set (for example llama3.2:3b)")
        llm_api_key = values.get("LLM_API_KEY", "").strip() or None
        if llm_api_key is not None:
            from index.answering.llm.client import check_api_key

            if not check_api_key(llm_api_key):
                raise SettingsError("LLM_API_KEY must be printable ASCII without spaces")

        return cls(
            index=IndexSettings(
                corpus_dir=Path(text("CORPUS_DIR", "corpus")).expanduser(),
                index_dir=Path(text("INDEX_DIR", "data/index")).expanduser(),
                embedding_model=text("EMBEDDING_MODEL", PACKAGED_MODEL),
                retrieval=choice("RETRIEVAL", DEFAULT_RETRIEVAL, RETRIEVAL_MODES),
                ann_index=choice("ANN_INDEX", "auto", ANN_MODES),
                ann_threshold=integer("ANN_THRESHOLD", DEFAULT_ANN_THRESHOLD, 1_000, 1_000_000_000),
                chunk_tokens=integer("CHUNK_TOKENS", DEFAULT_TARGET_TOKENS, 32, DEFAULT_MAX_TOKENS),
                chunk_overlap=integer("CHUNK_OVERLAP_SENTENCES", DEFAULT_OVERLAP_SENTENCES, 0, 5),
                max_article_bytes=integer("MAX_ARTICLE_MB", DEFAULT_MAX_ARTICLE_BYTES // 2**20, 1, 1024) * 2**20,
                torch_threads=integer("TORCH_THREADS", 0, 0, 1024) or None,
            ),
            llm=LLMSettings(
                base_url=llm_base_url,
                model=llm_model,
                api_key=llm_api_key,
                timeout_seconds=seconds("LLM_TIMEOUT_SECONDS", DEFAULT_LLM_TIMEOUT_SECONDS, 1, 600),
            ),
            discord=DiscordSettings(
                token=values.get("DISCORD_TOKEN", "").strip() or None,
                dev_guild_id=snowflake("DEV_GUILD_ID"),
                admin_role_id=snowflake("ADMIN_ROLE_ID"),
                home_guild_ids=snowflakes("HOME_GUILD_IDS"),
                ask_cooldown_seconds=seconds("ASK_COOLDOWN_SECONDS", DEFAULT_ASK_COOLDOWN_SECONDS, 0, 3600),
                allow_dms=flag("ALLOW_DMS", True),
                max_concurrent_answers=integer("MAX_CONCURRENT_ANSWERS", DEFAULT_MAX_CONCURRENT_ANSWERS, 1, 64),
                api_url=endpoint("DISCORD_API_URL", ("http", "https")),
                gateway_url=endpoint("DISCORD_GATEWAY_URL", ("ws", "wss")),
            ),
            ingestion=IngestionSettings(
                fetch_allow_loopback=flag("FETCH_ALLOW_LOOPBACK", False),
                fetch_max_bytes=integer("FETCH_MAX_MB", 10, 1, 100) * 2**20,
                fetch_timeout_seconds=seconds("FETCH_TIMEOUT_SECONDS", 20.0, 1, 300),
                max_pdf_pages=integer("MAX_PDF_PAGES", 300, 1, 10_000),
                feed_check_minutes=integer("FEED_CHECK_MINUTES", 60, 0, 10_080),
            ),
            host=HostSettings(
                data_dir=Path(values["DATA_DIR"].strip()).expanduser() if values.get("DATA_DIR", "").strip() else None,
                conversation_days=integer("CONVERSATION_DAYS", DEFAULT_CONVERSATION_DAYS, 0, 36_500),
                answer_log_days=integer("ANSWER_LOG_DAYS", DEFAULT_ANSWER_LOG_DAYS, 0, 36_500),
                log_level=choice("LOG_LEVEL", "info", LOG_LEVELS),
            ),
        )

    @property
    def data_dir(self) -> Path:
        """Where the bot's own state lives (answers, conversations, feeds, removed articles): DATA_DIR, else the index folder.

        Never the index folder's parent: two index folders under one parent would share them.
        The indexer leaves these files alone (it deletes only its own generations).
        """
        return self.host.data_dir if self.host.data_dir is not None else self.index.index_dir

    @property
    def bot_database(self) -> Path:
        """Where the bot keeps answers, votes and threads."""
        return self.data_dir / "bot.sqlite"

    @property
    def conversations_database(self) -> Path:
        """Where conversation turns (CLI conversations, Discord threads) are kept."""
        return self.data_dir / "conversations.sqlite"

    @property
    def feeds_database(self) -> Path:
        """Where feed subscriptions and the items seen are kept."""
        return self.data_dir / "feeds.sqlite"

    @property
    def removed_dir(self) -> Path:
        """Where removed articles' files are moved (never deleted)."""
        return self.data_dir / "removed"
