"""Settings: defaults, .env, the environment on top, validation that names the setting, no token leaks."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError
from index.indexing.ann import DEFAULT_ANN_THRESHOLD
from index.indexing.chunking import DEFAULT_OVERLAP_SENTENCES, DEFAULT_TARGET_TOKENS
from index.indexing.corpus import DEFAULT_MAX_ARTICLE_BYTES
from index.indexing.embedding import PACKAGED_MODEL
from index.retrieval.retriever import DEFAULT_RETRIEVAL

TOKEN = "MTIzNDU2Nzg5.secret-discord-token.abcdefXYZ"


def load(env: dict[str, str], dotenv: str | None, tmp_path: Path) -> Settings:
    path = tmp_path / ".env"
    if dotenv is not None:
        path.write_text(dotenv, encoding="utf-8")
    return Settings.load(environ=env, dotenv_path=path)


def test_defaults(tmp_path):
    settings = load({}, None, tmp_path)
    assert settings == Settings()
    assert settings.index.corpus_dir == Path("corpus")
    assert settings.index.index_dir == Path("data/index")
    assert settings.index.embedding_model == PACKAGED_MODEL
    assert settings.index.retrieval == DEFAULT_RETRIEVAL == "hybrid"
    assert settings.index.ann_index == "auto"
    assert settings.index.ann_threshold == DEFAULT_ANN_THRESHOLD
    assert settings.index.chunk_tokens == DEFAULT_TARGET_TOKENS
    assert settings.index.chunk_overlap == DEFAULT_OVERLAP_SENTENCES
    assert settings.index.max_article_bytes == DEFAULT_MAX_ARTICLE_BYTES == 10 * 2**20
    assert settings.discord.token is None


def test_dotenv_is_read(tmp_path):
    settings = load(
        {},
        "# comment\nCORPUS_DIR=articles\nRETRIEVAL=bm25\nANN_THRESHOLD=5000\n"
        "CHUNK_TOKENS=200\nCHUNK_OVERLAP_SENTENCES=0\nMAX_ARTICLE_MB=2\n"
        f"DISCORD_TOKEN='{TOKEN}'\nEMBEDDING_MODEL=my-model\n",
        tmp_path,
    )
    assert settings.index.corpus_dir == Path("articles")
    assert settings.index.retrieval == "bm25"
    assert settings.index.ann_threshold == 5000
    assert settings.index.chunk_tokens == 200
    assert settings.index.chunk_overlap == 0
    assert settings.index.max_article_bytes == 2 * 2**20
    assert settings.discord.token == TOKEN
    assert settings.index.embedding_model == "my-model"


def test_environment_overrides_dotenv(tmp_path):
    settings = load(
        {"RETRIEVAL": "dense", "INDEX_DIR": "/tmp/elsewhere"}, "RETRIEVAL=bm25\nINDEX_DIR=from-dotenv\nCORPUS_DIR=kept\n", tmp_path
    )
    assert settings.index.retrieval == "dense"
    assert settings.index.index_dir == Path("/tmp/elsewhere")
    assert settings.index.corpus_dir == Path("kept")


def test_load_reads_process_environment_and_dotenv_in_cwd(tmp_path, monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("LLM_") or name in {f.name.upper() for f in fields(Settings)} | {"CHUNK_TOKENS", "ANN_THRESHOLD"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CHUNK_TOKENS=64\nRETRIEVAL=bm25\n")
    monkeypatch.setenv("RETRIEVAL", "dense")
    monkeypatch.delenv("CHUNK_TOKENS", raising=False)
    settings = Settings.load()
    assert (settings.index.retrieval, settings.index.chunk_tokens) == ("dense", 64)


def test_empty_values_fall_back_to_defaults(tmp_path):
    settings = load({"RETRIEVAL": "  ", "ANN_THRESHOLD": ""}, "CORPUS_DIR=\nDISCORD_TOKEN=\nCHUNK_TOKENS\n", tmp_path)
    assert settings == Settings()


def test_missing_dotenv_is_fine(tmp_path):
    assert Settings.load(environ={}, dotenv_path=tmp_path / "absent.env") == Settings()
    assert Settings.load(environ={}, dotenv_path=None) == Settings()


def test_choices_are_case_and_space_insensitive(tmp_path):
    settings = load({"RETRIEVAL": " BM25 ", "ANN_INDEX": "IVF"}, None, tmp_path)
    assert (settings.index.retrieval, settings.index.ann_index) == ("bm25", "ivf")


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load({"CORPUS_DIR": "~/articles"}, None, tmp_path)
    assert settings.index.corpus_dir == tmp_path / "articles"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("RETRIEVAL", "foo", "RETRIEVAL must be one of hybrid, dense, bm25, not 'foo'"),
        ("ANN_INDEX", "hnsw", "ANN_INDEX must be one of auto, flat, ivf, not 'hnsw'"),
        ("ANN_THRESHOLD", "abc", "ANN_THRESHOLD must be a whole number, not 'abc'"),
        ("ANN_THRESHOLD", "1e6", "ANN_THRESHOLD must be a whole number"),
        ("ANN_THRESHOLD", "10", "ANN_THRESHOLD must be between 1000 and 1000000000, not 10"),
        ("CHUNK_TOKENS", "251", "CHUNK_TOKENS must be between 32 and 250"),
        ("CHUNK_TOKENS", "-5", "CHUNK_TOKENS must be between"),
        ("CHUNK_OVERLAP_SENTENCES", "9", "CHUNK_OVERLAP_SENTENCES must be between 0 and 5"),
        ("MAX_ARTICLE_MB", "0", "MAX_ARTICLE_MB must be between 1 and 1024"),
        ("MAX_ARTICLE_MB", "1.5", "MAX_ARTICLE_MB must be a whole number"),
        ("DEV_GUILD_ID", "my-server", "DEV_GUILD_ID must be a Discord id"),
        ("DEV_GUILD_ID", "-5", "DEV_GUILD_ID must be a Discord id"),
        ("ADMIN_ROLE_ID", "@admins", "ADMIN_ROLE_ID must be a Discord id"),
        ("HOME_GUILD_IDS", "123, my-server", "HOME_GUILD_IDS must be Discord server ids separated by commas"),
        ("ASK_COOLDOWN_SECONDS", "soon", "ASK_COOLDOWN_SECONDS must be a number of seconds"),
        ("ASK_COOLDOWN_SECONDS", "-1", "ASK_COOLDOWN_SECONDS must be between 0 and 3600"),
        ("ALLOW_DMS", "maybe", "ALLOW_DMS must be true or false, not 'maybe'"),
        ("MAX_CONCURRENT_ANSWERS", "0", "MAX_CONCURRENT_ANSWERS must be between 1 and 64"),
        ("DISCORD_API_URL", "discord.com/api", "DISCORD_API_URL must start with http:// or https://"),
        ("DISCORD_GATEWAY_URL", "https://gateway", "DISCORD_GATEWAY_URL must start with ws:// or wss://"),
    ],
)
def test_invalid_values_name_the_setting(tmp_path, name, value, message):
    with pytest.raises(SettingsError) as caught:
        load({name: value}, None, tmp_path)
    assert message in str(caught.value)
    # The same value in .env is refused the same way.
    with pytest.raises(SettingsError, match=name):
        load({}, f"{name}={value}\n", tmp_path)


def test_discord_token_never_in_repr(tmp_path):
    settings = load({"DISCORD_TOKEN": f"  {TOKEN}  "}, None, tmp_path)
    assert settings.discord.token == TOKEN
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert TOKEN not in shown
        assert "secret" not in shown
    assert "corpus_dir" in repr(settings)  # repr still shows the harmless settings


def test_discord_token_from_dotenv_never_in_repr(tmp_path):
    settings = load({}, f"DISCORD_TOKEN={TOKEN}\n", tmp_path)
    assert settings.discord.token == TOKEN and TOKEN not in repr(settings)


def test_every_secret_field_is_hidden_from_repr():
    groups = [getattr(Settings(), f.name) for f in fields(Settings)]
    every = {f"{type(group).__name__}.{f.name}": f for group in groups for f in fields(group)}
    secrets = {name for name in every if "token" in name.split(".")[1] or "key" in name.split(".")[1]}
    assert "DiscordSettings.token" in secrets and "LLMSettings.api_key" in secrets
    hidden = {name for name, f in every.items() if not f.repr}
    assert secrets - {"IndexSettings.chunk_tokens"} <= hidden


def test_index_options_follow_settings(tmp_path):
    settings = load(
        {"CHUNK_TOKENS": "96", "CHUNK_OVERLAP_SENTENCES": "2", "MAX_ARTICLE_MB": "3", "ANN_INDEX": "flat", "ANN_THRESHOLD": "2000"},
        None,
        tmp_path,
    )
    options = settings.index.options()
    assert (options.target_tokens, options.overlap_sentences, options.max_article_bytes, options.ann_mode, options.ann_threshold) == (
        96,
        2,
        3 * 2**20,
        "flat",
        2000,
    )


def test_discord_settings_defaults_and_values(tmp_path):
    settings = load({}, None, tmp_path)
    assert settings.discord.dev_guild_id is None and settings.discord.admin_role_id is None
    assert settings.discord.ask_cooldown_seconds == 5 and settings.discord.allow_dms and settings.discord.max_concurrent_answers == 4
    assert settings.discord.api_url is None and settings.discord.gateway_url is None
    settings = load(
        {
            "DEV_GUILD_ID": "123456789012345678",
            "ADMIN_ROLE_ID": "42",
            "ASK_COOLDOWN_SECONDS": "0",
            "ALLOW_DMS": "off",
            "MAX_CONCURRENT_ANSWERS": "2",
            "DISCORD_API_URL": "http://127.0.0.1:8080/api/v10/",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:8080",
        },
        None,
        tmp_path,
    )
    assert settings.discord.dev_guild_id == 123456789012345678 and settings.discord.admin_role_id == 42
    assert settings.discord.ask_cooldown_seconds == 0 and not settings.discord.allow_dms and settings.discord.max_concurrent_answers == 2
    assert settings.discord.api_url == "http://127.0.0.1:8080/api/v10"
    assert settings.discord.gateway_url == "ws://127.0.0.1:8080"


def test_home_guild_ids_are_a_list_of_server_ids(tmp_path):
    assert load({}, None, tmp_path).discord.home_guild_ids == ()
    settings = load({"HOME_GUILD_IDS": " 123456789012345678, 42 ,42 7"}, None, tmp_path)
    assert settings.discord.home_guild_ids == (123456789012345678, 42, 7)


def test_every_setting_is_documented_in_env_example():
    import re

    from bot import settings as module

    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (Path(__file__).parents[2] / ".env.example").read_text(), re.M))
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', Path(module.__file__).read_text()))
    assert read - documented == set()
