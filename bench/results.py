"""The one place benchmarks write their figures: JSON with the machine they ran on.

Every benchmark prints its figures and, where it writes a file (by default or with --json),
writes it here: `write_results("search_latency", figures, machine, path)` gives
{"benchmark": ..., "machine": {...}, **figures} as indented JSON, at `path` or at
bench/results/<name>.json. `machine` is what bench.machine.print_machine returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from bench.machine import REPO

RESULTS = REPO / "bench" / "results"


def results_path(name: str, path: Path | None = None) -> Path:
    """Where a benchmark's JSON goes: `path` when given, else bench/results/<name>.json."""
    return path if path is not None else RESULTS / f"{name}.json"


def write_results(name: str, figures: Mapping, machine: Mapping | None, path: Path | None = None) -> Path:
    """Write a benchmark's figures and its machine block as indented JSON (creating the folder); the path written."""
    target = results_path(name, path)
    payload = {"benchmark": name, "machine": dict(machine) if machine is not None else None, **figures}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    return target
