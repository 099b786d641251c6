"""Crash safety with a real `policybot index` process killed by SIGKILL at many points.

Every case starts from a copy of an index of corpus A, changes the corpus to B (one article
edited, one added, one deleted) and runs the indexer in a subprocess that dies by SIGKILL:
either at a named `crashpoint()` in the store or indexer (POLICYBOT_CRASH_AT), or by this
test, as soon as the child reports reaching a crashpoint (POLICYBOT_CRASH_SIGNAL): that kill
lands anywhere before the next crashpoint, where the child waits, so it always hits a running
indexer however slow the machine is. Afterwards the index must load and hold exactly A or
exactly B — same articles, hashes, chunk ids, chunk texts and vectors — never a mix; and a
normal `policybot index` must then bring it to exactly B.

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
from index.indexing.store import CRASH_SIGNAL, LOCK, MANIFEST, IndexStore, read_manifest
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
# The test kills the child once it reports one of these; the kill lands before the next point.
SIGNALLED = ["embedded-group", "meta-copied", "meta-written", "meta-synced", "vectors-written", "vectors-renamed", "checksummed"]


@dataclass(frozen=True)
class Case:
    id: str
    crash_at: str | None = None  # POLICYBOT_CRASH_AT=name[:n]
    kill_after: str | None = None  # SIGKILL from the test once the child reports this crashpoint
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
    Case("first-build-killed-after-meta-written", kill_after="meta-written", first_build=True, expect="old"),
    # Before the manifest's rename the old index stands; the rename falls between checksummed and manifest-replaced.
    *(Case(f"killed-after-{p}", kill_after=p, expect="either" if p == "checksummed" else "old") for p in SIGNALLED),
    Case("killed-after-manifest-replaced", kill_after="manifest-replaced", expect="new"),
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
    killed_by_test: bool = False


def indexer_env(crash_at: str | None = None, ann: bool = False, kill_after: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POLICYBOT_CRASH_AT", CRASH_SIGNAL)}
    env.update({name: "" for name in SETTING_NAMES})
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if ann:
        env["ANN_INDEX"] = "ivf"
    if crash_at:
        env["POLICYBOT_CRASH_AT"] = crash_at
    if kill_after:
        env[CRASH_SIGNAL] = kill_after
    return env


def run_indexer(
    corpus: Path, index_dir: Path, crash_at: str | None = None, kill_after: str | None = None, ann: bool = False, timeout: float = 240
) -> Run:
    """`policybot index --quiet` in a subprocess; with `kill_after`, SIGKILLed when it reports reaching that crashpoint."""
    command = [sys.executable, "-m", "bot.cli", "--corpus", str(corpus), "--index-dir", str(index_dir), "index", "--quiet"]
    started = time.monotonic()
    env = indexer_env(crash_at, ann, kill_after)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    try:
        if kill_after is not None:
            # stdout in a thread (so a full pipe never stalls the child); stderr read here, line by line.
            stdout: list[str] = []
            reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()), daemon=True)
            reader.start()
            watchdog = threading.Timer(timeout, proc.kill)  # only against a hang; no assertion depends on it
            watchdog.start()
            lines = []
            for line in proc.stderr:
                lines.append(line)
                if not killed and line.strip() == f"crashpoint {kill_after} reached":
                    # The child now waits at its next crashpoint, so this kill cannot come too late.
                    proc.send_signal(signal.SIGKILL)
                    killed = True
            proc.wait(timeout=timeout)
            watchdog.cancel()
            reader.join(timeout)
            out, err = "".join(stdout), "".join(lines)
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
            # The uninterrupted update of A to B: the expected result.
            reference = pool.submit(run_indexer, self.corpus_b, self.index_b)
            futures = {c.id: pool.submit(self._run_case, c, lock) for c in wanted}
            ref = reference.result()
            assert ref.returncode == 0, ref.stderr
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

    def _run_case(self, case: Case, lock: threading.Lock) -> Run:
        work = self.root / case.id
        corpus = shutil.copytree(self.corpus_b, work / "corpus")
        index_dir = work / "index"
        if not case.first_build:
            shutil.copytree(self.index_a, index_dir)
        with lock:
            self.dirs[case.id] = (corpus, index_dir)
        return run_indexer(corpus, index_dir, crash_at=case.crash_at, kill_after=case.kill_after, ann=case.ann)


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

    assert run.returncode == -signal.SIGKILL, where
    assert run.killed_by_test == (case.kill_after is not None), where
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


def test_signalled_kills_hit_a_running_indexer(lab):
    """Every kill the test sent landed in a live indexer that had reached its point, however slow the machine."""
    signalled = [c.id for c in CASES if c.kill_after is not None and c.id in lab.runs]
    if len(signalled) < len([c for c in CASES if c.kill_after is not None]):
        pytest.skip("only some signalled cases were selected")
    outcomes = {c: (lab.runs[c].returncode, round(lab.runs[c].seconds, 1), lab.found.get(c)) for c in signalled}
    print(f"\ncrash lab: {len(lab.runs)} runs in {lab.seconds:.0f}s; signalled kills: {outcomes}")
    for case_id in signalled:
        run, case = lab.runs[case_id], CASE_BY_ID[case_id]
        assert f"crashpoint {case.kill_after} reached" in run.stderr, case_id
        assert run.killed_by_test and run.returncode == -signal.SIGKILL, outcomes


def test_enough_distinct_kill_points():
    points = {c.crash_at or f"after-{c.kill_after}" for c in CASES}
    assert len(points) >= 20


def test_a_signalled_crashpoint_reports_then_waits_at_the_next_one_for_the_kill():
    env = {**indexer_env(), CRASH_SIGNAL: "tick:2"}
    command = [sys.executable, "-c", _CRASHPOINT_COUNTER]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline() == "crashpoint tick reached\n"
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL and err == ""
    # Killed at once, or after printing 2; never later, for it waited at the next crashpoint.
    assert out in ("1\n", "1\n2\n")


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
