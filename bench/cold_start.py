"""Cold start: wall time of one `policybot ask` process with an existing index.

Usage: .venv/bin/python -m bench.cold_start [--runs 5] [--json FILE]

Builds an index of the seed corpus in a temporary folder, then times whole processes.
Baselines in the same run: `python -c pass` (interpreter start) and importing torch +
sentence-transformers (the floor any process using the model pays).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import REPO, median, print_load, print_machine
from bench.results import write_results


def wall(command: list[str], env: dict) -> float:
    """Seconds one run of the command takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    info = print_machine("cold start of `policybot ask`")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(scratch) / "index"
        cli = [sys.executable, "-m", "bot.cli", "--corpus", str(REPO / "corpus"), "--index-dir", str(index_dir)]
        subprocess.run([*cli, "index", "--quiet"], env=env, cwd=REPO, check=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import torch + sentence_transformers": [sys.executable, "-c", "import torch, sentence_transformers"],
            "policybot ask (extractive)": [*cli, "ask", "How many nuclear warheads does North Korea have?"],
        }
        timings = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                timings[name].append(wall(command, env))
    for name, values in timings.items():
        print(f"  {name:38} median {median(values):5.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    busy = print_load()
    if args.json:
        figures = {"median_s": {name: median(values) for name, values in timings.items()}, "runs_s": timings, "busy_at_end": busy}
        write_results("cold_start", figures, info, args.json)


if __name__ == "__main__":
    main()
