"""UN General Debate speeches (ungdc_2015_2024.jsonl) as policybot corpus files, for the benchmarks.

One JSON object a line: id, country_iso3, session, year, title, text. Written as Markdown
with YAML front matter (title, source, published), the speech text unchanged as the body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def load_speeches(jsonl: Path, years: Sequence[int] | None = None) -> list[dict]:
    """The speeches of the JSONL file, optionally only some years, in file order."""
    rows = []
    with open(jsonl, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                if years is None or int(row["year"]) in years:
                    rows.append(row)
    return rows


def speech_markdown(row: dict) -> str:
    """One speech as a corpus article: front matter (JSON strings are valid YAML) + the text as is."""
    front = [
        "---",
        f"title: {json.dumps(row['title'])}",
        f"source: {json.dumps('UN General Debate Corpus, ' + row['id'])}",
        f'published: "{int(row["year"])}"',
        "---",
        "",
    ]
    return "\n".join(front) + row["text"].strip() + "\n"


def speech_path(corpus_dir: Path, row: dict) -> Path:
    """corpus/<year>/<ISO3>_<session>_<year>.md"""
    return corpus_dir / str(row["year"]) / (row["id"].split("/")[-1] + ".md")


def write_corpus(rows: Sequence[dict], corpus_dir: Path) -> int:
    """Write the speeches as corpus files (unchanged files are not rewritten); remove others."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for row in rows:
        path = speech_path(corpus_dir, row)
        wanted.add(path)
        data = speech_markdown(row)
        if not path.exists() or path.read_text(encoding="utf-8") != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data, encoding="utf-8")
    for path in corpus_dir.rglob("*.md"):
        if path not in wanted:
            path.unlink()
    return len(wanted)
