"""Combining the dense (cosine) and keyword (BM25) rankings of the same candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Weight of the normalised cosine in score fusion; BM25 gets 1 - DENSE_WEIGHT (docs/measurements/retrieval-quality.md).
DENSE_WEIGHT = 0.5
RRF_K = 60


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


def score_fusion(
    candidates: Sequence[int], cosines: np.ndarray, keyword_scores: np.ndarray, dense_weight: float = DENSE_WEIGHT
) -> list[tuple[int, float]]:
    """Rank candidates by dense_weight * minmax(cosine) + (1 - dense_weight) * minmax(BM25)."""
    fused = dense_weight * min_max(cosines) + (1.0 - dense_weight) * min_max(keyword_scores)
    return sorted(zip((int(c) for c in candidates), fused.tolist()), key=lambda pair: (-pair[1], pair[0]))
