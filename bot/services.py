"""The composition root: the one place that builds the embedder, index, engines, fetcher and stores.

The CLI, the terminal chat, the Discord bot and the benchmarks all build their dependencies
here, once, from Settings, and pass them down; nothing below creates its own. Heavy imports
(torch, FAISS) happen inside these functions, so commands that need no model stay fast.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.records import AnswerLog
from bot.settings import Settings
from index.answering.conversations import ConversationStore
from index.ingestion.feeds import FeedStore

if TYPE_CHECKING:
    import numpy as np

    from index.answering.engine import AnswerEngine
    from index.answering.extractive import ExtractiveEngine
    from index.answering.llm.client import LLMClient
    from index.indexing.embedding import Embedder
    from index.indexing.store import IndexStore
    from index.ingestion.adding import ArticleAdder
    from index.ingestion.extraction import ExtractLimits
    from index.ingestion.fetch import Fetcher
    from index.knowledge import EngineFactory, KnowledgeBase

log = logging.getLogger("policybot")


@dataclass(frozen=True)
class Services:
    """Everything the bot's cogs need, built once by the entry point."""

    settings: Settings
    knowledge: KnowledgeBase
    answers: AnswerLog
    conversations: ConversationStore
    fetcher: Fetcher
    feeds: FeedStore
    adder: ArticleAdder

    def close(self) -> None:
        """Close the index and the databases."""
        self.knowledge.close()
        self.answers.close()
        self.conversations.close()
        self.feeds.close()


def load_embedder(settings: Settings, bulk: bool = False) -> Embedder:
    """The embedding model, loaded once per process: one thread for answering, all cores for bulk indexing."""
    from index.indexing.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings.index.embedding_model, threads=None if bulk else 1)


def build_llm_client(settings: Settings) -> LLMClient | None:
    """The client for the configured language model, or None when LLM_BASE_URL is empty."""
    if settings.llm.base_url is None:
        return None
    from index.answering.llm.client import LLMClient

    llm = settings.llm
    return LLMClient(llm.base_url, llm.model, llm.api_key, llm.timeout_seconds)


def extractive_engine(settings: Settings, embedder: Embedder, store: IndexStore) -> ExtractiveEngine:
    """The extractive answer engine over one loaded index (what `eval` measures)."""
    from index.answering.extractive import ExtractiveEngine
    from index.retrieval.retriever import Retriever

    return ExtractiveEngine(Retriever(store, embedder, settings.index.retrieval), embedder)


def engine_factory(settings: Settings, embedder: Embedder, llm_client: LLMClient | None = None) -> EngineFactory:
    """Builds the answer engine over one loaded index: extractive, or an LLM's checked answer over it."""

    def build(store: IndexStore) -> AnswerEngine:
        extractive = extractive_engine(settings, embedder, store)
        if llm_client is None:
            return extractive
        from index.answering.llm.engine import LLMEngine

        return LLMEngine(extractive, llm_client)

    return build


def build_knowledge(settings: Settings, embedder: Embedder) -> KnowledgeBase:
    """The knowledge base over the configured corpus and index (not loaded yet)."""
    from index.knowledge import KnowledgeBase

    factory = engine_factory(settings, embedder, build_llm_client(settings))
    return KnowledgeBase(settings.index.corpus_dir, settings.index.index_dir, embedder, factory, settings.index.options())


def build_fetcher(settings: Settings) -> Fetcher:
    """The page fetcher for adding articles by URL, with its safety limits."""
    from index.ingestion.fetch import Fetcher, FetchLimits

    ingestion = settings.ingestion
    return Fetcher(
        FetchLimits(
            max_bytes=ingestion.fetch_max_bytes,
            timeout_seconds=ingestion.fetch_timeout_seconds,
            allow_loopback=ingestion.fetch_allow_loopback,
        )
    )


def extract_limits(settings: Settings) -> ExtractLimits:
    """Limits on reading fetched pages and uploaded documents."""
    from index.ingestion.extraction import ExtractLimits

    return ExtractLimits(
        max_bytes=max(settings.ingestion.fetch_max_bytes, settings.index.max_article_bytes), max_pdf_pages=settings.ingestion.max_pdf_pages
    )


def build_adder(settings: Settings, knowledge: KnowledgeBase, fetcher: Fetcher) -> ArticleAdder:
    """Adding articles by URL or file into this corpus, checked against this knowledge base."""
    from index.ingestion.adding import ArticleAdder

    return ArticleAdder(settings.index.corpus_dir, knowledge, fetcher, extract_limits(settings), settings.index.max_article_bytes)


def open_knowledge(settings: Settings, embedder: Embedder, build_if_missing: bool = True) -> KnowledgeBase:
    """The knowledge base with its index loaded (built from the corpus first when there is none and allowed)."""
    knowledge = build_knowledge(settings, embedder)
    knowledge.load(build_if_missing=build_if_missing)
    return knowledge


class NoModel:
    """Stands in for the embedder where none is needed: `policybot sync` registers commands and never answers."""

    name = "none"
    dimension = 0
    max_tokens = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Never called: this process loaded no model."""
        raise RuntimeError("no embedding model is loaded in this process")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Never called: this process loaded no model."""
        raise RuntimeError("no embedding model is loaded in this process")


def build_services(settings: Settings, embedder: Embedder, load_index: bool = True, update_index: bool = False) -> Services:
    """The bot's services: the knowledge base (loaded, built when missing, updated on request) and the databases."""
    knowledge = build_knowledge(settings, embedder)
    if load_index:
        report = knowledge.load()
        if report is None and update_index:
            report = knowledge.reindex(warn=lambda message: log.warning("%s", message))
        if report is not None and (report.changed or report.rebuilt):
            log.info(
                "indexed the corpus: %d added, %d updated, %d removed; %d passages embedded",
                len(report.added),
                len(report.updated),
                len(report.removed),
                report.chunks_embedded,
            )
        for skipped in report.skipped if report is not None else ():
            log.warning("skipped %s: %s", skipped.path, skipped.reason)
    fetcher = build_fetcher(settings)
    return Services(
        settings,
        knowledge,
        AnswerLog(settings.bot_database),
        ConversationStore(settings.conversations_database),
        fetcher,
        FeedStore(settings.feeds_database),
        build_adder(settings, knowledge, fetcher),
    )
