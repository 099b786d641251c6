"""Retrieval: dense (FAISS), keyword (BM25) and their fusion (hybrid).

Hybrid retrieval pools the top CANDIDATES of each method, normalises both scores to [0, 1]
within that pool (min-max) and ranks by their convex combination, DENSE_WEIGHT * cosine +
(1 - DENSE_WEIGHT) * BM25. Reciprocal rank fusion stays available (fusion="rrf"). The choice,
the weights and the BM25 tokenisation were measured on SQuAD dev: see docs/retrieval.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from index.indexing.embedding import Embedder
from index.types import Hit
from index.indexing.store import IndexStore

RETRIEVAL_MODES = ("hybrid", "dense", "bm25")
# Chosen by measurement on SQuAD dev v1.1: see docs/retrieval.md.
DEFAULT_RETRIEVAL = "hybrid"
FUSION_METHODS = ("score", "rrf")
DEFAULT_FUSION = "score"
# Weight of the normalised cosine in score fusion; BM25 gets 1 - DENSE_WEIGHT.
DENSE_WEIGHT = 0.5
RRF_K = 60
CANDIDATES = 50
# Lucene's (and Elasticsearch's) BM25 parameters; bm25s defaults to k1=1.5.
BM25_K1 = 1.2
BM25_B = 0.75

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were what which who whom "
    "whose why when where how did do does with not no into than then there their they he she his her him i you we".split()
)


def _english_stemmer() -> Callable[[list[str]], list[str]]:
    """Snowball's English stemmer (PyStemmer, C); without it, words are matched unstemmed."""
    try:
        import Stemmer
    except ImportError:
        return lambda words: words
    return Stemmer.Stemmer("english").stemWords


_stem_words = _english_stemmer()


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without stopwords, for BM25 ("policies" matches "policy")."""
    return _stem_words([t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS])


class KeywordIndex:
    """BM25 over the store's chunks, built in memory (bm25s, sparse matrices).

    `texts` are what BM25 reads for each chunk: the chunk text, and the article title when the
    retriever supplies it, so a question that names the article's subject finds its passages.
    """

    def __init__(self, chunk_ids: np.ndarray, texts: Sequence[str]):
        import bm25s

        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        self._order = np.argsort(self.chunk_ids, kind="stable")
        self._bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        self._vocabulary: dict = {}
        if len(texts):
            self._bm25.index([keyword_tokens(t) for t in texts], show_progress=False)
            self._vocabulary = self._bm25.vocab_dict

    def scores(self, question: str) -> np.ndarray | None:
        """BM25 score of every chunk (aligned with `chunk_ids`); None when no query word is indexed."""
        tokens = [t for t in keyword_tokens(question) if t in self._vocabulary]
        if not tokens or not len(self.chunk_ids):
            return None
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def scores_of(self, scores: np.ndarray | None, chunk_ids: Sequence[int]) -> np.ndarray:
        """The entries of a `scores` array for these chunk ids (0 for unknown ids or no scores)."""
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        if scores is None or not len(wanted):
            return np.zeros(len(wanted), dtype=np.float32)
        sorted_ids = self.chunk_ids[self._order]
        slots = np.clip(np.searchsorted(sorted_ids, wanted), 0, len(sorted_ids) - 1)
        found = sorted_ids[slots] == wanted
        return np.where(found, scores[self._order[slots]], 0.0).astype(np.float32)

    def top(self, scores: np.ndarray | None, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) pairs with a positive score."""
        if scores is None or k < 1:
            return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def search(self, question: str, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) pairs; empty when no query word is in the corpus."""
        return self.top(self.scores(question), k)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score = sum of 1 / (k + rank), rank counted from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def min_max(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant array (nothing to tell apart) becomes all zeros."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def score_fusion(candidates: Sequence[int], cosines: np.ndarray, keyword_scores: np.ndarray,
                 dense_weight: float = DENSE_WEIGHT) -> list[tuple[int, float]]:
    """Rank candidates by dense_weight * minmax(cosine) + (1 - dense_weight) * minmax(BM25)."""
    fused = dense_weight * min_max(cosines) + (1.0 - dense_weight) * min_max(keyword_scores)
    return sorted(zip((int(c) for c in candidates), fused.tolist()), key=lambda pair: (-pair[1], pair[0]))


class Retriever:
    """Finds the passages that best match a question in one loaded index."""

    def __init__(self, store: IndexStore, embedder: Embedder, mode: str = DEFAULT_RETRIEVAL, nprobe: int | None = None,
                 fusion: str = DEFAULT_FUSION, dense_weight: float = DENSE_WEIGHT):
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

    def keyword_index(self) -> KeywordIndex:
        """The BM25 index (chunk text plus article title) for the store's current generation, built on first use."""
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
        pool = max(k, CANDIDATES)
        need_dense = self.mode in ("dense", "hybrid")
        if need_dense and query_vectors is None:
            query_vectors = self.embedder.embed(list(questions))
        dense = self.dense(query_vectors, pool if self.mode == "hybrid" else k) if need_dense else None
        results = []
        for position, question in enumerate(questions):
            if self.mode == "dense":
                ranked = dense[position]
            elif self.mode == "bm25":
                ranked = self.keyword_index().search(question, k)
            else:
                ranked = self._hybrid(question, query_vectors[position], dense[position], pool, k)
            results.append(self._hits(ranked[:k]))
        return results

    def _hybrid(self, question: str, query_vector: np.ndarray, dense_ranked: list[tuple[int, float]],
                pool: int, k: int) -> list[tuple[int, float]]:
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
            fused = score_fusion(candidates, np.array([cosine[i] for i in candidates]),
                                 keyword.scores_of(keyword_scores, candidates), self.dense_weight)[:k]
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
        return [Hit(rank=n, score=score, chunk=chunks[i]) for n, (i, score) in enumerate(((i, s) for i, s in ranked if i in chunks), start=1)]
