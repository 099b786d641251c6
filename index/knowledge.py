"""The loaded index and its answer engine as one swappable snapshot, shared by the chat layers.

A reindex builds the next generation beside the current one and swaps the whole snapshot
in one assignment: a question asked meanwhile is answered from the old index or the new
one, never from a mix, and the old store is closed only when its last reader is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from index.answering.engine import AnswerEngine
from index.indexing.chunking import paragraph_spans
from index.indexing.embedding import Embedder
from index.indexing.indexer import IndexOptions, Progress, open_store, update_index
from index.indexing.store import IndexStore
from index.types import (
    Answer,
    ArticleInfo,
    Citation,
    Hit,
    IndexReport,
    IndexStats,
    Turn,
)


class ReindexRunningError(RuntimeError):
    """A reindex is already running; one at a time."""


# Builds the answer engine over each newly loaded index generation (see bot/services.py).
EngineFactory = Callable[[IndexStore], AnswerEngine]


@dataclass(eq=False)
class Snapshot:
    """One generation of the index with its engine; counts its readers so it can be closed safely."""

    store: IndexStore
    engine: AnswerEngine
    articles: tuple[ArticleInfo, ...]
    readers: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def indexed_at(self) -> str:
        """When this generation was written (ISO time), or "" for an empty index."""
        return str((self.store.manifest or {}).get("written_at", ""))


class KnowledgeBase:
    """Ask, summarise, list and reindex over the current index; safe to call from worker threads."""

    def __init__(
        self,
        corpus_dir: Path,
        index_dir: Path,
        embedder: Embedder,
        engine_factory: EngineFactory,
        options: IndexOptions = IndexOptions(),
        warm_search: bool = True,
    ):
        self.corpus_dir = Path(corpus_dir)
        self.index_dir = Path(index_dir)
        self.embedder = embedder
        self.engine_factory = engine_factory
        self.options = options
        # Build each generation's keyword index (BM25, word weights) as it is installed, in the
        # loading or reindexing thread, so no question waits for it; off for commands that never ask.
        self.warm_search = warm_search
        self._snapshot: Snapshot | None = None
        self._swap_lock = threading.Lock()
        self._reindex_lock = threading.Lock()

    # ---- loading and swapping ---------------------------------------------------------------

    def load(self, build_if_missing: bool = True) -> IndexReport | None:
        """Open the index on disk; build it from the corpus first when there is none (returns that report)."""
        store = open_store(self.index_dir, self.embedder)
        if store.manifest is None and build_if_missing:
            store.close()
            return self.reindex()
        self._install(store)
        return None

    def _install(self, store: IndexStore) -> None:
        try:
            engine = self.engine_factory(store)
            if self.warm_search:
                engine.retriever.keyword_index()
        except BaseException:
            store.close()
            raise
        fresh = Snapshot(store, engine, tuple(store.articles()))
        with self._swap_lock:
            old, self._snapshot = self._snapshot, fresh
        if old is not None:
            self._retire(old)

    @staticmethod
    def _retire(snapshot: Snapshot) -> None:
        with snapshot.lock:
            snapshot.retired = True
            idle = snapshot.readers == 0
        if idle:
            snapshot.store.close()

    @contextmanager
    def reading(self) -> Iterator[Snapshot]:
        """The current snapshot, kept open until the caller is done with it."""
        with self._swap_lock:
            snapshot = self._snapshot
            if snapshot is None:
                raise RuntimeError("the knowledge base is not loaded; call load() first")
            with snapshot.lock:
                snapshot.readers += 1
        try:
            yield snapshot
        finally:
            with snapshot.lock:
                snapshot.readers -= 1
                close = snapshot.retired and snapshot.readers == 0
            if close:
                snapshot.store.close()

    def close(self) -> None:
        """Close the current store (readers still holding it close it when they finish)."""
        with self._swap_lock:
            old, self._snapshot = self._snapshot, None
        if old is not None:
            self._retire(old)

    # ---- what members ask for ----------------------------------------------------------------

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """A cited answer (or an abstention) from the current index."""
        with self.reading() as snapshot:
            return snapshot.engine.ask(question, history)

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The k passages that best match a question, from the current index."""
        with self.reading() as snapshot:
            return snapshot.engine.retriever.search(question, k)

    def find_article(self, article: str) -> ArticleInfo:
        """The article named by id or title (prefix); LookupError when none or several match."""
        with self.reading() as snapshot:
            return snapshot.store.find_article(article)

    def summarize(self, article: str, length: str = "medium") -> Answer:
        """A cited summary of the article named by id or title; LookupError when none or several match."""
        with self.reading() as snapshot:
            info = snapshot.store.find_article(article)
            text = snapshot.store.article_text(info.article_id) or ""
            engine = snapshot.engine
        return engine.summarize(info.article_id, info.title, info.url, text, length)

    def passage(self, citation: Citation) -> str:
        """The whole paragraph a citation quotes from, or the quote itself when the article is gone."""
        with self.reading() as snapshot:
            text = snapshot.store.article_text(citation.article_id)
        if not text or text[citation.start : citation.end] != citation.quote:
            return citation.quote
        # The paragraphs as the chunker and the citation count them (one a line in such text).
        spans = [p for p in paragraph_spans(text) if p.start < citation.end and p.end > citation.start]
        return text[spans[0].start : spans[-1].end] if spans else citation.quote

    @property
    def articles(self) -> tuple[ArticleInfo, ...]:
        """The indexed articles, from memory (cheap enough for autocomplete)."""
        snapshot = self._snapshot
        return snapshot.articles if snapshot else ()

    def passage_count(self, article_id: str) -> int:
        """How many passages an indexed article has (0 when it is not indexed)."""
        return next((a.chunks for a in self.articles if a.article_id == article_id), 0)

    def match_articles(self, typed: str, limit: int = 25) -> list[ArticleInfo]:
        """Articles whose title or id contains what was typed, title prefixes first (for autocomplete)."""
        wanted = " ".join(typed.split()).casefold()
        infos = self.articles
        if not wanted:
            return list(infos[:limit])
        prefix = [i for i in infos if i.title.casefold().startswith(wanted) or i.article_id.casefold().startswith(wanted)]
        inside = [i for i in infos if i not in prefix and (wanted in i.title.casefold() or wanted in i.article_id.casefold())]
        return (prefix + inside)[:limit]

    def similar_articles(self, text: str, limit: int = 5) -> list[tuple[ArticleInfo, str]]:
        """Indexed articles whose passages best match the start and the middle of a text, with their texts.

        Candidates for the near-duplicate check: comparing phrases with a handful of them is
        cheap, where comparing with every article would not be at thousands.
        """
        words = text.split()
        probes = [" ".join(words[:200]), " ".join(words[len(words) // 2 : len(words) // 2 + 200])]
        with self.reading() as snapshot:
            if snapshot.store.chunk_count == 0:
                return []
            found: dict[str, None] = {}
            for probe in probes:
                if probe:
                    for hit in snapshot.engine.retriever.search(probe, 10):
                        found.setdefault(hit.chunk.article_id)
            infos = {info.article_id: info for info in snapshot.articles}
            return [(infos[a], snapshot.store.article_text(a) or "") for a in list(found)[:limit] if a in infos]

    def stats(self) -> IndexStats:
        """How many articles and passages are loaded, and when the index was last written."""
        snapshot = self._snapshot
        if snapshot is None:
            return IndexStats(0, 0, "")
        return IndexStats(len(snapshot.articles), snapshot.store.chunk_count, snapshot.indexed_at)

    # ---- changing the index ------------------------------------------------------------------

    def reindex(
        self, progress: Progress | None = None, rebuild: bool = False, warn: Callable[[str], None] = lambda message: None
    ) -> IndexReport:
        """Bring the index up to date with the corpus and swap it in; ReindexRunningError if one is running."""
        if not self._reindex_lock.acquire(blocking=False):
            raise ReindexRunningError("a reindex is already running")
        try:
            report, store = update_index(
                self.corpus_dir, self.index_dir, self.embedder, self.options, rebuild=rebuild, progress=progress, warn=warn
            )
            current = self._snapshot
            # Another process (`policybot add`, `watch`, `feed check`) may have written a newer generation.
            if report.changed or report.rebuilt or current is None or store.generation != current.store.generation:
                self._install(store)
            else:
                store.close()
            return report
        finally:
            self._reindex_lock.release()
