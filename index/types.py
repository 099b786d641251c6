"""The data types: article -> chunk -> hit -> citation -> answer, each a small frozen dataclass.

A citation needs the article's title and link, the paragraph and the character offsets of the
quote; these types carry them from the corpus file through the index to the member's screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


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
class ArticleInfo:
    """One indexed article, as `policybot articles` lists it, with the metadata questions about it need."""

    article_id: str
    title: str
    url: str
    chunks: int
    added_at: str
    updated_at: str
    content_hash: str
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
class Passage:
    """A chunk numbered for a language model's prompt; citations in its reply name `n`."""

    n: int
    chunk: StoredChunk
    score: float = 0.0


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
    # Sentences embedded for answers (index/indexing/sentences.py), beside the chunks.
    sentences_embedded: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        """True when the index content differs from before the run."""
        return bool(self.added or self.updated or self.removed)


class IndexStats(NamedTuple):
    """What a loaded index holds: articles, passages, and when it was last written (ISO time, or "")."""

    articles: int
    passages: int
    indexed_at: str


@dataclass(frozen=True)
class Citation:
    """One numbered source: the quoted text is exactly the article's text at [start:end]."""

    n: int
    article_id: str
    title: str
    url: str
    paragraph: int
    quote: str
    start: int
    end: int
    score: float

    def as_dict(self) -> dict:
        """The JSON shape of a citation."""
        return {
            "n": self.n,
            "article_id": self.article_id,
            "title": self.title,
            "url": self.url,
            "paragraph": self.paragraph,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True)
class Answer:
    """What a member reads: the answer text with [n] markers, and the citations they point to."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    related: tuple[Citation, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        """The JSON shape of `policybot ask --json`."""
        record = {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.as_dict() for c in self.citations],
            "related": [c.as_dict() for c in self.related],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
        if self.note:
            record["note"] = self.note
        return record


@dataclass(frozen=True)
class AnswerTrace:
    """An answer with the passages it was drawn from and its best sentence score (for evaluation)."""

    answer: Answer
    hits: tuple[Hit, ...]
    best_score: float


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str = ""
