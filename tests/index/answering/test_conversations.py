"""Conversation turns in SQLite: order, limits, id checks, persistence."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from index.answering.conversations import (
    MAX_CONVERSATION_ID,
    ConversationStore,
    check_conversation_id,
)
from index.types import Turn


@pytest.fixture
def store(tmp_path):
    conversations = ConversationStore(tmp_path / "nested" / "conversations.sqlite")
    yield conversations
    conversations.close()


def test_history_is_oldest_first_and_limited(store):
    for n in range(1, 7):
        store.add("thread-1", f"question {n}", f"answer {n} [1]")
    assert store.history("thread-1") == [Turn(f"question {n}", f"answer {n} [1]") for n in (3, 4, 5, 6)]
    assert store.history("thread-1", limit=2) == [Turn("question 5", "answer 5 [1]"), Turn("question 6", "answer 6 [1]")]
    assert store.history("thread-1", limit=1) == [Turn("question 6", "answer 6 [1]")]
    assert len(store.history("thread-1", limit=100)) == 6
    assert store.history("thread-1", limit=0) == []


def test_conversations_are_kept_apart(store):
    store.add("a", "first in a", "1")
    store.add("b", "first in b", "2")
    store.add("a", "second in a", "3")
    assert [t.question for t in store.history("a")] == ["first in a", "second in a"]
    assert [t.question for t in store.history("b")] == ["first in b"]
    assert store.history("never-used") == []


def test_ids_are_trimmed(store):
    store.add("  thread  ", "q", "a")
    assert store.history("thread") == [Turn("q", "a")]
    assert check_conversation_id("  thread\n") == "thread"


@pytest.mark.parametrize("bad", ["", "   ", "\n\t", "x" * (MAX_CONVERSATION_ID + 1)], ids=["empty", "spaces", "whitespace", "too-long"])
def test_bad_ids_are_refused(store, bad):
    with pytest.raises(ValueError, match=f"1 to {MAX_CONVERSATION_ID} characters"):
        store.add(bad, "q", "a")
    with pytest.raises(ValueError, match="conversation id"):
        store.history(bad)
    with pytest.raises(ValueError):
        check_conversation_id(bad)


def test_longest_id_and_odd_text_are_kept(store):
    longest = "é" * MAX_CONVERSATION_ID
    question = "'; DROP TABLE turns; -- 🙂 <@123> @everyone"
    store.add(longest, question, "answer\nwith lines")
    assert store.history(longest) == [Turn(question, "answer\nwith lines")]


def test_history_survives_reopening(tmp_path):
    path = tmp_path / "conversations.sqlite"
    first = ConversationStore(path)
    first.add("c", "What did Russia buy?", "Ammunition [1].")
    first.close()
    second = ConversationStore(path)
    try:
        second.add("c", "And China?", "A buffer [1].")
        assert second.history("c") == [Turn("What did Russia buy?", "Ammunition [1]."), Turn("And China?", "A buffer [1].")]
    finally:
        second.close()
    rows = sqlite3.connect(path).execute("SELECT conversation, question, asked_at FROM turns ORDER BY id").fetchall()
    assert [r[:2] for r in rows] == [("c", "What did Russia buy?"), ("c", "And China?")]
    assert all(r[2].endswith("+00:00") for r in rows)  # UTC timestamps


def test_concurrent_writers_lose_nothing(store):
    def write(name):
        for n in range(25):
            store.add(name, f"{name} {n}", "")

    threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        assert [t.question for t in store.history(f"t{i}", limit=100)] == [f"t{i} {n}" for n in range(25)]
