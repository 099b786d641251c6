"""policybot's index: articles -> sentence-aware chunks -> embeddings -> FAISS + SQLite, and cited answers.

Nothing in this package imports discord; the bot and the CLI are thin layers over it. The
facade and the data types are exported here; `KnowledgeBase` is imported on first use, so that
`import index` (the document reader's child process, commands that need no model) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from index.types import (
    Answer,
    AnswerTrace,
    Article,
    ArticleInfo,
    Chunk,
    Citation,
    Hit,
    IndexReport,
    IndexStats,
    Passage,
    SkippedFile,
    StoredChunk,
    Turn,
)

if TYPE_CHECKING:
    from index.knowledge import KnowledgeBase

__all__ = [
    "Answer",
    "AnswerTrace",
    "Article",
    "ArticleInfo",
    "Chunk",
    "Citation",
    "Hit",
    "IndexReport",
    "IndexStats",
    "KnowledgeBase",
    "Passage",
    "SkippedFile",
    "StoredChunk",
    "Turn",
]


def __getattr__(name: str) -> Any:
    """The facade, imported when first asked for (it pulls in numpy and FAISS)."""
    if name == "KnowledgeBase":
        from index.knowledge import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(f"module 'index' has no attribute {name!r}")
