"""The small SQLite databases in the bot's data folder (conversations, the bot's answers, feeds): opened one way."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """A connection usable from worker threads (callers serialise with a lock), WAL, foreign keys, schema applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # WAL: the bot's readers never wait for a writer's commit, and a crash never leaves a half-written page.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(schema)
    return db


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just made (sqlite3 types `lastrowid` as optional)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise RuntimeError("the INSERT made no row")
    return rowid
