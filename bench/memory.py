"""Peak memory (RSS high-water mark) of policybot processes, each run as a fresh subprocess.

    .venv/bin/python -m bench.memory ../shared/data/ungdc/ungdc_2015_2024.jsonl

Uses the indexes that bench.index_throughput and bench.search_latency leave in the work
folder (default /tmp/policybot-bench): index-all (all 1,938 speeches) and search-<n> (n chunks).
Each figure is ru_maxrss of one child process (os.wait4), so it is that process's own peak:

- baseline: a process that imports bot.services and loads the embedding model (load_embedder, one short embed), nothing else;
- `policybot search --mode hybrid|dense` on the 1k / 25k / 100k-chunk indexes: loads the model,
  opens the store, builds BM25 (hybrid) and answers one question;
- `policybot index` on the unchanged full corpus (scan, hash compare, open and verify);
- with --full-build, `policybot index --rebuild` on the full corpus into a scratch folder
  (embeds every chunk: hours on a busy 2-core machine, minutes-to-an-hour on a quiet one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.machine import REPO, print_load, print_machine
from bench.results import write_results

DEFAULT_WORK = Path(os.environ.get("POLICYBOT_BENCH_DIR", "/tmp/policybot-bench"))
PYTHON = sys.executable
QUESTION = "Which speakers called for reform of the Security Council?"


def peak(command: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, output) of one child process."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise RuntimeError(f"{' '.join(command)} exited with {code}:\n{output[-2000:]}")
    return usage.ru_maxrss / 1024, wall, output


def cli(*args: str) -> list[str]:
    return [PYTHON, "-m", "bot.cli", *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jsonl", type=Path, nargs="?", help="ungdc_2015_2024.jsonl (only for --full-build)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"work folder (default {DEFAULT_WORK})")
    parser.add_argument("--sizes", default="1000,25000,100000", help="search-<n> indexes to load")
    parser.add_argument("--full-build", action="store_true", help="also run a real full `policybot index --rebuild`")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    info = print_machine("peak memory (ru_maxrss of one child process each)")
    rows = []

    def record(label: str, command: list[str], note: str = "") -> None:
        rss, wall, output = peak(command)
        rows.append({"what": label, "peak_rss_mib": rss, "wall_s": wall, "note": note})
        print(f"{label:58} {rss:7.0f} MiB  ({wall:5.1f} s){'  ' + note if note else ''}", flush=True)

    # One short embed: load_embedder may load the model lazily, on first use.
    code = (
        "from bot.services import load_embedder; from bot.settings import Settings; "
        "load_embedder(Settings.load(environ={})).embed(['warm-up'])"
    )
    record("baseline: import + load the embedding model", [PYTHON, "-c", code])
    for size in [int(s) for s in args.sizes.split(",") if s]:
        index_dir = args.work / f"search-{size}"
        if not (index_dir / "manifest.json").exists():
            print(f"(no {index_dir}; run bench.search_latency first)")
            continue
        manifest = json.loads((index_dir / "manifest.json").read_text())
        for mode in ("hybrid", "dense"):
            record(
                f"policybot search --mode {mode}, {manifest['chunks']:,} chunks",
                cli("--index-dir", str(index_dir), "search", QUESTION, "--mode", mode, "-k", "5"),
            )
    full_corpus, full_index = args.work / "corpus-all", args.work / "index-all"
    if (full_index / "manifest.json").exists():
        manifest = json.loads((full_index / "manifest.json").read_text())
        record(
            f"policybot index, unchanged full corpus ({manifest['chunks']:,} chunks)",
            cli("--corpus", str(full_corpus), "--index-dir", str(full_index), "index", "--quiet"),
        )
    if args.full_build:
        scratch = args.work / "index-memory-full-build"
        shutil.rmtree(scratch, ignore_errors=True)
        record(
            "policybot index --rebuild, full corpus (real embedding)",
            cli("--corpus", str(full_corpus), "--index-dir", str(scratch), "index", "--rebuild", "--quiet"),
        )
    for name in ("throughput_standin.json", "throughput_2024.json", "throughput_all.json"):
        # Figures measured by bench.index_throughput's own child processes, if it wrote JSON beside this run's.
        path = (args.json.parent if args.json else args.work) / name
        if path.exists():
            data = json.loads(path.read_text())
            if "standin" in data:
                st = data["standin"]
                print(
                    f"(from {path.name}) full build, {st['chunks']:,} chunks, stand-in vectors + one real batch of the "
                    f"longest chunks: {st['standin_peak_rss_mib']:.0f} MiB"
                )
            for sub in data.get("subsets", []):
                print(
                    f"(from {path.name}) full build of subset {sub['subset']} ({sub['chunks']:,} chunks, real "
                    f"embedding): {sub['index_peak_rss_mib']:.0f} MiB"
                )
    busy = print_load()
    if args.json:
        write_results("memory", {"rows": rows, "busy_at_end": busy}, info, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
