"""What the bot remembers in SQLite: answers given, members' votes on them, and its follow-up threads.

Answers are kept so the buttons under them (Show passages, 👍/👎, Follow up in a thread) keep
working after a restart: a button's custom id carries only the answer's number.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from index.answering.conversations import PURGE_EVERY_SECONDS, days_ago
from index.database import inserted_id, open_database
from index.types import Answer, Citation

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asked_at TEXT NOT NULL,
    guild_id INTEGER,
    channel_id INTEGER,
    user_id INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    citations TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    user_id INTEGER NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    voted_at TEXT NOT NULL,
    PRIMARY KEY (answer_id, user_id)
);
CREATE TABLE IF NOT EXISTS threads (
    thread_id INTEGER PRIMARY KEY,
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    created_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StoredAnswer:
    """An answer as it was given, with the citations its buttons need."""

    answer_id: int
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class VoteCount:
    """Votes on one answer after a member voted."""

    up: int
    down: int


class AnswerLog:
    """Answers, votes and threads in one SQLite file; safe to use from worker threads."""

    def __init__(self, path: Path, keep_days: int = 0):
        """Open (creating) the log; answers older than `keep_days` days go, with their votes and threads (0 = kept forever)."""
        self._db = open_database(path, SCHEMA)
        self._db.execute("CREATE INDEX IF NOT EXISTS answers_by_time ON answers(asked_at)")
        self._lock = threading.Lock()
        self.keep_days = keep_days
        self._purged_at = time.monotonic()
        self._threads: set[int] = set()
        self.purge()
        # Asked for every message in every thread, on the event loop: answered from memory.
        self._threads = {row[0] for row in self._db.execute("SELECT thread_id FROM threads")}

    def purge(self) -> int:
        """Delete the answers older than keep_days, with their votes and threads; returns how many answers."""
        if self.keep_days <= 0:
            return 0
        with self._lock:
            self._purged_at = time.monotonic()
            old = "SELECT id FROM answers WHERE asked_at < ?"
            cutoff = days_ago(self.keep_days)
            self._db.execute("BEGIN")
            try:
                gone = {row[0] for row in self._db.execute(f"SELECT thread_id FROM threads WHERE answer_id IN ({old})", (cutoff,))}
                self._db.execute(f"DELETE FROM votes WHERE answer_id IN ({old})", (cutoff,))
                self._db.execute(f"DELETE FROM threads WHERE answer_id IN ({old})", (cutoff,))
                count = self._db.execute("DELETE FROM answers WHERE asked_at < ?", (cutoff,)).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._threads -= gone
            return count

    def record(self, answer: Answer, user_id: int, guild_id: int | None, channel_id: int | None) -> int:
        """Keep an answer (with its citations, or related reading after an abstention); returns its id."""
        sources = answer.citations or answer.related
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO answers (asked_at, guild_id, channel_id, user_id, question, answer, abstained, citations) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    guild_id,
                    channel_id,
                    user_id,
                    answer.question,
                    answer.text,
                    int(answer.abstained),
                    json.dumps([c.as_dict() for c in sources], ensure_ascii=False),
                ),
            )
            answer_id = inserted_id(cursor)
        if time.monotonic() - self._purged_at >= PURGE_EVERY_SECONDS:
            self.purge()
        return answer_id

    def get(self, answer_id: int) -> StoredAnswer | None:
        """The answer with this id, or None."""
        with self._lock:
            row = self._db.execute("SELECT id, question, answer, abstained, citations FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            return None
        citations = tuple(Citation(**c) for c in json.loads(row[4]))
        return StoredAnswer(row[0], row[1], row[2], bool(row[3]), citations)

    def vote(self, answer_id: int, user_id: int, vote: int) -> VoteCount:
        """Record or change a member's vote (+1 or -1): one vote per member per answer."""
        if vote not in (-1, 1):
            raise ValueError("a vote is +1 or -1")
        with self._lock:
            self._db.execute(
                "INSERT INTO votes (answer_id, user_id, vote, voted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (answer_id, user_id) DO UPDATE SET vote = excluded.vote, voted_at = excluded.voted_at",
                (answer_id, user_id, vote, _now()),
            )
            up, down = self._db.execute(
                "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM votes WHERE answer_id = ?",
                (answer_id,),
            ).fetchone()
        return VoteCount(int(up), int(down))

    def votes(self, answer_id: int) -> list[tuple[int, int]]:
        """(user id, vote) pairs for one answer."""
        with self._lock:
            return [
                tuple(r) for r in self._db.execute("SELECT user_id, vote FROM votes WHERE answer_id = ? ORDER BY user_id", (answer_id,))
            ]

    def add_thread(self, thread_id: int, answer_id: int) -> None:
        """Remember a follow-up thread the bot opened under an answer."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO threads (thread_id, answer_id, created_at) VALUES (?, ?, ?)", (thread_id, answer_id, _now())
            )
            self._threads.add(thread_id)

    def thread_for_answer(self, answer_id: int) -> int | None:
        """The follow-up thread already opened under an answer, if any."""
        with self._lock:
            row = self._db.execute("SELECT thread_id FROM threads WHERE answer_id = ?", (answer_id,)).fetchone()
        return int(row[0]) if row else None

    def is_bot_thread(self, thread_id: int) -> bool:
        """True for a thread the bot opened for follow-ups (from memory, no database read)."""
        return thread_id in self._threads

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
