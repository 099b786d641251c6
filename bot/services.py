"""The composition root: the one place that builds the embedder, index, engines, fetcher and stores.

The CLI, the terminal chat, the Discord bot and the benchmarks all build their dependencies
here, once, from Settings, and pass them down; nothing below creates its own. Heavy imports
(torch, FAISS) happen inside these functions, so commands that need no model stay fast.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
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

log = logging.getLogger("policybot." + __name__)


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


LOADING_MESSAGE = "Loading the embedding model…"


def announce_loading() -> None:
    """Say on standard error why the next seconds are quiet (standard output stays clean for --json)."""
    print(LOADING_MESSAGE, file=sys.stderr, flush=True)


class LazyEmbedder:
    """The embedding model, loaded on the first embed or token count: commands that embed nothing never import torch.

    Its name, dimension and token window come from the model folder's config files when they
    tell them (the packaged model's do), so an index is opened and checked without loading the
    model; once loaded, the model must agree with them.
    """

    def __init__(self, setting: str, load: Callable[[], Embedder], on_load: Callable[[], None] | None = announce_loading):
        from index.indexing.embedding import model_facts

        self.setting = setting
        self.on_load = on_load
        self._load = load
        self._facts = model_facts(setting)
        self._model: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """True once the model has been loaded in this process."""
        return self._model is not None

    def load(self) -> Embedder:
        """The loaded model (loading it now, once, if needed)."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                if self.on_load is not None:
                    self.on_load()
                model = self._load()
                facts = self._facts
                if (facts.name, facts.dimension or model.dimension, facts.max_tokens or model.max_tokens) != (
                    model.name,
                    model.dimension,
                    model.max_tokens,
                ):
                    from index.indexing.embedding import EmbeddingModelError

                    raise EmbeddingModelError(
                        f"embedding model '{self.setting}' loaded as '{model.name}' ({model.dimension} dims, "
                        f"{model.max_tokens} tokens), but its files say {facts.dimension} dims, {facts.max_tokens} tokens"
                    )
                self._model = model
            return self._model

    @property
    def name(self) -> str:
        """The model's identity (never needs the model loaded)."""
        return self._facts.name

    @property
    def dimension(self) -> int:
        """The vectors' length, from the model's files (or the loaded model when they do not say)."""
        return self._facts.dimension if self._facts.dimension is not None else self.load().dimension

    @property
    def max_tokens(self) -> int:
        """The model's token window, from its files (or the loaded model when they do not say)."""
        return self._facts.max_tokens if self._facts.max_tokens is not None else self.load().max_tokens

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of the texts (loading the model first if needed)."""
        return self.load().embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts in the model's tokenizer (loading the model first if needed)."""
        return self.load().count_tokens(texts)


def load_model(embedder: object) -> bool:
    """Load a lazily loaded model now, before a session whose first answer should be quick; True if it loaded now."""
    if isinstance(embedder, LazyEmbedder) and not embedder.loaded:
        embedder.load()
        return True
    return False


def load_embedder(settings: Settings, bulk: bool = False) -> Embedder:
    """The embedding model, loaded on first use: one thread for answering, all cores for bulk indexing (or TORCH_THREADS)."""

    def load() -> Embedder:
        from index.indexing.embedding import SentenceTransformerEmbedder

        threads = settings.index.torch_threads or (None if bulk else 1)
        return SentenceTransformerEmbedder(settings.index.embedding_model, threads=threads)

    return LazyEmbedder(settings.index.embedding_model, load)


def build_llm_client(settings: Settings) -> LLMClient | None:
    """The client for the configured language model, or None when LLM_BASE_URL is empty."""
    llm = settings.llm
    if llm.base_url is None:
        return None
    from index.answering.llm.client import LLMClient

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


def build_knowledge(settings: Settings, embedder: Embedder, warm_search: bool = True) -> KnowledgeBase:
    """The knowledge base over the configured corpus and index (not loaded yet).

    With `warm_search` each loaded generation's keyword index is built as it is loaded, so the
    first question does not wait for it; commands that never search (index, watch) skip it.
    """
    from index.knowledge import KnowledgeBase

    factory = engine_factory(settings, embedder, build_llm_client(settings))
    return KnowledgeBase(
        settings.index.corpus_dir, settings.index.index_dir, embedder, factory, settings.index.options(), warm_search=warm_search
    )


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
        AnswerLog(settings.bot_database, settings.host.answer_log_days),
        ConversationStore(settings.conversations_database, settings.host.conversation_days),
        fetcher,
        FeedStore(settings.feeds_database),
        build_adder(settings, knowledge, fetcher),
    )
