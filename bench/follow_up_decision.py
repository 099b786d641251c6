"""Is a question a follow-up? The decision of index/answering/follow_ups.py against the labelled sets.

Usage: .venv/bin/python -m bench.follow_up_decision [--json FILE] [--show]

Reads every `{"history": [...], "question": ..., "follow_up": true|false}` line of
bench/questions/conversations_{dev,test}.jsonl and bench/questions/ungdc_conversations.jsonl (its
`split` field says dev or test) and prints accuracy and confusion counts per split for the rule in
index/answering/follow_ups.py and, as the baseline in the same run, the rule it replaced (kept
below as `old_is_follow_up`). No model is loaded; the time per decision is printed too.
Tune on dev only; report test.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from bench.machine import REPO
from bench.results import write_results
from index.answering.follow_ups import is_follow_up
from index.text import content_words

QUESTIONS = REPO / "bench" / "questions"

_OLD_START = re.compile(r"^(?:and|but|so|also|what about|how about|and what|what else|why|how so|then)\b", re.I)
_OLD_REFERRING = re.compile(r"\b(?:it|its|they|them|their|that|this|those|these|he|she|his|her|there|then)\b", re.I)


def old_is_follow_up(question: str) -> bool:
    """The rule before issue 10: a leading "and/why/…", or ≤ 12 words with a pronoun or ≤ 2 content words."""
    if _OLD_START.match(question.strip()):
        return True
    return len(question.split()) <= 12 and (bool(_OLD_REFERRING.search(question)) or len(content_words(question)) <= 2)


def load(split: str) -> list[dict]:
    """The labelled conversation questions of one split ("dev" or "test")."""
    rows = [json.loads(line) for line in (QUESTIONS / f"conversations_{split}.jsonl").open(encoding="utf-8") if line.strip()]
    with (QUESTIONS / "ungdc_conversations.jsonl").open(encoding="utf-8") as fh:
        rows += [row for row in map(json.loads, filter(str.strip, fh)) if row.get("split") == split]
    return rows


def confusion(rows: list[dict], decide: Callable[[str], bool]) -> dict:
    """Accuracy and tp/fp/fn/tn (positive = follow-up) of one decision over labelled rows, with the misses."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    misses = []
    for row in rows:
        said, truth = decide(row["question"]), bool(row["follow_up"])
        counts[("t" if said == truth else "f") + ("p" if said else "n")] += 1
        if said != truth:
            misses.append({"id": row["id"], "question": row["question"], "follow_up": truth})
    return {"n": len(rows), "accuracy": (counts["tp"] + counts["tn"]) / len(rows), **counts, "misses": misses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--show", action="store_true", help="print the questions each rule gets wrong")
    args = parser.parse_args()
    results: dict = {}
    for split in ("dev", "test"):
        rows = load(split)
        for label, decide in (("new", is_follow_up), ("old", old_is_follow_up)):
            figures = confusion(rows, decide)
            results[f"{split} {label}"] = figures
            print(
                f"{split:4} {label}  accuracy {figures['accuracy']:.3f}  ({figures['tp'] + figures['tn']}/{figures['n']})  "
                f"tp {figures['tp']}  fp {figures['fp']}  fn {figures['fn']}  tn {figures['tn']}"
            )
            if args.show:
                for miss in figures["misses"]:
                    print(f"       wrong: {miss['question']!r} (follow-up: {miss['follow_up']})")
    questions = [row["question"] for split in ("dev", "test") for row in load(split)]
    started = time.perf_counter()
    for _ in range(100):
        for question in questions:
            is_follow_up(question)
    per_question_us = (time.perf_counter() - started) / (100 * len(questions)) * 1e6
    results["microseconds_per_decision"] = per_question_us
    print(f"{per_question_us:.1f} µs per decision")
    if args.json:
        write_results("follow_up_decision", results, None, args.json)


if __name__ == "__main__":
    main()
