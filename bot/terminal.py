"""What the terminal shows: passages, answers, index reports, and indexing with a progress bar."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from index.types import Answer, Hit, IndexReport

if TYPE_CHECKING:
    from tqdm import tqdm

    from index.knowledge import KnowledgeBase


def format_hits(hits: Sequence[Hit], width: int = 100) -> str:
    """Passages as numbered, wrapped text with score, title and paragraph."""
    if not hits:
        return "No passages found."
    blocks = []
    for hit in hits:
        c = hit.chunk
        head = f"[{hit.rank}] {hit.score:.3f}  {c.title} — paragraph {c.paragraph}"
        if c.url:
            head += f"  <{c.url}>"
        body = textwrap.fill(c.text, width=width, initial_indent="    ", subsequent_indent="    ")
        blocks.append(f"{head}\n{body}")
    return "\n\n".join(blocks)


def format_answer(answer: Answer, width: int = 100) -> str:
    """An answer for the terminal: the text with [n] markers, then its sources with quotes."""
    lines = [textwrap.fill(answer.text, width=width)]
    sources = answer.citations or answer.related
    if sources:
        lines.append("")
        lines.append("Sources" if answer.citations else "Related reading")
        for c in sources:
            head = f"[{c.n}] {c.title} — paragraph {c.paragraph}"
            if c.url:
                head += f"  <{c.url}>"
            lines.append(head)
            quote = c.quote if len(c.quote) <= 600 else c.quote[:597].rstrip() + "…"
            lines.append(textwrap.fill(f"“{quote}”", width=width, initial_indent="    ", subsequent_indent="    "))
    if answer.note:
        lines.append(f"\n({answer.note})")
    return "\n".join(lines)


def describe_report(report: IndexReport, corpus_dir: Path, index_dir: Path) -> str:
    """One line on what an index run did."""
    parts = [
        f"{len(report.added)} added",
        f"{len(report.updated)} updated",
        f"{len(report.removed)} removed",
        f"{report.unchanged} unchanged",
    ]
    line = (
        f"Indexed {corpus_dir} into {index_dir}: {', '.join(parts)}; {report.chunks_embedded} chunks"
        + (f" and {report.sentences_embedded} sentences" if report.sentences_embedded else "")
        + f" embedded in {report.seconds:.1f} s"
    )
    if report.rebuilt:
        line += " (full build)"
    if report.skipped:
        line += f"; {len(report.skipped)} file(s) skipped"
    return line + "."


def reindex_with_progress(knowledge: KnowledgeBase, rebuild: bool, quiet: bool, out: TextIO, err: TextIO) -> IndexReport:
    """Bring the knowledge base's index up to date with a progress bar (unless quiet), then say what changed."""
    from tqdm import tqdm

    bar: tqdm | None = None
    # Embedding runs in two phases, passages then their sentences, each counted from 0 to its own total.
    phases = iter(("passage", "sentence"))

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None or done < bar.n or total != bar.total:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, unit=next(phases, "text"), desc="embedding", file=err, leave=False)
        bar.update(done - bar.n)

    try:
        report = knowledge.reindex(progress=progress, rebuild=rebuild, warn=lambda message: print(f"policybot: {message}", file=err))
    finally:
        if bar is not None:
            bar.close()
    for skipped in report.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=err)
    if not quiet:
        print(describe_report(report, knowledge.corpus_dir, knowledge.index_dir), file=out)
    return report
