"""Settings a host expects: DATA_DIR, how long conversations and the answer log are kept, LOG_LEVEL, TORCH_THREADS;
and old conversation turns and answers purged from real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import bot.records
import index.answering.conversations
from bot.records import AnswerLog
from bot.services import NoModel, build_services
from bot.settings import Settings, SettingsError
from index.answering.conversations import ConversationStore
from index.types import Answer


def test_defaults():
    host = Settings.from_mapping({}).host
    assert (host.data_dir, host.conversation_days, host.answer_log_days, host.log_level) == (None, 30, 90, "info")
    assert Settings.from_mapping({}).index.torch_threads is None


def test_values(tmp_path):
    settings = Settings.from_mapping(
        {
            "DATA_DIR": str(tmp_path / "state"),
            "CONVERSATION_DAYS": "7",
            "ANSWER_LOG_DAYS": "0",
            "LOG_LEVEL": " WARNING ",
            "TORCH_THREADS": "2",
        }
    )
    assert settings.host.data_dir == tmp_path / "state" and settings.data_dir == tmp_path / "state"
    assert (settings.host.conversation_days, settings.host.answer_log_days, settings.host.log_level) == (7, 0, "warning")
    assert settings.index.torch_threads == 2
    assert Settings.from_mapping({"TORCH_THREADS": "0"}).index.torch_threads is None
    assert Settings.from_mapping({"DATA_DIR": "~/state"}).data_dir == Path("~/state").expanduser()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("CONVERSATION_DAYS", "-1", "CONVERSATION_DAYS must be between 0 and"),
        ("ANSWER_LOG_DAYS", "a week", "ANSWER_LOG_DAYS must be a whole number"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of debug, info, warning, error"),
        ("TORCH_THREADS", "two", "TORCH_THREADS must be a whole number"),
    ],
)
def test_invalid_values_name_the_setting(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping({name: value})


def test_with_changes_reaches_the_host_settings(tmp_path):
    settings = Settings().with_changes(data_dir=tmp_path, conversation_days=1)
    assert settings.data_dir == tmp_path and settings.host.conversation_days == 1


def test_the_services_keep_what_the_settings_say(tmp_path):
    settings = Settings().with_changes(index_dir=tmp_path / "index", conversation_days=3, answer_log_days=5)
    services = build_services(settings, NoModel(), load_index=False)
    try:
        assert (services.conversations.keep_days, services.answers.keep_days) == (3, 5)
    finally:
        services.close()
    assert sorted(p.name for p in (tmp_path / "index").iterdir() if p.suffix == ".sqlite") == [
        "bot.sqlite",
        "conversations.sqlite",
        "feeds.sqlite",
    ]


# ---- purging, with backdated rows in real SQLite files ----------------------------------------------


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")


def backdate_turns(path: Path, rows: list[tuple[str, str, float]]) -> None:
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO turns (conversation, question, answer, asked_at) VALUES (?, ?, 'an answer', ?)",
        [(c, q, days_ago(d)) for c, q, d in rows],
    )
    db.commit()
    db.close()


def questions(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT question FROM turns ORDER BY id")]
    finally:
        db.close()


def test_old_turns_are_purged_when_the_store_opens(tmp_path):
    path = tmp_path / "conversations.sqlite"
    ConversationStore(path).close()
    backdate_turns(path, [("t1", "ancient", 400), ("t1", "last month", 31), ("t1", "last week", 7), ("t2", "today", 0)])
    ConversationStore(path, keep_days=0).close()  # 0 keeps everything
    assert questions(path) == ["ancient", "last month", "last week", "today"]
    store = ConversationStore(path, keep_days=30)
    try:
        assert questions(path) == ["last week", "today"]
        assert [turn.question for turn in store.history("t1")] == ["last week"]
    finally:
        store.close()


def test_old_turns_are_purged_as_the_store_is_written(tmp_path, monkeypatch):
    path = tmp_path / "conversations.sqlite"
    store = ConversationStore(path, keep_days=30)
    try:
        backdate_turns(path, [("t1", "old", 45)])
        store.add("t1", "new", "an answer")
        assert questions(path) == ["old", "new"]  # purged at most once an hour
        monkeypatch.setattr(index.answering.conversations, "PURGE_EVERY_SECONDS", 0.0)
        store.add("t1", "newer", "an answer")
        assert questions(path) == ["new", "newer"]
    finally:
        store.close()


def an_answer(question: str) -> Answer:
    return Answer(question=question, text="Because.", abstained=False)


def test_old_answers_go_with_their_votes_and_threads(tmp_path, monkeypatch):
    path = tmp_path / "bot.sqlite"
    log = AnswerLog(path)
    old, recent = log.record(an_answer("old?"), 1, 2, 3), log.record(an_answer("recent?"), 1, 2, 3)
    for answer_id, thread_id in ((old, 100), (recent, 200)):
        log.vote(answer_id, 7, 1)
        log.add_thread(thread_id, answer_id)
    log.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE answers SET asked_at = ? WHERE id = ?", (days_ago(91), old))
    db.execute("UPDATE answers SET asked_at = ? WHERE id = ?", (days_ago(89), recent))
    db.commit()
    db.close()

    AnswerLog(path, keep_days=0).close()
    log = AnswerLog(path, keep_days=90)
    try:
        assert log.get(old) is None and log.votes(old) == [] and log.thread_for_answer(old) is None
        assert not log.is_bot_thread(100)
        assert log.get(recent) is not None and log.votes(recent) == [(7, 1)] and log.is_bot_thread(200)

        # While the bot runs: purged as answers are recorded (at most once an hour).
        monkeypatch.setattr(bot.records, "PURGE_EVERY_SECONDS", 0.0)
        db = sqlite3.connect(path)
        db.execute("UPDATE answers SET asked_at = ? WHERE id = ?", (days_ago(95), recent))
        db.commit()
        db.close()
        newest = log.record(an_answer("newest?"), 1, 2, 3)
        assert log.get(recent) is None and not log.is_bot_thread(200) and log.get(newest) is not None
    finally:
        log.close()
