"""Frozen dataclasses that carry everything a citation needs: article -> chunk -> hit."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """One article as read from the corpus; `text` is the body a citation's offsets point into."""

    article_id: str
    title: str
    text: str
    content_hash: str
    path: str = ""
    url: str = ""
    author: str = ""
    published: str = ""
    source: str = ""


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences from one paragraph span; `text == article.text[start:end]`."""

    article_id: str
    ordinal: int
    paragraph: int
    start: int
    end: int
    text: str
    token_count: int


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the index keeps it: its stable vector id plus the article fields a citation shows."""

    chunk_id: int
    article_id: str
    title: str
    url: str
    paragraph: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: the chunk, its rank and score."""

    rank: int
    score: float
    chunk: StoredChunk

    def as_dict(self) -> dict:
        """The JSON shape of `policybot search --json`."""
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(float(self.score), 4),
            "article_id": c.article_id,
            "title": c.title,
            "url": c.url,
            "paragraph": c.paragraph,
            "text": c.text,
            "start": c.start,
            "end": c.end,
        }


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file that could not be read as an article, with the reason in plain words."""

    path: str
    reason: str


@dataclass
class IndexReport:
    """What one `policybot index` run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        """True when the index content differs from before the run."""
        return bool(self.added or self.updated or self.removed)
