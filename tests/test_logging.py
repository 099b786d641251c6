"""One logger hierarchy: every module of bot/ and index/ logs under "policybot.<module path>"."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_logger_in_bot_and_index_is_under_policybot():
    calls = {}
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("index/**/*.py")]):
        for call in re.findall(r"getLogger\(([^)]*)\)", path.read_text(encoding="utf-8")):
            calls[f"{path.relative_to(ROOT)}: getLogger({call})"] = call
    assert calls, "no loggers found"
    assert {where for where, call in calls.items() if call != '"policybot." + __name__'} == set()


@pytest.mark.parametrize("module_name", ["index.ingestion.feeds", "index.answering.llm.engine", "bot.cogs.feeds"])
def test_a_record_from_a_module_reaches_a_policybot_handler(module_name):
    import importlib

    module = importlib.import_module(module_name)
    logger = next(value for value in vars(module).values() if isinstance(value, logging.Logger))
    assert logger.name == "policybot." + module_name
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    policybot = logging.getLogger("policybot")
    policybot.addHandler(handler)
    try:
        logger.warning("a record from %s", module_name)
    finally:
        policybot.removeHandler(handler)
    assert [record.getMessage() for record in seen] == [f"a record from {module_name}"]
