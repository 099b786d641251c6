"""Retrieval: dense (FAISS), keyword (BM25) and their reciprocal rank fusion."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from index.embedding import Embedder
from index.models import Hit
from index.store import IndexStore

RETRIEVAL_MODES = ("hybrid", "dense", "bm25")
# Chosen by measurement on SQuAD dev v1.1: see docs/retrieval.md.
DEFAULT_RETRIEVAL = "hybrid"
RRF_K = 60
CANDIDATES = 50

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were what which who whom "
    "whose why when where how did do does with not no into than then there their they he she his her him i you we".split()
)


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords, for BM25."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


class KeywordIndex:
    """BM25 over the store's chunks, built in memory (bm25s, sparse matrices)."""

    def __init__(self, chunk_ids: np.ndarray, texts: Sequence[str]):
        import bm25s

        self.chunk_ids = chunk_ids
        self._bm25 = bm25s.BM25()
        if len(texts):
            self._bm25.index([keyword_tokens(t) for t in texts], show_progress=False)

    def search(self, question: str, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) pairs; empty when no query word is in the corpus."""
        tokens = keyword_tokens(question)
        if not tokens or not len(self.chunk_ids):
            return []
        scores = self._bm25.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in top if scores[i] > 0]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score = sum of 1 / (k + rank), rank counted from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


class Retriever:
    """Finds the passages that best match a question in one loaded index."""

    def __init__(self, store: IndexStore, embedder: Embedder, mode: str = DEFAULT_RETRIEVAL, nprobe: int | None = None):
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"RETRIEVAL must be one of {', '.join(RETRIEVAL_MODES)}, not {mode!r}")
        self.store = store
        self.embedder = embedder
        self.mode = mode
        if nprobe is not None and store.ann is not None:
            store.ann.nprobe = nprobe
        self._keyword: KeywordIndex | None = None
        self._keyword_generation = -1

    def keyword_index(self) -> KeywordIndex:
        """The BM25 index for the store's current generation, built on first use."""
        if self._keyword is None or self._keyword_generation != self.store.generation:
            self._keyword = KeywordIndex(*self.store.chunk_ids_and_texts())
            self._keyword_generation = self.store.generation
        return self._keyword

    def dense(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk id, cosine) per query vector, from the approximate index when there is one."""
        index = self.store.ann if self.store.ann is not None else self.store.vectors
        if index.ntotal == 0:
            return [[] for _ in range(len(query_vectors))]
        scores, ids = index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), min(k, index.ntotal))
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0] for row_ids, row_scores in zip(ids, scores)]

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The k best passages for one question."""
        return self.search_many([question], k)[0]

    def search_many(self, questions: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """The k best passages for each question, embedding them in one batch."""
        if k < 1:
            raise ValueError("k must be at least 1")
        pool = max(k, CANDIDATES)
        need_dense = self.mode in ("dense", "hybrid")
        query_vectors = self.embedder.embed(list(questions)) if need_dense else None
        dense = self.dense(query_vectors, pool if self.mode == "hybrid" else k) if need_dense else None
        results = []
        for position, question in enumerate(questions):
            if self.mode == "dense":
                ranked = dense[position]
            elif self.mode == "bm25":
                ranked = self.keyword_index().search(question, k)
            else:
                dense_ranked = dense[position]
                keyword_ranked = self.keyword_index().search(question, pool)
                cosine = dict(dense_ranked)
                fused = reciprocal_rank_fusion([[i for i, _ in dense_ranked], [i for i, _ in keyword_ranked]])[:k]
                # Report the cosine similarity where known: it means the same across questions.
                missing = [i for i, _ in fused if i not in cosine]
                if missing:
                    cosine.update(self._cosines(query_vectors[position], missing))
                ranked = [(i, cosine[i]) for i, _ in fused]
            results.append(self._hits(ranked[:k]))
        return results

    def _cosines(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to chunks the dense search did not return."""
        return {i: float(np.dot(self.store.vectors.reconstruct(int(i)), query_vector)) for i in chunk_ids}

    def _hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        chunks = self.store.chunks_by_id([i for i, _ in ranked])
        return [Hit(rank=n, score=score, chunk=chunks[i]) for n, (i, score) in enumerate(((i, s) for i, s in ranked if i in chunks), start=1)]
