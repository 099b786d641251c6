"""Warm, in-process `Retriever.search` latency at 1k / 25k / 100k chunks, and exact vs IVF FAISS.

    .venv/bin/python -m bench.search_latency ../shared/data/ungdc/ungdc_2015_2024.jsonl

Part 1 (latency): needs the full UN General Debate index that bench.index_throughput
builds in the work folder (built here through bot.services when missing, which takes long).
From its chunks and vectors it writes indexes of exactly 1,000 and 25,000 real speech chunks
(whole speeches in a fixed shuffled order, the last one cut to size) with the store's own
commit. The 100,000-chunk index holds every real chunk plus copies of whole speeches (same
text, chunk offsets and BM25 tokens; vectors = normalise(v + noise) with cosine ~0.8 to the
original) up to 100,000. Each question is timed through `Retriever.search(question, k=5)`
(the retriever of bot.services.extractive_engine, as the bot builds it) in dense and hybrid
mode (bm25 for reference), after a warm-up pass; the time is split into
query embedding / dense FAISS search / BM25 / the rest (fusion, cosine look-ups, SQLite
fetch of the hits). The in-run baseline is the bare query embedding (`model.encode`).

Part 2 (faiss): exact flat inner-product search time against n (real vectors, then synthetic
vectors made the same way), and the IVF index that index/indexing/ann.py builds: build time, search
time and recall@10 against exact search, for several nprobe values, at 100k and above.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numpy as np

from bench.machine import median, percentile, print_load, print_machine
from bench.results import write_results
from bot.services import extractive_engine, load_embedder, open_knowledge
from bot.settings import Settings
from index.indexing import ann
from index.indexing.store import IndexStore, Upsert, read_manifest
from index.types import Article, Chunk

# Before anything imports huggingface_hub (the embedder sets these too).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_WORK = Path(os.environ.get("POLICYBOT_BENCH_DIR", "/tmp/policybot-bench"))
COPY_COSINE = 0.8

# Questions a user of a UN-debate corpus might ask; fixed so runs compare.
QUESTIONS = [
    "What did countries say about climate change and rising sea levels?",
    "Which speakers called for reform of the Security Council?",
    "How did leaders describe the COVID-19 pandemic and access to vaccines?",
    "What was said about the war in Ukraine?",
    "Who mentioned the Sustainable Development Goals and the 2030 Agenda?",
    "What do small island developing States ask for?",
    "How did speakers talk about the Israeli-Palestinian conflict and a two-State solution?",
    "What was said about nuclear disarmament and the non-proliferation treaty?",
    "Which countries spoke about migration and refugees?",
    "What did leaders say about terrorism and violent extremism?",
    "How was the Paris Agreement discussed?",
    "What concerns were raised about debt relief for developing countries?",
    "What did speakers say about gender equality and the empowerment of women?",
    "How did leaders describe the situation in Syria?",
    "What was said about the Democratic People's Republic of Korea's missile tests?",
    "Who talked about the reform of international financial institutions?",
    "What was said about food security and hunger?",
    "How did speakers address cybersecurity and new technologies?",
    "What did African leaders say about peace and security on the continent?",
    "Which speeches mentioned the Iran nuclear deal?",
    "What was said about human rights violations?",
    "How did countries describe the role of the United Nations in multilateralism?",
    "What did speakers say about the Rohingya crisis in Myanmar?",
    "Who called for an end to the embargo against Cuba?",
    "What was said about artificial intelligence?",
    "How did leaders talk about ocean protection and fisheries?",
    "What did speakers say about the conflict in Yemen?",
    "What is the position on Western Sahara?",
    "How was the situation in Afghanistan after 2021 discussed?",
    "What did leaders say about health systems and universal health coverage?",
    "Which countries raised the issue of unilateral coercive measures and sanctions?",
    "What was said about peacekeeping operations?",
    "How did speakers address youth unemployment and education?",
    "What did speakers say about the Sahel and terrorism in West Africa?",
    "What was said about the crisis in Venezuela?",
    "How did leaders discuss energy transition and renewable energy?",
    "What did countries say about the Ebola outbreak?",
    "Who spoke about landlocked developing countries and trade?",
    "What was said about corruption and illicit financial flows?",
    "How did speakers discuss the protection of civilians in armed conflict?",
]


# ---- building indexes of a given size from the full one -------------------------------------


def load_full(
    index_dir: Path, model: str, dimension: int
) -> tuple[dict[str, Article], dict[str, list[tuple[int, Chunk]]], dict[int, np.ndarray]]:
    """Articles, their chunks (with ids) and every vector of the full index."""
    store = IndexStore.open(index_dir, model, dimension)
    # The index's metadata file, read directly (read-only): the store has no public query for whole rows.
    meta = index_dir / read_manifest(index_dir)["files"]["meta"]["name"]
    db = sqlite3.connect(f"file:{meta}?mode=ro", uri=True)
    articles = {}
    for row in db.execute("SELECT article_id, title, url, author, published, source, path, content_hash, text FROM articles"):
        articles[row[0]] = Article(
            article_id=row[0],
            title=row[1],
            url=row[2],
            author=row[3],
            published=row[4],
            source=row[5],
            path=row[6],
            content_hash=row[7],
            text=row[8],
        )
    chunks: dict[str, list[tuple[int, Chunk]]] = {a: [] for a in articles}
    for row in db.execute("SELECT chunk_id, article_id, ordinal, paragraph, start, end, text, token_count FROM chunks ORDER BY chunk_id"):
        chunks[row[1]].append((row[0], Chunk(row[1], row[2], row[3], row[4], row[5], row[6], row[7])))
    db.close()
    vectors, ids = ann.all_vectors(store.vectors)
    store.close()
    return articles, chunks, dict(zip(ids.tolist(), vectors))


def perturbed(vectors: np.ndarray, rng: np.random.Generator, cosine: float = COPY_COSINE) -> np.ndarray:
    """normalise(v + g) with g Gaussian of norm sqrt(1/cos^2 - 1): cosine to v is about `cosine`."""
    scale = np.sqrt(1 / cosine**2 - 1) / np.sqrt(vectors.shape[1])
    out = vectors + rng.standard_normal(vectors.shape).astype(np.float32) * scale
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def build_sized_index(target: Path, size: int, articles, chunks, vectors, model: str, dimension: int) -> dict:
    """An exact index of exactly `size` chunks: real speeches in shuffled order, then perturbed copies."""
    manifest = target / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("chunks") == size:
        return {"reused": True}
    order = sorted(articles)
    random.Random(0).shuffle(order)
    rng = np.random.default_rng(0)
    upserts, count, copies = [], 0, 0
    copy_round = 0
    while count < size:
        for article_id in order:
            if count >= size:
                break
            pairs = chunks[article_id][: size - count]
            if not pairs:
                continue
            article = articles[article_id]
            vecs = np.stack([vectors[i] for i, _ in pairs])
            these = [c for _, c in pairs]
            if copy_round:
                new_id = f"copy{copy_round}/{article_id}"
                article = Article(**{**article.__dict__, "article_id": new_id, "title": f"{article.title} (copy {copy_round})"})
                these = [Chunk(new_id, c.ordinal, c.paragraph, c.start, c.end, c.text, c.token_count) for c in these]
                vecs = perturbed(vecs, rng)
                copies += len(these)
            upserts.append(Upsert(article, these, vecs))
            count += len(these)
        copy_round += 1
    if target.exists():
        for path in target.iterdir():
            path.unlink()
    store = IndexStore.empty_like(target, model, dimension)
    started = time.perf_counter()
    store.commit(upserts, [], ann.ann_builder_for("flat"))
    store.close()
    return {"reused": False, "articles": len(upserts), "copied_chunks": copies, "commit_s": time.perf_counter() - started}


# ---- part 1: Retriever.search latency --------------------------------------------------------


class Timer:
    """Adds up the seconds spent in wrapped callables, per name."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return wrapper


