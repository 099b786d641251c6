"""`policybot run` as a real process when Discord cannot be reached: one line, not a traceback; LOG_LEVEL obeyed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from index.indexing.embedding import PACKAGED_MODEL
from index.indexing.indexer import update_index
from tests.conftest import ROOT, FakeEmbedder, write_small_corpus

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections: bound (so nothing else takes it) but never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def run_bot(tmp_path, port: int, *argv: str, **extra: str) -> subprocess.CompletedProcess:
    # An index written with a stand-in for the packaged model (same name and size): up to date, so
    # the process loads no model before it tries Discord.
    corpus = write_small_corpus(tmp_path / "corpus")
    update_index(corpus, tmp_path / "index", FakeEmbedder(name=PACKAGED_MODEL))[1].close()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
    env.update(
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN="MTIz.token-that-must-never-be-logged.XYZ",
        DISCORD_API_URL=f"http://127.0.0.1:{port}/api/v10",
        DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{port}",
        CORPUS_DIR=str(corpus),
        INDEX_DIR=str(tmp_path / "index"),
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("policybot: error:")]


@pytest.mark.parametrize("argv", [["run"], []], ids=["run", "start with a token"])
def test_an_unreachable_discord_is_one_line_not_a_traceback(tmp_path, closed_port, argv):
    result = run_bot(tmp_path, closed_port, *argv)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
    [line] = error_lines(result.stderr)
    assert line.startswith(f"policybot: error: cannot reach Discord at http://127.0.0.1:{closed_port}/api/v10: ")
    assert f"127.0.0.1:{closed_port}" in line.split(": ", 3)[-1]
    assert "token-that-must-never-be-logged" not in result.stderr


def test_log_level_warning_leaves_only_the_error(tmp_path, closed_port):
    result = run_bot(tmp_path, closed_port, "run", LOG_LEVEL="warning")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == error_lines(result.stderr), result.stderr
    noisy = run_bot(tmp_path / "noisy", closed_port, "run", LOG_LEVEL="debug")
    assert "DEBUG" in noisy.stderr and len(error_lines(noisy.stderr)) == 1


def test_sync_against_an_unreachable_discord_is_one_line(tmp_path, closed_port):
    result = run_bot(tmp_path, closed_port, "sync")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [line[:40] for line in result.stderr.strip().splitlines()] == ["policybot: error: cannot reach Discord a"]
