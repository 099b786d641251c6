"""Small pieces of the bot: the cooldown, the admin check, question cleaning."""

from __future__ import annotations

import discord
import pytest

from bot.app import Cooldown, new_error_id
from bot.cogs.admin import may_administer
from bot.cogs.ask import MAX_QUESTION_CHARS, clean_question


def test_cooldown_lets_one_question_through_per_period_per_member():
    now = [100.0]
    cooldown = Cooldown(5, clock=lambda: now[0])
    assert cooldown.retry_after(1) == 0
    assert cooldown.retry_after(1) == pytest.approx(5)
    assert cooldown.retry_after(2) == 0
    now[0] += 4
    assert cooldown.retry_after(1) == pytest.approx(1)
    now[0] += 1
    assert cooldown.retry_after(1) == 0


def test_cooldown_zero_is_off_and_the_table_stays_small():
    assert Cooldown(0).retry_after(1) == 0 and Cooldown(0).retry_after(1) == 0
    now = [0.0]
    cooldown = Cooldown(1, clock=lambda: now[0])
    for user in range(10_001):
        cooldown.retry_after(user)
    now[0] += 2
    cooldown.retry_after(-1)
    assert len(cooldown._last) <= 2


def test_admins_are_managers_administrators_or_the_allowed_role():
    nobody = discord.Permissions(send_messages=True)
    assert may_administer(discord.Permissions(manage_guild=True), [], None)
    assert may_administer(discord.Permissions(administrator=True), [], None)
    assert not may_administer(nobody, [5], None)
    assert may_administer(nobody, [5, 6], 6)
    assert not may_administer(nobody, [5], 6)


def test_questions_are_cleaned_and_bounded():
    assert clean_question("  what   about\nChina? ") == "what about China?"
    with pytest.raises(ValueError, match="empty"):
        clean_question(" \n\t ")
    with pytest.raises(ValueError, match="characters long"):
        clean_question("x" * (MAX_QUESTION_CHARS + 1))


def test_error_ids_are_short_and_distinct():
    ids = {new_error_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 8 for i in ids)


def test_a_final_report_falls_back_to_the_channel_when_the_interaction_expired():
    import asyncio
    from types import SimpleNamespace

    from bot.cogs.admin import final_report

    sent = []

    class Expired(discord.HTTPException):
        def __init__(self):
            Exception.__init__(self, "401 Invalid Webhook Token")

    async def edit_original_response(content):
        raise Expired()

    async def send(text):
        sent.append(text)

    interaction = SimpleNamespace(
        edit_original_response=edit_original_response, user=SimpleNamespace(id=5, mention="<@5>"), channel=SimpleNamespace(send=send)
    )
    asyncio.run(final_report(interaction, "Reindexed in 3000.0 s: 1938 added"))
    assert sent == ["<@5>: Reindexed in 3000.0 s: 1938 added"]


def test_ingestion_calls_run_one_at_a_time():
    import threading
    import time

    from bot.app import PolicyBot

    inside, overlaps = [], []
    lock_holder = type("Holder", (), {"ingest_lock": threading.Lock()})()

    def add(link):
        inside.append(link)
        if len(inside) > 1:
            overlaps.append(link)
        time.sleep(0.02)
        inside.remove(link)
        return link

    locked = PolicyBot.one_at_a_time(lock_holder, add)
    threads = [threading.Thread(target=locked, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
