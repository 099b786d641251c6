"""The on-disk index: commits, reloads, checksums, generations, the writer lock, live readers.

Real files and SQLite in tmp_path; vectors from the cheap fake embedder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import index.indexing.store as store_module
from index.indexing.corpus import scan_corpus
from index.indexing.indexer import IndexOptions, chunk_article, update_index
from index.indexing.store import (
    LOCK,
    MANIFEST,
    IndexBusyError,
    IndexCorruptError,
    IndexStore,
    ModelMismatchError,
    Upsert,
    atomic_write_bytes,
    read_manifest,
    writer_lock,
)
from index.retrieval.retriever import Retriever
from tests.conftest import ROOT, FakeEmbedder, write_article

# ---- helpers ------------------------------------------------------------------------------


def build(corpus: Path, index_dir: Path, embedder, **kwargs):
    """update_index collecting warnings; returns (report, store, warnings)."""
    warnings: list[str] = []
    report, store = update_index(corpus, index_dir, embedder, warn=warnings.append, **kwargs)
    return report, store, warnings


def open_store(index_dir: Path, embedder) -> IndexStore:
    return IndexStore.open(index_dir, embedder.name, embedder.dimension)


def corpus_state(corpus: Path) -> dict[str, str]:
    """article id -> content hash, as the corpus folder has it now."""
    return {a.article_id: a.content_hash for a in scan_corpus(corpus).articles}


def index_state(store: IndexStore) -> dict[str, str]:
    """article id -> content hash, as the index has it."""
    return {info.article_id: info.content_hash for info in store.articles()}


def chunk_rows(store: IndexStore) -> list[tuple]:
    """Every chunk with its id, article, offsets and text, in id order."""
    ids, _ = store.chunk_ids_and_texts()
    by_id = store.chunks_by_id(ids.tolist())
    return [(int(i), by_id[int(i)]) for i in ids]


def top_article(store: IndexStore, embedder, question: str, mode: str = "hybrid") -> str:
    hits = Retriever(store, embedder, mode).search(question, 3)
    assert hits, f"no hits for {question!r}"
    return hits[0].chunk.article_id


def data_files(index_dir: Path) -> set[str]:
    """Everything in the index folder except the lock file."""
    return {p.name for p in index_dir.iterdir() if p.name != LOCK}


def current_files(index_dir: Path) -> dict[str, Path]:
    manifest = read_manifest(index_dir)
    return {key: index_dir / entry["name"] for key, entry in manifest["files"].items()}


def upserts_for(corpus: Path, embedder, only: set[str] | None = None) -> list[Upsert]:
    result = []
    for article in scan_corpus(corpus).articles:
        if only is not None and article.article_id not in only:
            continue
        chunks = chunk_article(article, embedder, IndexOptions())
        result.append(Upsert(article, chunks, embedder.embed([c.text for c in chunks])))
    return result


QUESTIONS = {
    "water-rationing": "how low are the reservoirs in the drought and when is lawn watering allowed",
    "carbon-tax": "carbon tax dividend returned to households per tonne of emissions",
    "school-meals": "free lunches for primary school pupils",
    "housing-zoning": "zoning reform apartment blocks near train stations",
}


# ---- commit and reload --------------------------------------------------------------------


def test_empty_index_dir_opens_as_empty_store(tmp_path, fake_embedder):
    index_dir = tmp_path / "index"
    assert read_manifest(index_dir) is None
    store = open_store(index_dir, fake_embedder)
    assert store.manifest is None and store.generation == 0 and store.chunk_count == 0
    assert store.articles() == [] and store.chunks_by_id([1, 2]) == {}
    assert Retriever(store, fake_embedder).search("anything", 3) == []
    assert not index_dir.exists(), "opening must not create the folder"


def test_commit_then_reopen_gives_same_chunks_ids_and_vectors(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    report, store, warnings = build(small_corpus, index_dir, fake_embedder)
    assert warnings == []
    assert sorted(report.added) == sorted(corpus_state(small_corpus))
    rows, vectors = chunk_rows(store), {i: store.vectors.reconstruct(i) for i, _ in chunk_rows(store)}
    articles, manifest = store.articles(), store.manifest
    store.close()

    reopened = open_store(index_dir, fake_embedder)
    assert reopened.manifest == manifest and reopened.generation == 1
    assert chunk_rows(reopened) == rows
    assert reopened.articles() == articles
    assert index_state(reopened) == corpus_state(small_corpus)
    for chunk_id, vector in vectors.items():
        np.testing.assert_array_equal(reopened.vectors.reconstruct(chunk_id), vector)
    # Stored chunk offsets point into the stored article text.
    for _, chunk in rows:
        assert reopened.article_text(chunk.article_id)[chunk.start : chunk.end] == chunk.text
    assert manifest["chunks"] == reopened.chunk_count == len(rows)
    assert manifest["articles"] == len(articles) == 4
    for article_id, question in QUESTIONS.items():
        assert top_article(reopened, fake_embedder, question) == article_id
        assert top_article(reopened, fake_embedder, question, "dense") == article_id


def test_direct_commit_upserts_and_removals(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    store = IndexStore.empty_like(index_dir, fake_embedder.name, fake_embedder.dimension)
    store.commit(upserts_for(small_corpus, fake_embedder), [])
    first = chunk_rows(store)
    assert {c.article_id for _, c in first} == set(QUESTIONS)

    store.commit([], ["carbon-tax"])
    second = open_store(index_dir, fake_embedder)
    assert set(index_state(second)) == set(QUESTIONS) - {"carbon-tax"}
    # Chunks of untouched articles keep their ids.
    assert chunk_rows(second) == [(i, c) for i, c in first if c.article_id != "carbon-tax"]
    assert second.generation == 2


def test_update_keeps_ids_of_unchanged_articles(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    _, store, _ = build(small_corpus, index_dir, fake_embedder)
    before = chunk_rows(store)
    added_at = {i.article_id: i.added_at for i in store.articles()}
    store.close()
    embedded_before = fake_embedder.embedded_texts

    write_article(
        small_corpus,
        "school-meals.md",
        "Free school meals for every pupil",
        "The department now funds breakfast clubs as well. Porridge is served before lessons start.",
    )
    report, store, _ = build(small_corpus, index_dir, fake_embedder)
    assert report.updated == ["school-meals"] and report.unchanged == 3 and not report.rebuilt
    # Only the changed article was embedded (plus nothing else).
    assert fake_embedder.embedded_texts - embedded_before == report.chunks_embedded + report.sentences_embedded
    after = chunk_rows(store)
    assert [r for r in after if r[1].article_id != "school-meals"] == [r for r in before if r[1].article_id != "school-meals"]
    assert max(i for i, _ in after) > max(i for i, _ in before), "replaced chunks get new ids"
    assert {i.article_id: i.added_at for i in store.articles()} == added_at
    assert top_article(store, fake_embedder, "breakfast porridge before lessons") == "school-meals"

    # Nothing changed: no new generation.
    report, again, _ = build(small_corpus, index_dir, fake_embedder)
    assert not report.changed and again.generation == store.generation == 2


def test_removing_every_article_leaves_a_valid_empty_index(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    for path in small_corpus.iterdir():
        path.unlink()
    report, store, _ = build(small_corpus, index_dir, fake_embedder)
    assert sorted(report.removed) == sorted(QUESTIONS)
    reopened = open_store(index_dir, fake_embedder)
    assert reopened.manifest is not None and reopened.chunk_count == 0 and reopened.articles() == []
    assert Retriever(reopened, fake_embedder).search("zoning", 3) == []


def test_ivf_index_is_written_checksummed_and_reloaded(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    _, store, _ = build(small_corpus, index_dir, fake_embedder, options=IndexOptions(ann_mode="ivf"))
    assert "ann" in store.manifest["files"] and store.ann is not None
    reopened = open_store(index_dir, fake_embedder)
    assert reopened.ann is not None and reopened.ann.ntotal == reopened.chunk_count
    assert top_article(reopened, fake_embedder, QUESTIONS["carbon-tax"], "dense") == "carbon-tax"

    ann_path = current_files(index_dir)["ann"]
    raw = bytearray(ann_path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    ann_path.write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError, match=ann_path.name):
        open_store(index_dir, fake_embedder)


# ---- atomic writes ------------------------------------------------------------------------


def test_atomic_write_bytes_replaces_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "file.json"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.json"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_atomic_write_bytes_failure_keeps_old_content(tmp_path, monkeypatch, failing):
    target = tmp_path / "file.json"
    atomic_write_bytes(target, b"old content")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, failing, boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new content that never lands")
    monkeypatch.undo()
    assert target.read_bytes() == b"old content"


def test_failed_commit_leaves_index_unchanged_and_next_commit_cleans_up(tmp_path, fake_embedder, small_corpus, monkeypatch):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    manifest_before = (index_dir / MANIFEST).read_bytes()
    files_before = data_files(index_dir)

    write_article(small_corpus, "carbon-tax.md", "A carbon tax with a dividend", "The tax was withdrawn after protests.")
    real_write_index = store_module.faiss.write_index

    def write_then_fail(index, path):
        real_write_index(index, path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.faiss, "write_index", write_then_fail)
    with pytest.raises(OSError):
        build(small_corpus, index_dir, fake_embedder)
    monkeypatch.undo()

    assert (index_dir / MANIFEST).read_bytes() == manifest_before
    leftovers = data_files(index_dir) - files_before
    assert leftovers and all(name.endswith(".tmp") for name in leftovers), leftovers
    old = open_store(index_dir, fake_embedder)
    assert old.generation == 1 and index_state(old) != corpus_state(small_corpus)

    _, store, _ = build(small_corpus, index_dir, fake_embedder)
    assert index_state(store) == corpus_state(small_corpus)
    assert not any(name.endswith(".tmp") for name in data_files(index_dir))


# ---- model mismatch -----------------------------------------------------------------------


@pytest.mark.parametrize("other", [FakeEmbedder(name="another-model"), FakeEmbedder(dimension=128)], ids=["other-name", "other-dimension"])
def test_model_mismatch_is_refused_with_rebuild_advice(tmp_path, fake_embedder, small_corpus, other):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    manifest_before = (index_dir / MANIFEST).read_bytes()

    with pytest.raises(ModelMismatchError) as caught:
        IndexStore.open(index_dir, other.name, other.dimension)
    message = str(caught.value)
    assert "policybot index --rebuild" in message and "\n" not in message
    assert fake_embedder.name in message and other.name in message

    with pytest.raises(ModelMismatchError, match="policybot index --rebuild"):
        update_index(small_corpus, index_dir, other)
    assert (index_dir / MANIFEST).read_bytes() == manifest_before, "a refused update must not write"

    report, store = update_index(small_corpus, index_dir, other, rebuild=True)
    assert report.rebuilt and store.manifest["model"] == other.name and store.manifest["dimension"] == other.dimension
    assert index_state(IndexStore.open(index_dir, other.name, other.dimension)) == corpus_state(small_corpus)
    with pytest.raises(ModelMismatchError):
        open_store(index_dir, fake_embedder)


# ---- corruption ---------------------------------------------------------------------------


def _flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x5A
    path.write_bytes(bytes(raw))


def _truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def _truncate_to_zero(path: Path) -> None:
    path.write_bytes(b"")


def _append(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\0" * 16)


def _manifest_without_checksums(index_dir: Path) -> None:
    manifest = json.loads((index_dir / MANIFEST).read_bytes())
    for entry in manifest["files"].values():
        del entry["sha256"]
    (index_dir / MANIFEST).write_text(json.dumps(manifest))


def _manifest_without_model(index_dir: Path) -> None:
    manifest = json.loads((index_dir / MANIFEST).read_bytes())
    del manifest["model"], manifest["dimension"]
    (index_dir / MANIFEST).write_text(json.dumps(manifest))


def _manifest_bad_sizes(index_dir: Path) -> None:
    manifest = json.loads((index_dir / MANIFEST).read_bytes())
    manifest["files"]["vectors"]["bytes"] = "lots"
    (index_dir / MANIFEST).write_text(json.dumps(manifest))


FILE_DAMAGE = {
    "flip-byte": _flip_byte,
    "truncate": _truncate,
    "truncate-to-zero": _truncate_to_zero,
    "append": _append,
    "delete": Path.unlink,
}

MANIFEST_DAMAGE = {
    "binary-garbage": lambda d: (d / MANIFEST).write_bytes(os.urandom(64) + b"\xff\x00"),
    "empty": lambda d: (d / MANIFEST).write_bytes(b""),
    "truncated-json": lambda d: (d / MANIFEST).write_bytes((d / MANIFEST).read_bytes()[:40]),
    "json-list": lambda d: (d / MANIFEST).write_text("[1, 2, 3]"),
    "json-null": lambda d: (d / MANIFEST).write_text("null"),
    "unknown-format": lambda d: (d / MANIFEST).write_text(json.dumps({**json.loads((d / MANIFEST).read_bytes()), "format": 99})),
    "no-files": lambda d: (d / MANIFEST).write_text(
        json.dumps({k: v for k, v in json.loads((d / MANIFEST).read_bytes()).items() if k != "files"})
    ),
    "no-checksums": _manifest_without_checksums,
    "no-model": _manifest_without_model,
    "bad-sizes": _manifest_bad_sizes,
}


def damage_cases():
    for role in ("vectors", "meta"):
        for how in FILE_DAMAGE:
            yield pytest.param(role, how, id=f"{role}-{how}")
    for how in MANIFEST_DAMAGE:
        yield pytest.param("manifest", how, id=f"manifest-{how}")


def damage(index_dir: Path, role: str, how: str) -> str:
    """Damage one index file; return the file name the error message must mention."""
    if role == "manifest":
        MANIFEST_DAMAGE[how](index_dir)
        return MANIFEST
    path = current_files(index_dir)[role]
    FILE_DAMAGE[how](path)
    return path.name


@pytest.fixture
def built_index(tmp_path, fake_embedder, small_corpus):
    """An index of small_corpus after two commits (so a previous generation exists too)."""
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    write_article(small_corpus, "extra.md", "Cycle lanes", "The city paints protected cycle lanes on main roads.")
    build(small_corpus, index_dir, fake_embedder)[1].close()
    return index_dir


@pytest.mark.parametrize("role,how", list(damage_cases()))
def test_damaged_index_file_raises_one_line_corrupt_error_naming_it(built_index, fake_embedder, role, how):
    named = damage(built_index, role, how)
    with pytest.raises(IndexCorruptError) as caught:
        open_store(built_index, fake_embedder)
    message = str(caught.value)
    assert named in message, message
    assert "\n" not in message and "policybot index" in message


@pytest.mark.parametrize("role,how", list(damage_cases()))
def test_update_index_rebuilds_a_damaged_index_from_the_corpus(built_index, fake_embedder, small_corpus, role, how):
    named = damage(built_index, role, how)
    report, store, warnings = build(small_corpus, built_index, fake_embedder)
    assert report.rebuilt
    assert len(warnings) == 1 and named in warnings[0] and "rebuilding" in warnings[0]
    assert report.chunks_embedded == store.chunk_count > 0

    reopened = open_store(built_index, fake_embedder)
    assert index_state(reopened) == corpus_state(small_corpus)
    for article_id, question in QUESTIONS.items():
        assert top_article(reopened, fake_embedder, question) == article_id
    assert top_article(reopened, fake_embedder, "protected cycle lanes") == "extra"
    # The damaged generation is gone; only the fresh one (and nothing stale) remains.
    expected = {MANIFEST, *(e["name"] for e in reopened.manifest["files"].values())}
    assert data_files(built_index) == expected


def test_inconsistent_files_with_valid_checksums_are_detected(built_index, fake_embedder):
    """A manifest pairing files of different generations is caught by the count check."""
    manifest = read_manifest(built_index)
    old_vectors = sorted(built_index.glob("vectors-*.faiss"))[0]
    assert old_vectors.name != manifest["files"]["vectors"]["name"]
    manifest["files"]["vectors"] = {
        "name": old_vectors.name,
        "bytes": old_vectors.stat().st_size,
        "sha256": store_module._sha256(old_vectors),
    }
    (built_index / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="inconsistent"):
        open_store(built_index, fake_embedder)


# ---- generations and cleanup --------------------------------------------------------------


def test_only_current_and_previous_generation_are_kept(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    for generation in range(1, 6):
        write_article(small_corpus, "log.md", "Change log", f"Revision number {generation} of the log was published.")
        _, store, _ = build(small_corpus, index_dir, fake_embedder)
        assert store.generation == generation
        store.close()
        expected = {MANIFEST, f"meta-{generation:06d}.sqlite", f"vectors-{generation:06d}.faiss"}
        if generation > 1:
            expected |= {f"meta-{generation - 1:06d}.sqlite", f"vectors-{generation - 1:06d}.faiss"}
        assert data_files(index_dir) == expected
        assert read_manifest(index_dir)["previous_files"] == (
            [f"vectors-{generation - 1:06d}.faiss", f"meta-{generation - 1:06d}.sqlite"] if generation > 1 else []
        )


def test_rebuild_drops_all_old_generations(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    (small_corpus / "carbon-tax.md").unlink()
    build(small_corpus, index_dir, fake_embedder)[1].close()
    report, store, _ = build(small_corpus, index_dir, fake_embedder, rebuild=True)
    assert report.rebuilt and store.generation == 3
    assert data_files(index_dir) == {MANIFEST, "meta-000003.sqlite", "vectors-000003.faiss"}
    assert index_state(open_store(index_dir, fake_embedder)) == corpus_state(small_corpus)


def test_stale_temporaries_from_a_crash_are_removed_on_next_commit(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    stale = [
        ".meta-000002.sqlite.tmp",
        ".vectors-000002.faiss.tmp",
        ".ann-000002.faiss.tmp",
        ".manifest.json.tmp",
        ".meta-000007.sqlite.tmp",
        "meta-000002.sqlite",
        "vectors-000002.faiss",  # renamed into place, manifest never switched
        "ann-000001.faiss",
    ]
    for name in stale:
        (index_dir / name).write_bytes(b"half-written junk")
    (index_dir / "NOTES.txt").write_text("not ours: must survive")

    # The index still loads with the junk beside it.
    assert index_state(open_store(index_dir, fake_embedder)) == corpus_state(small_corpus)

    write_article(small_corpus, "extra.md", "Cycle lanes", "The city paints protected cycle lanes on main roads.")
    _, store, _ = build(small_corpus, index_dir, fake_embedder)
    assert store.generation == 2
    assert data_files(index_dir) == {
        MANIFEST,
        "NOTES.txt",
        "meta-000001.sqlite",
        "vectors-000001.faiss",
        "meta-000002.sqlite",
        "vectors-000002.faiss",
    }
    assert index_state(open_store(index_dir, fake_embedder)) == corpus_state(small_corpus)


# ---- the writer lock ----------------------------------------------------------------------


def test_writer_lock_is_exclusive_and_reentrant_after_release(tmp_path):
    index_dir = tmp_path / "index"
    with writer_lock(index_dir):
        with pytest.raises(IndexBusyError) as caught:
            with writer_lock(index_dir):
                pass
        assert str(index_dir) in str(caught.value) and "\n" not in str(caught.value)
    with writer_lock(index_dir):
        pass


def test_update_index_refuses_while_another_writer_holds_the_lock(tmp_path, fake_embedder, small_corpus, monkeypatch):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    manifest_before = (index_dir / MANIFEST).read_bytes()
    real_lock = store_module.writer_lock
    waits = []

    def short_wait_lock(directory, wait_seconds=0.0):
        waits.append(wait_seconds)
        return real_lock(directory, wait_seconds=min(wait_seconds, 0.3))

    monkeypatch.setattr("index.indexing.indexer.writer_lock", short_wait_lock)
    write_article(small_corpus, "extra.md", "Cycle lanes", "The city paints protected cycle lanes on main roads.")
    with writer_lock(index_dir):
        with pytest.raises(IndexBusyError, match="another policybot process"):
            update_index(small_corpus, index_dir, fake_embedder)
    assert waits and waits[0] > 0, "the indexer should wait a little for the lock"
    assert (index_dir / MANIFEST).read_bytes() == manifest_before
    report, _ = update_index(small_corpus, index_dir, fake_embedder)
    assert report.added == ["extra"]


def test_writer_lock_waits_for_a_writer_that_finishes(tmp_path):
    import threading

    index_dir = tmp_path / "index"
    holding, release = threading.Event(), threading.Event()

    def hold():
        with writer_lock(index_dir):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with writer_lock(index_dir, wait_seconds=5.0):
        assert time.monotonic() - started >= 0.2
    thread.join()


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from index.indexing.store import writer_lock
with writer_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_lock_is_held_across_processes_and_freed_when_the_holder_is_killed(tmp_path):
    index_dir = tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(index_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusyError):
            with writer_lock(index_dir):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with writer_lock(index_dir, wait_seconds=2.0):  # a crashed writer never blocks the next one
        pass


# ---- readers during and after commits -----------------------------------------------------


def test_reader_of_previous_generation_keeps_working_after_new_commits(tmp_path, fake_embedder, small_corpus):
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    reader = open_store(index_dir, fake_embedder)
    retriever = Retriever(reader, fake_embedder)
    old_state, old_rows = index_state(reader), chunk_rows(reader)
    assert top_article(reader, fake_embedder, QUESTIONS["carbon-tax"]) == "carbon-tax"

    (small_corpus / "carbon-tax.md").unlink()
    write_article(small_corpus, "school-meals.md", "School meals", "Lunches are no longer free; parents pay a fee.")
    build(small_corpus, index_dir, fake_embedder)[1].close()
    write_article(small_corpus, "extra.md", "Cycle lanes", "The city paints protected cycle lanes on main roads.")
    build(small_corpus, index_dir, fake_embedder)[1].close()
    # The reader's generation-1 files have now been deleted from the folder.
    assert not (index_dir / "meta-000001.sqlite").exists()

    assert index_state(reader) == old_state and chunk_rows(reader) == old_rows
    hits = retriever.search(QUESTIONS["carbon-tax"], 3)
    assert hits[0].chunk.article_id == "carbon-tax"
    assert all(h.chunk.text for h in hits)

    fresh = open_store(index_dir, fake_embedder)
    assert fresh.generation == 3 and index_state(fresh) == corpus_state(small_corpus)
    assert "carbon-tax" not in index_state(fresh)


def test_open_retries_when_a_writer_switches_generations_mid_load(tmp_path, fake_embedder, small_corpus, monkeypatch):
    """A reader that read manifest N while a writer commits N+1 and N+2 reloads instead of failing."""
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, fake_embedder)[1].close()
    real_verify = store_module._verify
    calls = []

    def racing_verify(directory, entry):
        if not calls:
            calls.append(entry["name"])
            for n in range(2):
                write_article(small_corpus, "extra.md", "Cycle lanes", f"Protected cycle lanes, revision {n}.")
                build(small_corpus, index_dir, fake_embedder)[1].close()
        return real_verify(directory, entry)

    monkeypatch.setattr(store_module, "_verify", racing_verify)
    store = open_store(index_dir, fake_embedder)
    assert calls == ["vectors-000001.faiss"]
    assert store.generation == 3 and index_state(store) == corpus_state(small_corpus)