def latency_for(index_dir: Path, embedder, modes: Sequence[str], passes: int) -> dict:
    store = IndexStore.open(index_dir, embedder.name, embedder.dimension)
    result = {"chunks": store.chunk_count, "modes": {}}
    for mode in modes:
        # The retriever the bot's answer engine uses, in this retrieval mode.
        retriever = extractive_engine(Settings().with_changes(retrieval=mode), embedder, store).retriever
        timer = Timer()
        if mode in ("hybrid", "bm25"):
            started = time.perf_counter()
            keyword = retriever.keyword_index()
            result["bm25_build_s"] = time.perf_counter() - started
            # Wrap the parts the retriever calls (not `search` around them, which would count twice).
            parts_called = [n for n in ("scores", "top", "scores_of") if hasattr(keyword, n)] or ["search"]
            for name in parts_called:
                setattr(keyword, name, timer.wrap("bm25", getattr(keyword, name)))
        retriever.dense = timer.wrap("dense", retriever.dense)
        real_embed = embedder.embed
        for question in QUESTIONS[:10]:  # warm-up, untimed
            retriever.search(question, 5)
        totals, parts = [], {"embed": [], "dense": [], "bm25": [], "rest": []}
        embedder.embed = timer.wrap("embed", real_embed)
        try:
            for _ in range(passes):
                for question in QUESTIONS:
                    timer.seconds.clear()
                    started = time.perf_counter()
                    hits = retriever.search(question, 5)
                    total = time.perf_counter() - started
                    assert hits or mode == "bm25", question
                    totals.append(total * 1000)
                    known = 0.0
                    for name in ("embed", "dense", "bm25"):
                        parts[name].append(timer.seconds.get(name, 0.0) * 1000)
                        known += timer.seconds.get(name, 0.0)
                    parts["rest"].append((total - known) * 1000)
        finally:
            del embedder.embed  # back to the class method
        result["modes"][mode] = {
            "p50_ms": percentile(totals, 50),
            "p95_ms": percentile(totals, 95),
            "n": len(totals),
            "split_p50_ms": {k: percentile(v, 50) for k, v in parts.items()},
            "split_mean_ms": {k: float(np.mean(v)) for k, v in parts.items()},
        }
    store.close()
    return result


