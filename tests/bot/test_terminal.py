"""Terminal output helpers: the embedding progress bar counts each phase against its own total."""

from __future__ import annotations

import io
from pathlib import Path

from bot.terminal import reindex_with_progress
from index.types import IndexReport


class TwoPhaseKnowledge:
    """A knowledge base whose reindex reports passages (8), then sentences (22), as the indexer does."""

    corpus_dir = Path("corpus")
    index_dir = Path("index")

    def reindex(self, progress, rebuild, warn):
        for total in (8, 22):
            for done in range(0, total + 1, 2 if total > 8 else 1):
                progress(done, total)
        return IndexReport(added=["a"], chunks_embedded=8, sentences_embedded=22)


def test_progress_counts_passages_then_sentences():
    out, err = io.StringIO(), io.StringIO()
    reindex_with_progress(TwoPhaseKnowledge(), rebuild=False, quiet=False, out=out, err=err)  # type: ignore[arg-type]
    shown = err.getvalue()
    assert "0/8 " in shown and "passage/s" in shown
    assert "0/22 " in shown and "sentence/s" in shown
    assert not any(f"{n}/8 " in shown for n in range(9, 23))
    assert "8 chunks and 22 sentences embedded" in out.getvalue()
