"""Approximate search for large indexes: an IVF index derived from the exact vectors at commit time.

IVF rather than HNSW because it is cheap to build from scratch at every commit (k-means on a
sample, then one pass to assign vectors). The numbers below were measured with
bench/search_latency.py on 2 shared cores; docs/measurements/indexing-and-search.md has the tables.

- Exact search scans every vector (1.5 KB a chunk), so its time grows linearly: one query
  took 1.5 ms at 25k chunks, 6 ms at 100k, 12 ms at 200k and 57 ms at 1M on one thread, and
  5-7x that with FAISS's default two threads when other processes keep the cores busy.
  Above DEFAULT_ANN_THRESHOLD = 100k the IVF index answers in 1.5-4 ms instead.
- sqrt(n) lists, trained for 10 k-means iterations on 40 points a list: 1.5 s to build at
  100k, 2.6 s at 200k, 6 s at 400k. The first version (4 sqrt(n) lists, 256 points a list,
  25 iterations) took 174 s at 100k under load, at every commit.
- DEFAULT_NPROBE = 64 gave recall@10 0.98-0.99 against exact search at 100k-400k chunks
  (32: 0.95-0.97; 16: 0.90-0.96).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import faiss
import numpy as np

ANN_MODES = ("auto", "flat", "ivf")
# Above this many chunks `auto` builds an IVF index; measured in bench/search_latency.py.
DEFAULT_ANN_THRESHOLD = 100_000
DEFAULT_NPROBE = 64
# k-means: FAISS wants at least 39 training points per list; more only slows every commit.
TRAINING_POINTS_PER_LIST = 40
KMEANS_ITERATIONS = 10

# What IndexStore.commit builds beside the exact vectors: an IVF index, or nothing.
AnnBuilder = Callable[[faiss.IndexIDMap2], faiss.IndexIVF | None]


def all_vectors(index: faiss.IndexIDMap2) -> tuple[np.ndarray, np.ndarray]:
    """The raw vectors and their ids out of an exact IndexIDMap2(IndexFlatIP)."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    flat = faiss.downcast_index(index.index)
    vectors = flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else np.zeros((0, flat.d), dtype=np.float32)
    return vectors, ids


def ivf_list_count(n: int) -> int:
    """sqrt(n) lists, fewer when there are not enough vectors to train them."""
    return max(1, min(int(math.sqrt(n)), n // TRAINING_POINTS_PER_LIST))


def build_ivf(index: faiss.IndexIDMap2, nprobe: int = DEFAULT_NPROBE) -> faiss.IndexIVF:
    """An IVF-Flat inner-product index over the same vectors and ids."""
    vectors, ids = all_vectors(index)
    n, dimension = vectors.shape
    nlist = ivf_list_count(n)
    quantizer = faiss.IndexFlatIP(dimension)
    ivf = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = KMEANS_ITERATIONS
    limit = TRAINING_POINTS_PER_LIST * nlist
    sample = vectors if n <= limit else vectors[np.random.default_rng(0).choice(n, limit, replace=False)]
    ivf.train(sample)
    ivf.add_with_ids(vectors, ids)
    ivf.nprobe = nprobe
    return ivf


def ann_builder_for(mode: str, threshold: int = DEFAULT_ANN_THRESHOLD) -> AnnBuilder:
    """What to build beside the exact vectors at commit: nothing, or an IVF index."""
    if mode not in ANN_MODES:
        raise ValueError(f"ANN_INDEX must be one of {', '.join(ANN_MODES)}, not {mode!r}")

    def build(index: faiss.IndexIDMap2) -> faiss.IndexIVF | None:
        if mode == "flat" or index.ntotal == 0:
            return None
        if mode == "ivf" or index.ntotal > threshold:
            return build_ivf(index)
        return None

    return build
