"""Crash safety with a real `policybot index` process killed by SIGKILL at many points.

Every case starts from a copy of an index of corpus A, changes the corpus to B (one article
edited, one added, one deleted) and runs the indexer in a subprocess that dies by SIGKILL:
either at a named `crashpoint()` in the store or indexer (POLICYBOT_CRASH_AT), or after a
timed delay. Afterwards the index must load and hold exactly A or exactly B — same articles,
hashes, chunk ids, chunk texts and vectors — never a mix; and a normal `policybot index`
must then bring it to exactly B.

The subprocesses (each loads torch and the model, several seconds) run two at a time once
per module; the per-case tests then check the results in this process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import bot.cli
from index.indexing.corpus import scan_corpus
from index.indexing.indexer import update_index
from index.indexing.store import LOCK, MANIFEST, IndexStore, read_manifest
from index.retrieval.retriever import Retriever
from tests.conftest import write_article, write_small_corpus

# Every subprocess imports torch and sentence-transformers (about 5 s of CPU each); on a busy
# machine the whole lab can take much longer than the default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[3]
PARALLEL = 2
# Settings that a developer's .env could set; empty in the environment means "the default".
SETTING_NAMES = (
    "CORPUS_DIR",
    "INDEX_DIR",
    "EMBEDDING_MODEL",
    "RETRIEVAL",
    "ANN_INDEX",
    "ANN_THRESHOLD",
    "CHUNK_TOKENS",
    "CHUNK_OVERLAP_SENTENCES",
    "MAX_ARTICLE_MB",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "LLM_API_KEY",
)

# In the order a commit passes them; embedded-group comes before the commit starts.
BEFORE_SWITCH = [
    "embedded-group",
    "meta-copied",
    "meta-written",
    "meta-synced",
    "vectors-written",
    "vectors-synced",
    "meta-renamed",
    "vectors-renamed",
    "files-synced",
    "checksummed",
]
AFTER_SWITCH = ["manifest-replaced", "cleaned"]
# Fractions of a measured uninterrupted run at which the timed cases are killed.
TIMED_FRACTIONS = [0.25, 0.45, 0.6, 0.72, 0.82, 0.9, 0.97]


@dataclass(frozen=True)
class Case:
    id: str
    crash_at: str | None = None  # POLICYBOT_CRASH_AT=name[:n]
    fraction: float | None = None  # SIGKILL after this fraction of the measured run time
    first_build: bool = False  # no index before the run
    ann: bool = False  # ANN_INDEX=ivf, so the commit also writes an IVF file
    expect: str = "either"  # "old", "new" or "either"


CASES = [
    *(Case(f"crash-{p}", crash_at=f"{p}:1" if p == "embedded-group" else p, expect="old") for p in BEFORE_SWITCH),
    *(Case(f"crash-{p}", crash_at=p, expect="new") for p in AFTER_SWITCH),
    Case("ivf-crash-files-synced", crash_at="files-synced", ann=True, expect="old"),
    Case("ivf-crash-manifest-replaced", crash_at="manifest-replaced", ann=True, expect="new"),
    *(Case(f"first-build-crash-{p}", crash_at=p, first_build=True, expect="old") for p in ("meta-written", "checksummed")),
    Case("first-build-crash-manifest-replaced", crash_at="manifest-replaced", first_build=True, expect="new"),
    Case("first-build-timed-0.86", fraction=0.86, first_build=True),
    *(Case(f"timed-{f:.2f}", fraction=f) for f in TIMED_FRACTIONS),
]
CASE_BY_ID = {case.id: case for case in CASES}


# ---- corpora ------------------------------------------------------------------------------

FLOOD_SENTENCES = [
    "The coastal authority will raise the sea wall by one metre along the old harbour.",
    "Storm surges flooded the lower town twice in the last five winters.",
    "Insurers have warned that premiums for riverside homes may double.",
    "Salt marshes are being restored as a natural buffer against high tides.",
    "Pumping stations get backup generators so they keep working in a blackout.",
    "Residents in the flood zone receive sandbags and an evacuation plan.",
    "The plan is financed by a bond repaid over thirty years.",
    "Engineers model a sea level rise of half a metre by the end of the century.",
]


def flood_article_body(paragraphs: int = 14) -> str:
    """A longer article so the interrupted run has real embedding work to do."""
    out = []
    for n in range(paragraphs):
        sentences = [FLOOD_SENTENCES[(n + k) % len(FLOOD_SENTENCES)] for k in range(5)]
        out.append(f"Section {n + 1} of the flood defence plan. " + " ".join(sentences))
    return "\n\n".join(out)


def write_corpus_a(corpus: Path) -> Path:
    write_small_corpus(corpus)
    write_article(
        corpus,
        "library-hours.md",
        "Longer library opening hours",
        "Public libraries will open on Sundays from March. Volunteers staff the reading rooms.",
    )
    return corpus


def change_to_corpus_b(corpus: Path) -> Path:
    """Edit one article, add one, delete one."""
    write_article(
        corpus,
        "school-meals.md",
        "Free school meals for every pupil",
        "The plan was scaled back: only pupils from low-income families get a free lunch. Breakfast clubs open in forty schools instead.",
    )
    write_article(corpus, "flood-defences.md", "Coastal flood defences", flood_article_body())
    (corpus / "carbon-tax.md").unlink()
    return corpus


# ---- running the indexer ------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    killed_by_timer: bool = False


def indexer_env(crash_at: str | None = None, ann: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POLICYBOT_CRASH_AT"}
    env.update({name: "" for name in SETTING_NAMES})
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if ann:
        env["ANN_INDEX"] = "ivf"
    if crash_at:
        env["POLICYBOT_CRASH_AT"] = crash_at
    return env


def run_indexer(
    corpus: Path, index_dir: Path, crash_at: str | None = None, kill_after: float | None = None, ann: bool = False, timeout: float = 240
) -> Run:
    """`policybot index --quiet` in a subprocess, optionally SIGKILLed after `kill_after` seconds."""
    command = [sys.executable, "-m", "bot.cli", "--corpus", str(corpus), "--index-dir", str(index_dir), "index", "--quiet"]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, env=indexer_env(crash_at, ann), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    try:
        if kill_after is not None:
            try:
                out, err = proc.communicate(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                killed = True
                out, err = proc.communicate(timeout=timeout)
        else:
            out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Run(proc.returncode, time.monotonic() - started, out, err, killed)


# ---- what an index holds ------------------------------------------------------------------


@dataclass
class Snapshot:
    """Everything observable in one loaded index."""

    state: dict[str, str]  # article id -> content hash
    chunks: list[tuple]  # (chunk id, article id, paragraph, start, end, text) in id order
    vectors: np.ndarray = field(repr=False)

    def same_as(self, other: Snapshot) -> bool:
        return (
            self.state == other.state
            and self.chunks == other.chunks
            and self.vectors.shape == other.vectors.shape
            and np.allclose(self.vectors, other.vectors, atol=1e-5)
        )


def snapshot(store: IndexStore) -> Snapshot:
    ids, _ = store.chunk_ids_and_texts()
    by_id = store.chunks_by_id(ids.tolist())
    chunks = [
        (int(i), by_id[int(i)].article_id, by_id[int(i)].paragraph, by_id[int(i)].start, by_id[int(i)].end, by_id[int(i)].text) for i in ids
    ]
    vectors = np.stack([store.vectors.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, store.dimension))
    return Snapshot({i.article_id: i.content_hash for i in store.articles()}, chunks, vectors)


def corpus_state(corpus: Path) -> dict[str, str]:
    return {a.article_id: a.content_hash for a in scan_corpus(corpus).articles}


# ---- the lab: every selected case, run once per module ------------------------------------


class CrashLab:
    def __init__(self, root: Path, case_ids: list[str]):
        self.root = root
        self.case_ids = case_ids
        self.runs: dict[str, Run] = {}
        self.dirs: dict[str, tuple[Path, Path]] = {}
        self.reference_seconds = 0.0
        self.found: dict[str, str] = {}

    def run_all(self) -> None:
        started = time.monotonic()
        corpus_a = write_corpus_a(self.root / "corpus-a")
        self.index_a = self.root / "index-a"
        built = run_indexer(corpus_a, self.index_a)
        assert built.returncode == 0, built.stderr
        self.corpus_b = change_to_corpus_b(shutil.copytree(corpus_a, self.root / "corpus-b"))
        self.corpus_a = corpus_a
        self.index_b = self.root / "index-b"
        shutil.copytree(self.index_a, self.index_b)

        wanted = [CASE_BY_ID[i] for i in self.case_ids]
        lock = threading.Lock()
        with ThreadPoolExecutor(PARALLEL) as pool:
            # The uninterrupted update of A to B: the expected result, and the clock for timed kills.
            reference = pool.submit(run_indexer, self.corpus_b, self.index_b)
            futures = {c.id: pool.submit(self._run_case, c, None, lock) for c in wanted if c.fraction is None}
            ref = reference.result()
            assert ref.returncode == 0, ref.stderr
            self.reference_seconds = ref.seconds
            futures.update({c.id: pool.submit(self._run_case, c, c.fraction * ref.seconds, lock) for c in wanted if c.fraction is not None})
            for case_id, future in futures.items():
                self.runs[case_id] = future.result()
        self.seconds = time.monotonic() - started

    def snapshot_a(self, embedder) -> Snapshot:
        if not hasattr(self, "_snapshot_a"):
            self._snapshot_a = snapshot(IndexStore.open(self.index_a, embedder.name, embedder.dimension))
        return self._snapshot_a

    def snapshot_b(self, embedder) -> Snapshot:
        if not hasattr(self, "_snapshot_b"):
            self._snapshot_b = snapshot(IndexStore.open(self.index_b, embedder.name, embedder.dimension))
        return self._snapshot_b

    def snapshot_fresh_b(self, embedder) -> Snapshot:
        """Corpus B built from nothing (chunk ids differ from an update of A to B)."""
        if not hasattr(self, "_snapshot_fresh_b"):
            _, store = update_index(self.corpus_b, self.root / "fresh-b", embedder)
            self._snapshot_fresh_b = snapshot(store)
            store.close()
        return self._snapshot_fresh_b

    def _run_case(self, case: Case, kill_after: float | None, lock: threading.Lock) -> Run:
        work = self.root / case.id
        corpus = shutil.copytree(self.corpus_b, work / "corpus")
        index_dir = work / "index"
        if not case.first_build:
            shutil.copytree(self.index_a, index_dir)
        with lock:
            self.dirs[case.id] = (corpus, index_dir)
        return run_indexer(corpus, index_dir, crash_at=case.crash_at, kill_after=kill_after, ann=case.ann)


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory) -> CrashLab:
    selected = [
        item.callspec.params["case_id"]
        for item in request.session.items
        if getattr(item, "callspec", None) is not None and "case_id" in item.callspec.params and item.module is request.module
    ]
    if not selected:
        selected = [c.id for c in CASES]
    crash_lab = CrashLab(tmp_path_factory.mktemp("crash-lab"), sorted(set(selected)))
    crash_lab.run_all()
    return crash_lab


@pytest.fixture
def default_settings(monkeypatch):
    """Neutralise any developer .env / environment settings for the in-process CLI run."""
    for name in SETTING_NAMES:
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("POLICYBOT_CRASH_AT", raising=False)
    return monkeypatch


def run_cli_index(corpus: Path, index_dir: Path, embedder, monkeypatch) -> tuple[int, str]:
    """A normal `policybot index` run in this process, sharing the session's loaded model."""
    import io

    monkeypatch.setattr(bot.cli, "load_embedder", lambda settings, bulk=False: embedder)
    out, err = io.StringIO(), io.StringIO()
    code = bot.cli.main(["--corpus", str(corpus), "--index-dir", str(index_dir), "index"], out=out, err=err)
    return code, out.getvalue() + err.getvalue()


