"""What machine a benchmark ran on, printed at the top of every benchmark's output; percentiles.

Run on its own (`.venv/bin/python -m bench.machine`) it prints the same block. Imports of
torch and faiss are done lazily so a benchmark that does not need them pays nothing extra.
Figures are written to JSON, with this machine block, by bench.results.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

# The repository: the working directory of the processes a benchmark starts (`python -m ...`).
REPO = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _version(module: str) -> str:
    try:
        imported = __import__(module)
    except Exception:  # not installed, or fails to import: say so rather than crash a benchmark
        return "not installed"
    return str(getattr(imported, "__version__", "unknown"))


def busy_processes(threshold: float = 20.0, sample_seconds: float = 0.5) -> list[str]:
    """Other processes using more than `threshold`% of a core right now (CPU contention)."""
    try:
        import psutil
    except ImportError:
        return []
    me = os.getpid()
    procs = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.info["pid"] != me]
    for proc in procs:
        try:
            proc.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    time.sleep(sample_seconds)
    busy = []
    for proc in procs:
        try:
            percent = proc.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if percent >= threshold and proc.pid not in _ancestors(me):
            command = " ".join(" ".join(proc.info["cmdline"] or [proc.info["name"] or "?"]).split())
            busy.append(f"{percent:.0f}% pid {proc.pid}: {command[:90]}")
    return busy


def _ancestors(pid: int) -> set[int]:
    try:
        import psutil

        return {p.pid for p in psutil.Process(pid).parents()}
    except Exception:
        return set()


def machine_info() -> dict:
    """Platform, CPU, cores, RAM, library versions and current load."""
    load = os.getloadavg()
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": _torch_threads(),
        "ram_gib": round(_ram_gib() or 0.0, 1),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "faiss": _version("faiss"),
        "sentence_transformers": _version("sentence_transformers"),
        "bm25s": _version("bm25s"),
        "numpy": _version("numpy"),
        "loadavg": [round(x, 2) for x in load],
    }


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except Exception:
        return None


def describe_machine(info: dict | None = None) -> str:
    """The machine block as text."""
    info = info or machine_info()
    return "\n".join(
        [
            f"machine : {info['platform']}",
            f"cpu     : {info['cpu']}, {info['cores']} logical cores (torch threads {info['torch_threads']}), {info['ram_gib']} GiB RAM",
            f"python  : {info['python']}; torch {info['torch']}; faiss {info['faiss']}; "
            f"sentence-transformers {info['sentence_transformers']}; bm25s {info['bm25s']}; numpy {info['numpy']}",
            f"load avg: {' '.join(str(x) for x in info['loadavg'])} (1/5/15 min)",
        ]
    )


def print_machine(title: str) -> dict:
    """Print a header with the machine block and any CPU contention; return the info."""
    info = machine_info()
    print(f"== {title} ==")
    print(describe_machine(info))
    busy = busy_processes()
    info["busy_at_start"] = busy
    print("other busy processes at start: " + ("; ".join(busy) if busy else "none"))
    print(flush=True)
    return info


def print_load(label: str = "end") -> list[str]:
    """Print the load average and other busy processes, e.g. at the end of a run."""
    busy = busy_processes()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load avg at {label}: {load}; other busy processes: {'; '.join(busy) if busy else 'none'}", flush=True)
    return busy


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, like numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median, NaN when empty."""
    return statistics.median(values) if values else float("nan")


if __name__ == "__main__":
    print_machine("machine")
