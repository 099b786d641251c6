"""Fusing dense and keyword rankings: min-max score fusion and reciprocal rank fusion."""

from __future__ import annotations

import numpy as np
import pytest

from index.retrieval.fusion import min_max, reciprocal_rank_fusion, score_fusion


def test_min_max_scales_to_unit_range_and_flattens_constants():
    assert min_max(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert min_max(np.array([5.0, 5.0])).tolist() == [0.0, 0.0]
    assert min_max(np.array([])).tolist() == []


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[4] == pytest.approx(1 / 63)
    assert max(fused, key=lambda i: fused[i]) == 1


def test_reciprocal_rank_fusion_breaks_ties_by_id():
    assert [i for i, _ in reciprocal_rank_fusion([[7], [5]])] == [5, 7]


def test_score_fusion_weighs_both_signals():
    candidates = [1, 2, 3]
    cosines = np.array([0.9, 0.5, 0.1])
    keyword = np.array([0.0, 10.0, 5.0])
    dense_only = score_fusion(candidates, cosines, keyword, dense_weight=1.0)
    keyword_only = score_fusion(candidates, cosines, keyword, dense_weight=0.0)
    assert [i for i, _ in dense_only] == [1, 2, 3]
    assert [i for i, _ in keyword_only] == [2, 3, 1]
    half = dict(score_fusion(candidates, cosines, keyword, dense_weight=0.5))
    assert half[2] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert half[1] == pytest.approx(0.5 * 1.0)
