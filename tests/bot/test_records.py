"""Answers, votes and threads survive a restart; a second vote changes the first, never adds to it."""

from __future__ import annotations

import pytest

from bot.records import AnswerLog, VoteCount
from index.types import Answer, Citation


def an_answer() -> Answer:
    quote = "The summit ended without a deal."
    return Answer(
        "What happened in Hanoi?",
        "The summit ended without a deal [1].",
        False,
        (Citation(1, "nk", "North Korea", "https://e.org", 2, quote, 10, 10 + len(quote), 0.8),),
    )


def test_answers_and_votes_persist_and_a_second_click_changes_the_vote(tmp_path):
    log = AnswerLog(tmp_path / "bot.sqlite")
    answer_id = log.record(an_answer(), user_id=7, guild_id=1, channel_id=2)
    assert log.vote(answer_id, 7, 1) == VoteCount(1, 0)
    assert log.vote(answer_id, 8, 1) == VoteCount(2, 0)
    assert log.vote(answer_id, 7, -1) == VoteCount(1, 1)
    assert log.vote(answer_id, 7, -1) == VoteCount(1, 1)
    log.close()

    reopened = AnswerLog(tmp_path / "bot.sqlite")
    stored = reopened.get(answer_id)
    assert stored.question == "What happened in Hanoi?"
    assert stored.citations == an_answer().citations
    assert reopened.votes(answer_id) == [(7, -1), (8, 1)]
    assert reopened.get(answer_id + 1) is None


def test_votes_must_be_up_or_down_and_on_a_known_answer(tmp_path):
    import sqlite3

    log = AnswerLog(tmp_path / "bot.sqlite")
    with pytest.raises(ValueError):
        log.vote(1, 7, 5)
    with pytest.raises(sqlite3.IntegrityError):
        log.vote(999, 7, 1)


def test_threads_are_remembered_once(tmp_path):
    log = AnswerLog(tmp_path / "bot.sqlite")
    answer_id = log.record(an_answer(), 7, 1, 2)
    assert not log.is_bot_thread(55)
    log.add_thread(55, answer_id)
    log.add_thread(55, answer_id)
    assert log.is_bot_thread(55)
    assert log.thread_for_answer(answer_id) == 55
    assert log.thread_for_answer(answer_id + 1) is None


def test_threads_are_remembered_across_a_restart(tmp_path):
    log = AnswerLog(tmp_path / "bot.sqlite")
    log.add_thread(77, log.record(an_answer(), 7, 1, 2))
    log.close()
    assert AnswerLog(tmp_path / "bot.sqlite").is_bot_thread(77)
