"""Approximate search for large indexes: an IVF index derived from the exact vectors at commit time.

IVF rather than HNSW because it is cheap to build from scratch at every commit (k-means on a
sample, then one pass to assign vectors); see docs/index.md for the measured threshold and recall.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import faiss
import numpy as np

ANN_MODES = ("auto", "flat", "ivf")
# Above this many chunks `auto` builds an IVF index; measured in bench/search_latency.py.
DEFAULT_ANN_THRESHOLD = 200_000
DEFAULT_NPROBE = 16


def all_vectors(index: faiss.IndexIDMap2) -> tuple[np.ndarray, np.ndarray]:
    """The raw vectors and their ids out of an exact IndexIDMap2(IndexFlatIP)."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    flat = faiss.downcast_index(index.index)
    vectors = flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else np.zeros((0, flat.d), dtype=np.float32)
    return vectors, ids


def build_ivf(index: faiss.IndexIDMap2, nprobe: int = DEFAULT_NPROBE) -> faiss.Index:
    """An IVF-Flat inner-product index over the same vectors and ids."""
    vectors, ids = all_vectors(index)
    n, dimension = vectors.shape
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    quantizer = faiss.IndexFlatIP(dimension)
    ivf = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = vectors if n <= 256 * nlist else vectors[np.random.default_rng(0).choice(n, 256 * nlist, replace=False)]
    ivf.train(sample)
    ivf.add_with_ids(vectors, ids)
    ivf.nprobe = nprobe
    return ivf


def ann_builder_for(mode: str, threshold: int = DEFAULT_ANN_THRESHOLD) -> Callable[[faiss.IndexIDMap2], faiss.Index | None]:
    """What to build beside the exact vectors at commit: nothing, or an IVF index."""
    if mode not in ANN_MODES:
        raise ValueError(f"ANN_INDEX must be one of {', '.join(ANN_MODES)}, not {mode!r}")

    def build(index: faiss.IndexIDMap2) -> faiss.Index | None:
        if mode == "flat" or index.ntotal == 0:
            return None
        if mode == "ivf" or index.ntotal > threshold:
            return build_ivf(index)
        return None

    return build
