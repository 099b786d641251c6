"""Running `policybot` in-process for CLI tests: a clean environment and a stand-in model loader."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import bot.cli
from bot.cli import main
from bot.settings import Settings

SETTING_NAMES = {
    "CORPUS_DIR",
    "INDEX_DIR",
    "EMBEDDING_MODEL",
    "RETRIEVAL",
    "ANN_INDEX",
    "ANN_THRESHOLD",
    "CHUNK_TOKENS",
    "CHUNK_OVERLAP_SENTENCES",
    "MAX_ARTICLE_MB",
    "DISCORD_TOKEN",
    "DEV_GUILD_ID",
    "ADMIN_ROLE_ID",
    "ASK_COOLDOWN_SECONDS",
    "ALLOW_DMS",
    "MAX_CONCURRENT_ANSWERS",
    "DISCORD_API_URL",
    "DISCORD_GATEWAY_URL",
    "FETCH_ALLOW_LOOPBACK",
    "FETCH_MAX_MB",
    "FETCH_TIMEOUT_SECONDS",
    "MAX_PDF_PAGES",
    "FEED_CHECK_MINUTES",
    "DATA_DIR",
    "TORCH_THREADS",
    "CONVERSATION_DAYS",
    "ANSWER_LOG_DAYS",
    "LOG_LEVEL",
}


def clean_environment(monkeypatch) -> None:
    """No setting leaks in from the machine running the tests (an LLM endpoint above all)."""
    for name in list(os.environ):
        if name in SETTING_NAMES or name.startswith("LLM_"):
            monkeypatch.delenv(name)


class Run:
    """Runs bot.cli.main in this process with a chosen embedder, counting model loads."""

    def __init__(self, corpus: Path, index_dir: Path, monkeypatch, embedder):
        self.corpus = corpus
        self.index_dir = index_dir
        self.monkeypatch = monkeypatch
        self.embedder = embedder
        self.loads = 0
        monkeypatch.setattr(bot.cli, "load_embedder", self._load)

    def _load(self, settings, bulk=False):
        self.loads += 1
        return self.embedder

    def __call__(self, *argv: str, stdin: str | None = None, paths: bool = True) -> tuple[int, str, str]:
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        prefix = ["--corpus", str(self.corpus), "--index-dir", str(self.index_dir)] if paths else []
        code = main([*prefix, *argv], out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    def settings(self) -> Settings:
        """The settings the CLI would use for this run's folders."""
        return Settings.load(environ={"CORPUS_DIR": str(self.corpus), "INDEX_DIR": str(self.index_dir)}, dotenv_path=None)