QUESTION_KEPT = "how low are the reservoirs and when may people water their lawns"  # in A and B
QUESTION_DELETED = "carbon tax dividend per tonne of emissions"  # only in A
QUESTION_ADDED = "raising the sea wall against storm surges"  # only in B


# ---- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_killed_indexer_leaves_old_or_new_index_and_recovers(case_id, lab, embedder, default_settings):
    case = CASE_BY_ID[case_id]
    run = lab.runs[case_id]
    corpus, index_dir = lab.dirs[case_id]
    where = f"{case_id}: rc={run.returncode} after {run.seconds:.1f}s\n{run.stderr[-2000:]}"

    if case.fraction is None:
        assert run.returncode == -signal.SIGKILL, where
    else:
        assert run.returncode in (0, -signal.SIGKILL), where
        assert run.killed_by_timer == (run.returncode == -signal.SIGKILL), where
    assert "Traceback" not in run.stderr, where

    old_snapshot = None if case.first_build else lab.snapshot_a(embedder)
    new_snapshot = lab.snapshot_fresh_b(embedder) if case.first_build else lab.snapshot_b(embedder)
    old_state = {} if case.first_build else corpus_state(lab.corpus_a)
    new_state = corpus_state(corpus)
    assert old_snapshot is None or old_snapshot.state == old_state
    assert new_snapshot.state == new_state and old_state != new_state

    # 1. Straight after the crash: the index loads and is exactly the old or the new one.
    manifest = read_manifest(index_dir)
    if case.first_build and manifest is None:
        found = "old"  # nothing was ever published; opening gives an empty index, not an error
        store = IndexStore.open(index_dir, embedder.name, embedder.dimension)
        assert store.chunk_count == 0 and store.articles() == []
    else:
        store = IndexStore.open(index_dir, embedder.name, embedder.dimension)
        crashed = snapshot(store)
        if old_snapshot is not None and crashed.same_as(old_snapshot):
            found = "old"
        elif crashed.same_as(new_snapshot):
            found = "new"
        else:
            pytest.fail(f"{where}\nindex after the crash is neither A nor B: {sorted(crashed.state)}")
        hits = Retriever(store, embedder).search(QUESTION_KEPT, 5)
        assert hits and hits[0].chunk.article_id == "water-rationing", where
        assert {h.chunk.article_id for h in hits} <= set(crashed.state)
        probe = QUESTION_DELETED if found == "old" else QUESTION_ADDED
        assert Retriever(store, embedder, "dense").search(probe, 1)[0].chunk.article_id == (
            "carbon-tax" if found == "old" else "flood-defences"
        )
        if case.ann and found == "new":
            assert store.ann is not None and store.ann.ntotal == store.chunk_count
    store.close()
    lab.found[case_id] = found
    if case.expect != "either":
        assert found == case.expect, f"{where}\nexpected the {case.expect} index, found the {found} one"

    # 2. A normal run afterwards brings the index to exactly the new corpus and clears the debris.
    code, output = run_cli_index(corpus, index_dir, embedder, default_settings)
    assert code == 0, output
    assert "error" not in output.lower(), output
    recovered = IndexStore.open(index_dir, embedder.name, embedder.dimension)
    assert snapshot(recovered).state == new_state
    assert Retriever(recovered, embedder, "dense").search(QUESTION_ADDED, 1)[0].chunk.article_id == "flood-defences"
    manifest = read_manifest(index_dir)
    allowed = {MANIFEST, LOCK, *(e["name"] for e in manifest["files"].values()), *manifest["previous_files"]}
    leftovers = {p.name for p in index_dir.iterdir()} - allowed
    assert not leftovers, f"{where}\nfiles left behind: {leftovers}"
    recovered.close()


