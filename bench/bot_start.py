"""`policybot run` against the Discord API emulator: spawn to IDENTIFY, to "ready as", and SIGTERM to a clean exit.

Usage: .venv/bin/python -m bench.bot_start [--runs 5] [--json FILE]

Builds an index of the seed corpus in a temporary folder (`policybot index`), starts the
emulator in this process on 127.0.0.1, and runs `.venv/bin/policybot run` as a subprocess
pointed at it (DISCORD_API_URL, DISCORD_GATEWAY_URL), with CORPUS_DIR / INDEX_DIR at the
prepared index and HF_HUB_OFFLINE=1. Times, per run: process spawn → the emulator seeing
IDENTIFY (and sending READY + GUILD_CREATE) → the bot logging "ready as" on stderr; then
SIGTERM → the bot's "stopped" log line → exit, which must be code 0.

Baseline in the same run, alternating with the bot: the wall time of one
`policybot ask "What is the small deal?"` process (the model load dominates both).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.discord_world import SEED_CORPUS, DiscordEmulator
from bench.machine import REPO, median, print_load, print_machine
from bench.results import write_results

POLICYBOT = REPO / ".venv" / "bin" / "policybot"
READY_LINE = "ready as"
BASELINE_QUESTION = "What is the small deal?"


class BotFailedToStart(RuntimeError):
    """`policybot run` exited or timed out before it was ready; the message carries its stderr."""


def base_env(corpus: Path, index_dir: Path) -> dict[str, str]:
    """The environment of every policybot process: this library, offline model."""
    return {**os.environ, "CORPUS_DIR": str(corpus), "INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1"}


async def read_lines(stream: asyncio.StreamReader, lines: list[tuple[float, str]], ready: asyncio.Event) -> None:
    """Collect (perf_counter, line) of a stream until it closes; set `ready` at the "ready as" line."""
    while raw := await stream.readline():
        line = raw.decode("utf-8", "replace").rstrip()
        lines.append((time.perf_counter(), line))
        if READY_LINE in line:
            ready.set()


async def one_bot_run(env: dict[str, str], cwd: Path, timeout: float) -> dict:
    """Start the emulator and `policybot run`; seconds to IDENTIFY, to ready, and from SIGTERM to exit."""
    emulator = DiscordEmulator()
    await emulator.start()
    env = {**env, "DISCORD_TOKEN": "bench-token", "DISCORD_API_URL": emulator.api_base, "DISCORD_GATEWAY_URL": emulator.gateway_url}
    stderr_lines: list[tuple[float, str]] = []
    ready = asyncio.Event()
    spawned = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        str(POLICYBOT), "run", env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    reading = asyncio.create_task(read_lines(process.stderr, stderr_lines, ready))
    try:
        identified = asyncio.create_task(emulator.wait_until_identified(timeout))
        exited = asyncio.create_task(process.wait())
        done, _ = await asyncio.wait({identified, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if identified not in done or identified.exception() is not None:
            raise BotFailedToStart(await failure("did not IDENTIFY", process, reading, stderr_lines))
        identified_at = time.perf_counter()
        waiting = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({waiting, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            raise BotFailedToStart(await failure(f"never logged {READY_LINE!r}", process, reading, stderr_lines))
        ready_at = next(at for at, line in stderr_lines if READY_LINE in line)
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout)
        stopped = time.perf_counter()
        await reading
        logged_stop = next((at for at, line in stderr_lines if line.endswith(" stopped")), None)
        return {
            "identify_s": identified_at - spawned,
            "ready_s": ready_at - spawned,
            "stop_s": stopped - stopping,
            "stop_logged_s": None if logged_stop is None else logged_stop - stopping,
            "exit_code": code,
            "identify_count": emulator.identify_count,
            "stderr_tail": [line for _, line in stderr_lines[-6:]] if code != 0 else [],
        }
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        reading.cancel()
        await emulator.close()


async def failure(what: str, process, reading: asyncio.Task, stderr_lines: list[tuple[float, str]]) -> str:
    """Why the bot did not start: what was missing, its exit code and its stderr (read to the end if it exited)."""
    if process.returncode is not None:
        await asyncio.wait({reading}, timeout=5)
    code = process.returncode
    stderr = "\n".join(line for _, line in stderr_lines) or "(nothing on stderr)"
    return f"`policybot run` {what} (exit code {code if code is not None else 'none: still running'}); stderr:\n{stderr}"


def ask_wall_time(env: dict[str, str], cwd: Path) -> float:
    """Seconds one `policybot ask` process takes, spawn to exit."""
    started = time.perf_counter()
    subprocess.run(
        [str(POLICYBOT), "ask", BASELINE_QUESTION], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for each step")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/bot_start.json)")
    args = parser.parse_args()
    info = print_machine("`policybot run` start and stop against the Discord emulator")
    runs, asks = [], []
    with tempfile.TemporaryDirectory(prefix="policybot-bot-start-") as scratch:
        work = Path(scratch)  # also the processes' working directory, so no .env is read
        env = base_env(SEED_CORPUS, work / "index")
        subprocess.run([str(POLICYBOT), "index", "--quiet"], env=env, cwd=work, check=True)
        for number in range(args.runs):
            try:
                runs.append(asyncio.run(one_bot_run(env, work, args.timeout)))
            except BotFailedToStart as exc:
                print(f"run {number + 1}: {exc}")
                write_results("bot_start", {"failure": str(exc)}, info, args.json)
                raise SystemExit(1) from None
            asks.append(ask_wall_time(env, work))
            run = runs[-1]
            print(
                f"  run {number + 1}: IDENTIFY {run['identify_s']:.2f} s, ready {run['ready_s']:.2f} s, "
                f"SIGTERM → stopped logged {run['stop_logged_s'] or float('nan'):.3f} s, exit {run['stop_s']:.2f} s "
                f"(code {run['exit_code']}); ask {asks[-1]:.2f} s",
                flush=True,
            )
    figures = {
        "identify_median_s": median([r["identify_s"] for r in runs]),
        "ready_median_s": median([r["ready_s"] for r in runs]),
        "stop_median_s": median([r["stop_s"] for r in runs]),
        "ask_median_s": median(asks),
        "stop_logged_median_s": median([r["stop_logged_s"] for r in runs if r["stop_logged_s"] is not None]),
        "clean_exits": sum(r["exit_code"] == 0 for r in runs),
        "runs": len(runs),
    }
    print(f"\n{'':42} {'median':>7}  runs")
    for label, key, values in (
        ("spawn → IDENTIFY at the emulator", "identify_median_s", [r["identify_s"] for r in runs]),
        ('spawn → "ready as" logged', "ready_median_s", [r["ready_s"] for r in runs]),
        ('SIGTERM → "stopped" logged', "stop_logged_median_s", [r["stop_logged_s"] for r in runs if r["stop_logged_s"] is not None]),
        ("SIGTERM → process exit", "stop_median_s", [r["stop_s"] for r in runs]),
        ("baseline: policybot ask (whole process)", "ask_median_s", asks),
    ):
        print(f"{label:42} {figures[key]:6.2f}s  {', '.join(f'{v:.2f}' for v in values)}")
    print(
        f"clean exits (code 0): {figures['clean_exits']} of {figures['runs']}; "
        f"ready / ask = {figures['ready_median_s'] / figures['ask_median_s']:.2f}"
    )
    for run in runs:
        if run["exit_code"] != 0:
            print("unclean exit, stderr tail:\n  " + "\n  ".join(run["stderr_tail"]))
    busy = print_load()
    path = write_results("bot_start", {"busy_at_end": busy, **figures, "bot_runs": runs, "ask_runs": asks}, info, args.json)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
