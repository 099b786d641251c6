"""Finding passages: dense (FAISS), keyword (BM25) and their fusion (hybrid).

Hybrid retrieval pools the top CANDIDATES of each method, normalises both scores to [0, 1]
within that pool (min-max) and ranks by their convex combination, DENSE_WEIGHT * cosine +
(1 - DENSE_WEIGHT) * BM25. Reciprocal rank fusion stays available (fusion="rrf"). The choice,
the weights and the BM25 tokenisation were measured on SQuAD dev: see docs/measurements/retrieval-quality.md.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from index.indexing.embedding import Embedder
from index.indexing.store import IndexStore
from index.retrieval.fusion import DENSE_WEIGHT, reciprocal_rank_fusion, score_fusion
from index.retrieval.keywords import KeywordIndex
from index.types import Hit

RETRIEVAL_MODES = ("hybrid", "dense", "bm25")
# Chosen by measurement on SQuAD dev v1.1: see docs/measurements/retrieval-quality.md.
DEFAULT_RETRIEVAL = "hybrid"
FUSION_METHODS = ("score", "rrf")
DEFAULT_FUSION = "score"
CANDIDATES = 50


class Retriever:
    """Finds the passages that best match a question in one loaded index."""

    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        mode: str = DEFAULT_RETRIEVAL,
        nprobe: int | None = None,
        fusion: str = DEFAULT_FUSION,
        dense_weight: float = DENSE_WEIGHT,
    ):
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"RETRIEVAL must be one of {', '.join(RETRIEVAL_MODES)}, not {mode!r}")
        if fusion not in FUSION_METHODS:
            raise ValueError(f"fusion must be one of {', '.join(FUSION_METHODS)}, not {fusion!r}")
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError("dense_weight must be between 0 and 1")
        self.store = store
        self.embedder = embedder
        self.mode = mode
        self.fusion = fusion
        self.dense_weight = dense_weight
        if nprobe is not None and store.ann is not None:
            store.ann.nprobe = nprobe
        self._keyword: KeywordIndex | None = None
        self._keyword_generation = -1
        # Concurrent answers share one build instead of each building the same index.
        self._keyword_lock = threading.Lock()

    def keyword_index(self) -> KeywordIndex:
        """The BM25 index (chunk text plus article title) for the store's current generation, built once."""
        with self._keyword_lock:
            if self._keyword is None or self._keyword_generation != self.store.generation:
                chunk_ids, _ = self.store.chunk_ids_and_texts()
                chunks = self.store.chunks_by_id(chunk_ids.tolist())
                texts = [f"{chunks[i].title}\n{chunks[i].text}" if i in chunks else "" for i in chunk_ids.tolist()]
                self._keyword = KeywordIndex(chunk_ids, texts)
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

    def search_many(self, questions: Sequence[str], k: int = 5, query_vectors: np.ndarray | None = None) -> list[list[Hit]]:
        """The k best passages for each question, embedding them in one batch unless vectors are given."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if self.mode == "bm25":
            return [self._hits(self.keyword_index().search(question, k)[:k]) for question in questions]
        pool = max(k, CANDIDATES)
        if query_vectors is None:
            query_vectors = self.embedder.embed(list(questions))
        dense = self.dense(query_vectors, pool if self.mode == "hybrid" else k)
        results = []
        for position, question in enumerate(questions):
            if self.mode == "dense":
                ranked = dense[position]
            else:
                ranked = self._hybrid(question, query_vectors[position], dense[position], pool, k)
            results.append(self._hits(ranked[:k]))
        return results

    def search_within(self, question: str, query_vector: np.ndarray, article_ids: Sequence[str], k: int) -> list[Hit]:
        """The k best passages of the named articles only: every chunk of theirs is scored, no approximation."""
        chunk_ids = self.store.chunk_ids_of(article_ids)
        if not chunk_ids:
            return []
        cosine = self._cosines(query_vector, chunk_ids)
        if self.mode == "dense":
            ranked = sorted(cosine.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
            return self._hits(ranked)
        keyword = self.keyword_index()
        bm25 = keyword.scores_of(keyword.scores(question), chunk_ids)
        if self.mode == "bm25":
            return self._hits(sorted(zip(chunk_ids, bm25.tolist()), key=lambda pair: (-pair[1], pair[0]))[:k])
        fused = score_fusion(chunk_ids, np.array([cosine[i] for i in chunk_ids]), bm25, self.dense_weight)[:k]
        return self._hits([(i, cosine[i]) for i, _ in fused])

    def _hybrid(
        self, question: str, query_vector: np.ndarray, dense_ranked: list[tuple[int, float]], pool: int, k: int
    ) -> list[tuple[int, float]]:
        """Fuse the dense and keyword candidates; each hit's score is its cosine similarity."""
        keyword = self.keyword_index()
        keyword_scores = keyword.scores(question)
        keyword_ranked = keyword.top(keyword_scores, pool)
        cosine = dict(dense_ranked)
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion([[i for i, _ in dense_ranked], [i for i, _ in keyword_ranked]])[:k]
        else:
            candidates = list(dict.fromkeys([*cosine, *(i for i, _ in keyword_ranked)]))
            missing = [i for i in candidates if i not in cosine]
            if missing:
                cosine.update(self._cosines(query_vector, missing))
            fused = score_fusion(
                candidates, np.array([cosine[i] for i in candidates]), keyword.scores_of(keyword_scores, candidates), self.dense_weight
            )[:k]
        # Report the cosine similarity: unlike a fused score it means the same across questions.
        missing = [i for i, _ in fused if i not in cosine]
        if missing:
            cosine.update(self._cosines(query_vector, missing))
        return [(i, cosine[i]) for i, _ in fused]

    def _cosines(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to chunks the dense search did not return."""
        vectors = self.store.vectors.reconstruct_batch(np.asarray(chunk_ids, dtype=np.int64))
        return dict(zip((int(i) for i in chunk_ids), (vectors @ np.asarray(query_vector, dtype=np.float32)).tolist()))

    def _hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        chunks = self.store.chunks_by_id([i for i, _ in ranked])
        return [
            Hit(rank=n, score=score, chunk=chunks[i]) for n, (i, score) in enumerate(((i, s) for i, s in ranked if i in chunks), start=1)
        ]