def bare_embed_ms(embedder, passes: int) -> dict:
    """The floor: model.encode of one question, as the retriever calls it."""
    times = []
    for _ in range(passes):
        for question in QUESTIONS:
            started = time.perf_counter()
            embedder.embed([question])
            times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


def bm25_alternatives(index_dir: Path, embedder, k: int = 50) -> dict:
    """Time the current KeywordIndex.search against bm25s's own retrieve(k), and check they agree."""
    import bm25s

    from index.retrieval.keywords import BM25_B, BM25_K1, KeywordIndex, keyword_tokens

    store = IndexStore.open(index_dir, embedder.name, embedder.dimension)
    chunk_ids, texts = store.chunk_ids_and_texts()
    store.close()
    keyword = KeywordIndex(chunk_ids, texts)
    # bm25s over the same tokens with the same parameters, queried through its own retrieve().
    bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    bm25.index([keyword_tokens(text) for text in texts], show_progress=False)
    k = min(k, len(texts))  # bm25s refuses a k above the corpus size
    ours, theirs, same, same_scores = [], [], 0, 0
    for question in QUESTIONS * 3:
        started = time.perf_counter()
        a = keyword.search(question, k)
        ours.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        tokens = [t for t in keyword_tokens(question) if t in bm25.vocab_dict]
        docs, scores = bm25.retrieve([tokens], k=k, show_progress=False, n_threads=0)
        b = [(int(keyword.chunk_ids[d]), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
        theirs.append((time.perf_counter() - started) * 1000)
        same += [i for i, _ in a] == [i for i, _ in b]
        same_scores += np.allclose([s for _, s in a], [s for _, s in b], rtol=1e-6) if len(a) == len(b) else 0
    return {
        "search_p50_ms": percentile(ours, 50),
        "retrieve_p50_ms": percentile(theirs, 50),
        "identical_rankings": f"{same}/{len(QUESTIONS) * 3}",
        "identical_scores": f"{same_scores}/{len(QUESTIONS) * 3}",
    }


# ---- part 2: exact FAISS vs n, IVF recall ----------------------------------------------------


def synthetic_base(real: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """n vectors: the real ones first, then normalise(u + w*v + g) for random real u, v, w in [0, 1)
    and Gaussian g of norm ~0.5: new points spread along the real data, not copies of it."""
    if n <= len(real):
        return np.ascontiguousarray(real[:n])
    rng = np.random.default_rng(seed)
    extra = []
    remaining = n - len(real)
    d = real.shape[1]
    while remaining > 0:
        take = min(remaining, 100_000)
        u = real[rng.integers(0, len(real), take)]
        v = real[rng.integers(0, len(real), take)]
        w = rng.random((take, 1), dtype=np.float32)
        x = u + w * v + rng.standard_normal((take, d), dtype=np.float32) * (0.5 / np.sqrt(d))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        extra.append(x.astype(np.float32))
        remaining -= take
    return np.ascontiguousarray(np.concatenate([real, *extra]))


def time_search(index: faiss.Index, queries: np.ndarray, k: int, repeats: int = 3, threads: int | None = None) -> float:
    """Median milliseconds of one single-query search, as the retriever does per question."""
    before = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    times = []
    try:
        for _ in range(repeats):
            for q in queries:
                started = time.perf_counter()
                index.search(q[None, :], k)
                times.append((time.perf_counter() - started) * 1000)
    finally:
        faiss.omp_set_num_threads(before)
    return median(times)


def exact_index(vectors: np.ndarray) -> faiss.IndexIDMap2:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
    return index


def recall_at(truth: np.ndarray, found: np.ndarray, k: int = 10) -> float:
    hits = sum(len(set(t[:k]) & set(f[:k])) for t, f in zip(truth, found))
    return hits / (k * len(truth))


def faiss_part(
    real: np.ndarray,
    queries: np.ndarray,
    flat_sizes: Sequence[int],
    ivf_sizes: Sequence[int],
    nprobes: Sequence[int],
    variants: dict,
    current_max: int,
) -> dict:
    out: dict = {"flat": [], "ivf": []}
    default = faiss.omp_get_max_threads()
    print(
        f"\n-- exact flat search (IndexIDMap2(IndexFlatIP), {queries.shape[1]} dims), one query at a time, "
        f"{len(queries)} questions: median ms with faiss threads {default} (default) and 1",
        flush=True,
    )
    print(f"   {'n':>9} {'k=50 t' + str(default):>9} {'k=50 t1':>8} {'k=5 t1':>8} {'MiB':>7}", flush=True)
    # All sizes are held at once and timed round-robin, query by query, so that load from other
    # processes falls on every size alike (sizes timed one after another drifted apart by 5x).
    indexes = {n: exact_index(synthetic_base(real, n)) for n in flat_sizes}
    times: dict = {(n, key): [] for n in flat_sizes for key in ("k50_default_ms", "k50_t1_ms", "k5_t1_ms")}
    for _ in range(2):
        for q in queries:
            for key, k, threads in (("k50_default_ms", 50, None), ("k50_t1_ms", 50, 1), ("k5_t1_ms", 5, 1)):
                for n, index in indexes.items():
                    times[(n, key)].append(time_search(index, q[None, :], k, 1, threads=threads))
    for n in flat_sizes:
        row = {"n": n, "mib": n * real.shape[1] * 4 / 2**20}
        row.update({key: median(times[(n, key)]) for key in ("k50_default_ms", "k50_t1_ms", "k5_t1_ms")})
        row["k50_t1_p95_ms"] = percentile(times[(n, "k50_t1_ms")], 95)
        out["flat"].append(row)
        print(f"   {n:>9,} {row['k50_default_ms']:>9.2f} {row['k50_t1_ms']:>8.2f} {row['k5_t1_ms']:>8.2f} {row['mib']:>7.0f}", flush=True)
    del indexes
    print("\n-- IVF-Flat vs exact: build time, median ms per query (k=50; faiss threads default / 1), recall@10 vs exact", flush=True)
    for n in ivf_sizes:
        base = synthetic_base(real, n)
        exact = exact_index(base)
        exact_ms = time_search(exact, queries, 50, 1, threads=1)
        _, truth = exact.search(queries, 10)
        for name, build in variants.items():
            if name == "old" and n > current_max:
                print(
                    f"   n {n:>9,}  {name:18} skipped (k-means on up to 256 x 4 sqrt(n) points, 25 iterations: too slow to build here)",
                    flush=True,
                )
                continue
            started = time.perf_counter()
            ivf = build(exact)
            build_s = time.perf_counter() - started
            for nprobe in nprobes:
                ivf.nprobe = nprobe
                _, found = ivf.search(queries, 10)
                row = {
                    "n": n,
                    "variant": name,
                    "nlist": ivf.nlist,
                    "nprobe": nprobe,
                    "build_s": build_s,
                    "ms_default": time_search(ivf, queries, 50),
                    "ms_t1": time_search(ivf, queries, 50, threads=1),
                    "exact_t1_ms": exact_ms,
                    "recall10": recall_at(truth, found),
                }
                out["ivf"].append(row)
                print(
                    f"   n {n:>9,}  {name:18} nlist {ivf.nlist:>5} nprobe {nprobe:>3}: build {build_s:6.1f} s, "
                    f"{row['ms_default']:6.2f} / {row['ms_t1']:6.2f} ms (exact t1 {exact_ms:6.2f} ms), "
                    f"recall@10 {row['recall10']:.3f}",
                    flush=True,
                )
            del ivf
        del exact, base
    return out


def ivf_variant(nlist_rule: Callable[[int], int], sample_per_list: int, niter: int = 25) -> Callable:
    """An IVF builder like ann.build_ivf but with another nlist / training sample / iterations."""

    def build(index: faiss.IndexIDMap2) -> faiss.Index:
        vectors, ids = ann.all_vectors(index)
        n, d = vectors.shape
        nlist = max(1, min(nlist_rule(n), n // 39))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.niter = niter
        limit = sample_per_list * nlist
        sample = vectors if n <= limit else vectors[np.random.default_rng(0).choice(n, limit, replace=False)]
        ivf.train(sample)
        ivf.add_with_ids(vectors, ids)
        return ivf

    return build


# ---- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jsonl", type=Path, help="ungdc_2015_2024.jsonl (to build the full index when missing)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"work folder (default {DEFAULT_WORK})")
    parser.add_argument("--sizes", default="1000,25000,100000", help="index sizes for part 1")
    parser.add_argument("--modes", default="dense,hybrid,bm25", help="retrieval modes for part 1")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the questions (default 3)")
    parser.add_argument("--flat-sizes", default="25000,50000,100000,200000,400000,1000000", help="part 2 exact sizes")
    parser.add_argument("--ivf-sizes", default="100000,200000,400000", help="part 2 IVF sizes")
    parser.add_argument("--nprobes", default="4,8,16,32", help="part 2 nprobe values")
    parser.add_argument(
        "--variants",
        default="old,shipped",
        help="IVF builders: shipped (index/indexing/ann.py), old, sqrt, sqrt-fast, 2sqrt-fast (comma-separated)",
    )
    parser.add_argument(
        "--threads", default="default,1", help="torch+faiss thread settings for part 1, e.g. default,1 (default: both, same run)"
    )
    parser.add_argument(
        "--real-index",
        type=Path,
        help="index with real model vectors for part 2 (default: WORK/index-2024 from bench.index_throughput, else WORK/index-all)",
    )
    parser.add_argument("--current-max", type=int, default=100_000, help="largest n to build the old IVF at")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    info = print_machine("search latency: Retriever.search, warm, in-process")
    embedder = load_embedder(Settings(), bulk=True)  # torch's default threads; part 1 sets them per --threads
    embedder.embed(QUESTIONS)
    full_dir = args.work / "index-all"
    if not (full_dir / "manifest.json").exists():
        from bench.speeches import load_speeches, write_corpus

        print(f"building the full index in {full_dir} (long; bench.index_throughput builds the same)", flush=True)
        write_corpus(load_speeches(args.jsonl), args.work / "corpus-all")
        open_knowledge(Settings().with_changes(corpus_dir=args.work / "corpus-all", index_dir=full_dir), embedder).close()
    articles, chunks, vectors = load_full(full_dir, embedder.name, embedder.dimension)
    total = sum(len(c) for c in chunks.values())
    print(f"full index {full_dir}: {len(articles)} speeches, {total:,} chunks; questions: {len(QUESTIONS)}", flush=True)
    results: dict = {"full_chunks": total, "questions": len(QUESTIONS), "latency": [], "faiss": None}

    if not args.skip_latency:
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        import torch

        default_threads = (torch.get_num_threads(), faiss.omp_get_max_threads())
        for size in [int(s) for s in args.sizes.split(",")]:
            target = args.work / f"search-{size}"
            built = build_sized_index(target, size, articles, chunks, vectors, embedder.name, embedder.dimension)
            extra = "" if built.get("reused") else f" (written now: {built['articles']} articles, {built['copied_chunks']:,} copied chunks)"
            print(f"-- {size:,} chunks{extra}", flush=True)
            for threads in [t.strip() for t in args.threads.split(",") if t.strip()]:
                torch_threads, faiss_threads = default_threads if threads == "default" else (int(threads), int(threads))
                torch.set_num_threads(torch_threads)
                faiss.omp_set_num_threads(faiss_threads)
                floor = bare_embed_ms(embedder, 1)
                row = latency_for(target, embedder, modes, args.passes)
                row.update(size=size, built=built, threads=threads, torch_threads=torch_threads, bare_embed=floor)
                results["latency"].append(row)
                print(
                    f"   threads {threads} (torch {torch_threads}, faiss {faiss_threads}); BM25 build "
                    f"{row.get('bm25_build_s', 0):.1f} s; baseline bare query embedding p50 {floor['p50_ms']:.1f} ms",
                    flush=True,
                )
                for mode, m in row["modes"].items():
                    sp = m["split_p50_ms"]
                    print(
                        f"   {mode:6}: p50 {m['p50_ms']:6.1f} ms  p95 {m['p95_ms']:6.1f} ms   split p50: embed {sp['embed']:.1f}, "
                        f"dense {sp['dense']:.2f}, bm25 {sp['bm25']:.2f}, rest {sp['rest']:.2f} ms",
                        flush=True,
                    )
            torch.set_num_threads(default_threads[0])
            faiss.omp_set_num_threads(default_threads[1])
            if "hybrid" in modes or "bm25" in modes:
                b = bm25_alternatives(target, embedder)
                results["latency"][-1]["bm25_alternatives"] = b
                print(
                    f"   BM25 top-50: KeywordIndex.search p50 {b['search_p50_ms']:.2f} ms; bm25s.retrieve(k=50) "
                    f"p50 {b['retrieve_p50_ms']:.2f} ms; same ids in order {b['identical_rankings']}, "
                    f"same scores {b['identical_scores']} (ties may swap ids)",
                    flush=True,
                )

    if not args.skip_faiss:
        real_dir = args.real_index or next(p for p in (args.work / "index-2024", full_dir) if (p / "manifest.json").exists())
        real_store = IndexStore.open(real_dir, embedder.name, embedder.dimension)
        real = ann.all_vectors(real_store.vectors)[0]
        real_store.close()
        results["faiss_real_vectors"] = {"index": str(real_dir), "count": len(real)}
        print(f"\npart 2 seeds: {len(real):,} model vectors from {real_dir}", flush=True)
        queries = embedder.embed(QUESTIONS)
        variants = {
            "shipped": ann.build_ivf,  # what index/indexing/ann.py builds now
            "old": ivf_variant(lambda n: int(4 * np.sqrt(n)), 256, 25),  # the first version: 4 sqrt(n) lists
            "sqrt": ivf_variant(lambda n: int(np.sqrt(n)), 64, 25),
            "sqrt-fast": ivf_variant(lambda n: int(np.sqrt(n)), 40, 10),
            "2sqrt-fast": ivf_variant(lambda n: int(2 * np.sqrt(n)), 40, 10),
        }
        chosen = {k: variants[k] for k in args.variants.split(",")}
        results["faiss"] = faiss_part(
            real,
            queries,
            [int(s) for s in args.flat_sizes.split(",") if s],
            [int(s) for s in args.ivf_sizes.split(",") if s],
            [int(s) for s in args.nprobes.split(",")],
            chosen,
            args.current_max,
        )
    results["busy_at_end"] = print_load()

    if results["latency"]:
        print("\nsummary (ms, warm, in-process; goal: p50 < 30 ms at 25k chunks)")
        print(
            f"{'chunks':>8} {'threads':>7} {'mode':7} {'p50':>7} {'p95':>7}  "
            f"{'embed':>6} {'dense':>6} {'bm25':>6} {'rest':>6}  bare embed p50"
        )
        for row in results["latency"]:
            for mode, m in row["modes"].items():
                sp = m["split_p50_ms"]
                print(
                    f"{row['size']:>8,} {row['threads']:>7} {mode:7} {m['p50_ms']:>7.1f} {m['p95_ms']:>7.1f}  {sp['embed']:>6.1f} "
                    f"{sp['dense']:>6.2f} {sp['bm25']:>6.2f} {sp['rest']:>6.2f}  {row['bare_embed']['p50_ms']:.1f}"
                )
    if args.json:
        write_results("search_latency", results, info, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
