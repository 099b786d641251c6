"""Bring the on-disk index in line with the corpus folder: embed only what changed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.indexing.ann import DEFAULT_ANN_THRESHOLD, ann_builder_for
from index.indexing.chunking import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP_SENTENCES,
    DEFAULT_TARGET_TOKENS,
    chunk_text,
    paragraph_spans,
)
from index.indexing.corpus import DEFAULT_MAX_ARTICLE_BYTES, article_id_for, scan_corpus
from index.indexing.embedding import Embedder
from index.indexing.sentences import chunk_sentences, context_key
from index.indexing.store import (
    LOCK,
    IndexCorruptError,
    IndexStore,
    Upsert,
    crashpoint,
    writer_lock,
)
from index.types import Article, Chunk, IndexReport

# Embed this many chunks per call: large enough for the model's length-sorted batching,
# small enough for a progress bar that moves.
EMBED_GROUP = 1024

Progress = Callable[[int, int], None]


# Raised when the way articles are cut or what is stored with their chunks changes: an index
# written before is then re-chunked on the next run. 2: one-line paragraphs, stored sentence vectors.
CHUNK_LAYOUT = 2


@dataclass(frozen=True)
class IndexOptions:
    """How articles are chunked and what approximate index is kept beside the exact one."""

    target_tokens: int = DEFAULT_TARGET_TOKENS
    overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES
    ann_mode: str = "auto"
    ann_threshold: int = DEFAULT_ANN_THRESHOLD

    def chunking(self) -> str:
        """The chunk settings as recorded in the manifest; a different value means re-chunk everything."""
        return f"target={self.target_tokens} overlap={self.overlap_sentences} max={DEFAULT_MAX_TOKENS} layout={CHUNK_LAYOUT}"


def chunk_article(article: Article, embedder: Embedder, options: IndexOptions) -> list[Chunk]:
    """Sentence-aware chunks of one article, sized in the embedder's tokens."""
    max_tokens = min(DEFAULT_MAX_TOKENS, embedder.max_tokens)
    return chunk_text(
        article.article_id,
        article.text,
        embedder.count_tokens,
        # A model with a shorter window than the target gets chunks that fit it.
        target_tokens=min(options.target_tokens, max_tokens),
        overlap_sentences=options.overlap_sentences,
        max_tokens=max_tokens,
    )


def embed_texts(texts: Sequence[str], embedder: Embedder, progress: Progress | None = None) -> np.ndarray:
    """Vectors for the texts, in order, embedded in groups, reporting (done, total) as groups finish."""
    parts = []
    for offset in range(0, len(texts), EMBED_GROUP):
        parts.append(embedder.embed(list(texts[offset : offset + EMBED_GROUP])))
        crashpoint("embedded-group")
        if progress:
            progress(min(offset + EMBED_GROUP, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)


def embed_chunks(chunks: list[Chunk], embedder: Embedder, progress: Progress | None = None) -> np.ndarray:
    """Vectors for the chunks, in order, reporting (done, total) as groups finish."""
    return embed_texts([c.text for c in chunks], embedder, progress)


def article_contexts(article: Article, chunks: Sequence[Chunk]) -> dict[str, str]:
    """The distinct texts answers embed for an article's sentences, by their storage key."""
    paragraphs = paragraph_spans(article.text)
    found: dict[str, str] = {}
    for chunk in chunks:
        for sentence in chunk_sentences(chunk.text, chunk.start, chunk.paragraph, article.text, paragraphs):
            found.setdefault(context_key(sentence.context), sentence.context)
    return found


def embed_contexts(contexts: Sequence[dict[str, str]], embedder: Embedder, progress: Progress | None = None) -> list[dict[str, np.ndarray]]:
    """Vectors of every article's sentence contexts, by key, embedded in groups (progress counts sentences)."""
    keys = [(n, key) for n, article in enumerate(contexts) for key in article]
    vectors = embed_texts([contexts[n][key] for n, key in keys], embedder, progress)
    result: list[dict[str, np.ndarray]] = [{} for _ in contexts]
    for (n, key), vector in zip(keys, vectors):
        result[n][key] = vector
    return result


def open_store(index_dir: Path, embedder: Embedder) -> IndexStore:
    """Load the index built for this embedder (raises on a model mismatch or corruption)."""
    return IndexStore.open(Path(index_dir), embedder.name, embedder.dimension)


def update_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    options: IndexOptions = IndexOptions(),
    rebuild: bool = False,
    progress: Progress | None = None,
    warn: Callable[[str], None] = lambda message: None,
) -> tuple[IndexReport, IndexStore]:
    """Add, update and remove articles so the index matches the corpus; return what was done and the store.

    Only articles whose content hash changed are chunked and embedded (the embedder is not
    used at all when nothing changed). A corrupted index is reported through `warn` and rebuilt
    from the corpus, which is the source of truth. A run that fails leaves behind no folder it created.
    """
    new_folders = missing_folders(Path(index_dir))
    try:
        return _update_index(Path(corpus_dir), Path(index_dir), embedder, options, rebuild, progress, warn)
    except BaseException:
        remove_empty_folders(new_folders)
        raise