def test_timed_kills_hit_a_running_indexer(lab):
    """The timed cases must mostly have killed a live process, or they proved nothing."""
    timed = [c.id for c in CASES if c.fraction is not None and c.id in lab.runs]
    if len(timed) < len([c for c in CASES if c.fraction is not None]):
        pytest.skip("only some timed cases were selected")
    killed = [case_id for case_id in timed if lab.runs[case_id].returncode == -signal.SIGKILL]
    outcomes = {c: (lab.runs[c].returncode, round(lab.runs[c].seconds, 1), lab.found.get(c)) for c in timed}
    print(
        f"\ncrash lab: {len(lab.runs)} runs in {lab.seconds:.0f}s; reference run {lab.reference_seconds:.1f}s; "
        f"timed kills landed in {len(killed)}/{len(timed)} runs: {outcomes}"
    )
    # Timing on a loaded machine varies; the late fractions may miss a run that finished early.
    assert len(killed) >= len(timed) // 2, outcomes


def test_enough_distinct_kill_points():
    points = {c.crash_at or f"timed-{c.fraction}" for c in CASES}
    assert len(points) >= 20


_CRASHPOINT_COUNTER = textwrap.dedent("""
    from index.indexing.store import crashpoint
    for n in range(1, 6):
        crashpoint("other")
        crashpoint("tick")
        print(n, flush=True)
""")


@pytest.mark.parametrize("wanted,printed", [("tick", ""), ("tick:1", ""), ("tick:3", "1\n2\n"), ("tock:1", "1\n2\n3\n4\n5\n")])
def test_crashpoint_kills_at_the_nth_hit(wanted, printed):
    env = {**os.environ, "POLICYBOT_CRASH_AT": wanted}
    result = subprocess.run([sys.executable, "-c", _CRASHPOINT_COUNTER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout == printed
    assert result.returncode == (0 if wanted.startswith("tock") else -signal.SIGKILL), result.stderr
