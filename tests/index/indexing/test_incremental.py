"""Incremental indexing: only what changed is embedded; deletions disappear; bad files keep their old version."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from index.indexing.indexer import IndexOptions, update_index
from index.indexing.store import MANIFEST, ModelMismatchError, read_manifest
from index.retrieval.retriever import Retriever
from tests.conftest import SMALL_CORPUS, FakeEmbedder, write_article

# Small chunks so every article has several and "only this article" is measurable.
OPTIONS = IndexOptions(target_tokens=32, overlap_sentences=1)


def index(corpus: Path, index_dir: Path, embedder, **kwargs):
    report, store = update_index(corpus, index_dir, embedder, OPTIONS, **kwargs)
    return report, store


def chunk_ids_by_article(store) -> dict[str, list[int]]:
    ids, _ = store.chunk_ids_and_texts()
    by_article: dict[str, list[int]] = defaultdict(list)
    for chunk_id, chunk in sorted(store.chunks_by_id(ids.tolist()).items()):
        by_article[chunk.article_id].append(chunk_id)
    return dict(by_article)


def index_files(index_dir: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in index_dir.iterdir() if p.name != ".lock"}


def article_ids_found(store, embedder, question: str) -> set[str]:
    found = set()
    for mode in ("dense", "bm25", "hybrid"):
        hits = Retriever(store, embedder, mode).search(question, k=100)
        found |= {h.chunk.article_id for h in hits}
    return found


@pytest.fixture
def built(small_corpus, tmp_path, fake_embedder):
    """A small corpus indexed once with the fake embedder; yields (corpus, index_dir, store)."""
    index_dir = tmp_path / "index"
    report, store = index(small_corpus, index_dir, fake_embedder)
    assert sorted(report.added) == sorted(Path(name).stem for name in SMALL_CORPUS)
    yield small_corpus, index_dir, store
    store.close()


def test_first_build_embeds_every_chunk(built, fake_embedder):
    _, index_dir, store = built
    assert store.generation == 1
    # Every chunk, and every sentence for answers, embedded once.
    sentences = store.sentence_count
    assert fake_embedder.embedded_texts == store.chunk_count + sentences and sentences > store.chunk_count
    assert store.chunk_count >= 2 * len(SMALL_CORPUS)
    assert read_manifest(index_dir)["articles"] == len(SMALL_CORPUS)


def test_unchanged_corpus_embeds_nothing_and_writes_no_generation(built, fake_embedder):
    corpus, index_dir, store = built
    before_files = index_files(index_dir)
    before_manifest = (index_dir / MANIFEST).read_bytes()
    embedded_before = fake_embedder.embedded_texts
    report, again = index(corpus, index_dir, fake_embedder)
    try:
        assert report.unchanged == len(SMALL_CORPUS)
        assert (report.added, report.updated, report.removed) == ([], [], [])
        assert report.chunks_embedded == 0
        assert not report.changed
        assert fake_embedder.embedded_texts == embedded_before
        assert again.generation == 1
        assert (index_dir / MANIFEST).read_bytes() == before_manifest
        assert index_files(index_dir) == before_files
    finally:
        again.close()


def test_editing_one_article_reembeds_only_it_and_keeps_other_ids(built, fake_embedder):
    corpus, index_dir, store = built
    ids_before = chunk_ids_by_article(store)
    write_article(
        corpus,
        "carbon-tax.md",
        "A carbon tax with a dividend",
        "The ministry dropped the carbon tax. Instead it will auction emission permits to utilities.\n\n"
        "Permit revenue funds insulation grants for older houses.",
    )
    fake = FakeEmbedder()
    report, store2 = index(corpus, index_dir, fake)
    try:
        assert report.updated == ["carbon-tax"]
        assert (report.added, report.removed, report.unchanged) == ([], [], len(SMALL_CORPUS) - 1)
        ids_after = chunk_ids_by_article(store2)
        assert report.chunks_embedded == len(ids_after["carbon-tax"]) == fake.embedded_texts - report.sentences_embedded
        for article_id, ids in ids_before.items():
            if article_id != "carbon-tax":
                assert ids_after[article_id] == ids, f"chunk ids of {article_id} changed"
        assert not set(ids_after["carbon-tax"]) & set(ids_before["carbon-tax"])
        assert store2.generation == 2
        hits = Retriever(store2, fake, "bm25").search("auction emission permits", k=3)
        assert hits[0].chunk.article_id == "carbon-tax"
        assert "dividend" not in store2.article_text("carbon-tax")
    finally:
        store2.close()


def test_changing_only_the_title_updates_the_article(built, fake_embedder):
    corpus, index_dir, _ = built
    title, body = SMALL_CORPUS["school-meals.md"]
    write_article(corpus, "school-meals.md", "A new title", body, url="https://example.org/school-meals", author="Test Author")
    report, store = index(corpus, index_dir, fake_embedder)
    try:
        assert report.updated == ["school-meals"]
        assert {i.article_id: i.title for i in store.articles()}["school-meals"] == "A new title"
    finally:
        store.close()


def test_deleted_file_is_removed_and_never_returned(built, fake_embedder):
    corpus, index_dir, store = built
    question = "reservoirs rationing irrigation lawn watering drought"
    assert "water-rationing" in article_ids_found(store, fake_embedder, question)
    count_before = store.chunk_count
    removed_chunks = len(chunk_ids_by_article(store)["water-rationing"])
    (corpus / "water-rationing.md").unlink()
    report, store2 = index(corpus, index_dir, fake_embedder)
    try:
        assert report.removed == ["water-rationing"]
        assert report.chunks_embedded == 0
        assert store2.chunk_count == count_before - removed_chunks
        assert "water-rationing" not in {i.article_id for i in store2.articles()}
        assert "water-rationing" not in chunk_ids_by_article(store2)
        assert "water-rationing" not in article_ids_found(store2, fake_embedder, question)
        assert store2.article_text("water-rationing") is None
    finally:
        store2.close()


@pytest.mark.parametrize(
    "broken",
    [
        "Reservoirs stand at a third of capacity. Caf\xe9".encode("latin-1"),
        b"---\ntitle: [unclosed\n---\nBody.\n",
        b"\x00\x01binary",
        b"",
    ],
    ids=["latin-1", "bad-front-matter", "binary", "emptied"],
)
def test_file_that_becomes_unreadable_keeps_its_old_version(built, fake_embedder, broken):
    corpus, index_dir, store = built
    old_text = store.article_text("water-rationing")
    old_ids = chunk_ids_by_article(store)["water-rationing"]
    (corpus / "water-rationing.md").write_bytes(broken)
    report, store2 = index(corpus, index_dir, fake_embedder)
    try:
        assert [Path(s.path).name for s in report.skipped] == ["water-rationing.md"]
        assert report.removed == [] and report.updated == []
        assert store2.article_text("water-rationing") == old_text
        assert chunk_ids_by_article(store2)["water-rationing"] == old_ids
        assert "water-rationing" in article_ids_found(store2, fake_embedder, "reservoirs rationing irrigation")
    finally:
        store2.close()
    # Once the file is fixed it is indexed again.
    write_article(corpus, "water-rationing.md", "Drought and water rationing", "Rationing ended after a wet spring.")
    report, store3 = index(corpus, index_dir, fake_embedder)
    try:
        assert report.updated == ["water-rationing"] and report.skipped == []
        assert store3.article_text("water-rationing") == "Rationing ended after a wet spring."
    finally:
        store3.close()


def test_new_file_is_added_alone(built):
    corpus, index_dir, store = built
    (corpus / "sub").mkdir()
    write_article(corpus, "sub/transit.md", "Free buses", "Buses become free for pensioners from May.")
    fake = FakeEmbedder()
    report, store2 = index(corpus, index_dir, fake)
    try:
        assert report.added == ["sub/transit"]
        assert report.chunks_embedded == fake.embedded_texts - report.sentences_embedded == len(chunk_ids_by_article(store2)["sub/transit"])
    finally:
        store2.close()


def test_rebuild_reembeds_everything(built):
    corpus, index_dir, store = built
    total = store.chunk_count
    fake = FakeEmbedder()
    report, store2 = index(corpus, index_dir, fake, rebuild=True)
    try:
        assert report.rebuilt
        assert sorted(report.added) == sorted(Path(n).stem for n in SMALL_CORPUS)
        assert report.chunks_embedded == fake.embedded_texts - report.sentences_embedded == total
        assert store2.chunk_count == total
        assert store2.generation == 2
    finally:
        store2.close()


def test_model_mismatch_asks_for_rebuild(built):
    corpus, index_dir, _ = built
    other = FakeEmbedder(name="another-model")
    with pytest.raises(ModelMismatchError, match=r"policybot index --rebuild") as caught:
        index(corpus, index_dir, other)
    assert "another-model" in str(caught.value) and "fake-hashing-bow" in str(caught.value)
    report, store = index(corpus, index_dir, other, rebuild=True)
    try:
        assert report.rebuilt and store.model == "another-model"
        assert json.loads((index_dir / MANIFEST).read_text())["model"] == "another-model"
    finally:
        store.close()


def test_corrupted_index_is_rebuilt_with_a_warning(built, fake_embedder):
    corpus, index_dir, store = built
    vectors = index_dir / read_manifest(index_dir)["files"]["vectors"]["name"]
    vectors.write_bytes(vectors.read_bytes()[:100])
    warnings: list[str] = []
    report, store2 = update_index(corpus, index_dir, fake_embedder, OPTIONS, warn=warnings.append)
    try:
        assert report.rebuilt
        assert len(warnings) == 1 and "truncated" in warnings[0]
        assert store2.chunk_count == store.chunk_count
    finally:
        store2.close()


@pytest.mark.slow
def test_real_model_end_to_end(small_corpus, tmp_path, embedder):
    index_dir = tmp_path / "index"
    report, store = update_index(small_corpus, index_dir, embedder)
    try:
        assert len(report.added) == len(SMALL_CORPUS) and report.chunks_embedded == store.chunk_count
        retriever = Retriever(store, embedder, "dense")
        assert retriever.search("How often may I water my garden during the drought?", 1)[0].chunk.article_id == "water-rationing"
        assert retriever.search("Who pays for lunch at primary school?", 1)[0].chunk.article_id == "school-meals"
    finally:
        store.close()
    write_article(
        small_corpus,
        "school-meals.md",
        "Free school meals for every pupil",
        "The lunch programme was cancelled, and pupils bring packed lunches from home again.",
    )
    report, store = update_index(small_corpus, index_dir, embedder)
    try:
        assert report.updated == ["school-meals"] and report.unchanged == len(SMALL_CORPUS) - 1
        hit = Retriever(store, embedder, "dense").search("Was the lunch programme cancelled?", 1)[0]
        assert hit.chunk.article_id == "school-meals" and "cancelled" in hit.chunk.text
    finally:
        store.close()
    report, store = update_index(small_corpus, index_dir, embedder)
    try:
        assert report.chunks_embedded == 0 and not report.changed and store.generation == 2
    finally:
        store.close()


def test_an_index_of_an_older_chunk_layout_is_rechunked(built):
    """Indexes written before one-line paragraphs and stored sentence vectors are cut again on the next run."""
    corpus, index_dir, store = built
    store.close()
    manifest = json.loads((index_dir / MANIFEST).read_text())
    manifest["chunking"] = manifest["chunking"].split(" layout=")[0]
    (index_dir / MANIFEST).write_text(json.dumps(manifest))
    warnings: list[str] = []
    report, store2 = index(corpus, index_dir, FakeEmbedder(), warn=warnings.append)
    try:
        assert report.rebuilt and report.sentences_embedded > 0
        assert any("chunk settings changed" in w for w in warnings)
        assert store2.manifest is not None and store2.manifest["chunking"] == OPTIONS.chunking()
    finally:
        store2.close()
