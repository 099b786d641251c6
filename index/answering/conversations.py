"""Conversation turns in SQLite, so a follow-up question can be read with the turns before it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from index.database import open_database
from index.types import Turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    asked_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation, id);
CREATE INDEX IF NOT EXISTS turns_by_time ON turns(asked_at);
"""
MAX_CONVERSATION_ID = 200
# Earlier turns a follow-up question is read with, in Discord and in the terminal chat alike.
HISTORY_TURNS = 4
# Old turns are purged when the store opens, then on a write at most this often.
PURGE_EVERY_SECONDS = 3600.0


def days_ago(days: int) -> str:
    """The ISO time (UTC, seconds, as the stores write it) `days` days before now."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")


def check_conversation_id(conversation: str) -> str:
    """The id without surrounding spaces; ValueError when it is empty or too long."""
    conversation = conversation.strip()
    if not conversation or len(conversation) > MAX_CONVERSATION_ID:
        raise ValueError(f"a conversation id must be 1 to {MAX_CONVERSATION_ID} characters")
    return conversation


class ConversationStore:
    """Turns of many conversations (a CLI conversation id, a Discord thread id) in one SQLite file."""

    def __init__(self, path: Path, keep_days: int = 0):
        """Open (creating) the store; turns older than `keep_days` days are deleted now and as it is written (0 = kept forever)."""
        self._db = open_database(path, SCHEMA)
        self._lock = threading.Lock()
        self.keep_days = keep_days
        self._purged_at = time.monotonic()
        self.purge()

    def purge(self) -> int:
        """Delete the turns older than keep_days; returns how many."""
        if self.keep_days <= 0:
            return 0
        with self._lock:
            self._purged_at = time.monotonic()
            return self._db.execute("DELETE FROM turns WHERE asked_at < ?", (days_ago(self.keep_days),)).rowcount

    @staticmethod
    def _check(conversation: str) -> str:
        return check_conversation_id(conversation)

    def history(self, conversation: str, limit: int = 4) -> list[Turn]:
        """The last `limit` turns of a conversation, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT question, answer FROM turns WHERE conversation = ? ORDER BY id DESC LIMIT ?",
                (self._check(conversation), limit),
            ).fetchall()
        return [Turn(q, a) for q, a in reversed(rows)]

    def add(self, conversation: str, question: str, answer: str) -> None:
        """Record one exchange."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute(
                "INSERT INTO turns (conversation, question, answer, asked_at) VALUES (?,?,?,?)",
                (self._check(conversation), question, answer, now),
            )
        if time.monotonic() - self._purged_at >= PURGE_EVERY_SECONDS:
            self.purge()

    def close(self) -> None:
        """Close the database."""
        self._db.close()