def missing_folders(folder: Path) -> list[Path]:
    """The folder and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove these folders (deepest first) if nothing but the writer's lock file is in them."""
    for folder in folders:
        with contextlib.suppress(OSError):
            if [path.name for path in folder.iterdir()] == [LOCK]:
                (folder / LOCK).unlink()
            folder.rmdir()


def _update_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    options: IndexOptions,
    rebuild: bool,
    progress: Progress | None,
    warn: Callable[[str], None],
) -> tuple[IndexReport, IndexStore]:
    started = time.perf_counter()
    report = IndexReport()
    with writer_lock(index_dir, wait_seconds=5.0):
        scan = scan_corpus(corpus_dir, options.max_article_bytes)
        report.skipped = scan.skipped
        store = None
        if not rebuild:
            try:
                store = open_store(index_dir, embedder)
            except IndexCorruptError as exc:
                warn(f"{exc}: rebuilding from the corpus")
        if store is not None and store.manifest is not None and store.manifest.get("chunking", "") != options.chunking():
            warn("the chunk settings changed since the last index: re-chunking and embedding every article")
            store.close()
            store = None
        if store is None:
            store = IndexStore.empty_like(index_dir, embedder.name, embedder.dimension)
            report.rebuilt = True
        indexed = {info.article_id: info.content_hash for info in store.articles()}
        # A file that became unreadable keeps its last good version in the index: nothing is lost.
        # Not a link leading outside the corpus: what was read through it must leave the index.
        unreadable = {article_id_for(Path(s.path), corpus_dir) for s in scan.skipped if s.path not in scan.outside_links}
        changed: list[Article] = []
        for article in scan.articles:
            previous = indexed.get(article.article_id)
            if previous == article.content_hash:
                report.unchanged += 1
                continue
            (report.added if previous is None else report.updated).append(article.article_id)
            changed.append(article)
        present = {a.article_id for a in scan.articles} | unreadable
        report.removed = sorted(set(indexed) - present)
        # Nothing to do, unless no index was ever written (an empty corpus still gets an empty index).
        if not changed and not report.removed and not report.rebuilt and store.manifest is not None:
            report.seconds = time.perf_counter() - started
            return report, store

        chunked = [(article, chunk_article(article, embedder, options)) for article in changed]
        all_chunks = [chunk for _, chunks in chunked for chunk in chunks]
        vectors = embed_chunks(all_chunks, embedder, progress)
        contexts = [article_contexts(article, chunks) for article, chunks in chunked]
        sentence_vectors = embed_contexts(contexts, embedder, progress)
        upserts, offset = [], 0
        for (article, chunks), article_sentences in zip(chunked, sentence_vectors):
            upserts.append(Upsert(article, chunks, vectors[offset : offset + len(chunks)], article_sentences))
            offset += len(chunks)
        report.chunks_embedded = len(all_chunks)
        report.sentences_embedded = sum(len(keys) for keys in contexts)
        try:
            store.commit(upserts, report.removed, ann_builder_for(options.ann_mode, options.ann_threshold), options.chunking())
        except BaseException:
            store.close()
            raise
    report.seconds = time.perf_counter() - started
    return report, store
