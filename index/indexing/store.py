"""The index on disk: FAISS vectors + SQLite metadata, tied together by a checksummed manifest.

Every commit writes a new generation of files beside the old ones (temporary file, fsync,
os.replace), then atomically replaces `manifest.json` to point at them. Until that replace
the old manifest and its files are untouched, so a crash at any moment leaves either the old
or the new index. The manifest's checksums detect a corrupted or truncated file on load.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, cast

import faiss
import numpy as np

from index.database import inserted_id
from index.types import Article, ArticleInfo, Chunk, StoredChunk

if TYPE_CHECKING:
    from index.indexing.ann import AnnBuilder

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"

SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    author TEXT NOT NULL DEFAULT '',
    published TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    added_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(article_id),
    ordinal INTEGER NOT NULL,
    paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    token_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_article ON chunks(article_id);
CREATE TABLE IF NOT EXISTS sentence_vectors (
    key TEXT NOT NULL,
    article_id TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (key, article_id)
);
CREATE INDEX IF NOT EXISTS sentence_vectors_by_article ON sentence_vectors(article_id);
"""


class IndexProblem(RuntimeError):
    """Base class for index problems the user can act on; the message is one clear line."""


class IndexCorruptError(IndexProblem):
    """An index file is missing, truncated or does not match the manifest's checksum."""


class ModelMismatchError(IndexProblem):
    """The index was built with another embedding model than the one configured."""


class IndexBusyError(IndexProblem):
    """Another process is writing this index."""


@dataclass(frozen=True)
class Upsert:
    """An article to add or replace, with its chunks and their vectors (same order)."""

    article: Article
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    # The article's sentences as answers embed them: context_key -> vector (see index/indexing/sentences.py).
    sentence_vectors: Mapping[str, np.ndarray] = field(default_factory=dict)


class _Applied(NamedTuple):
    """What _apply_changes did: the chunk ids removed, the new chunk ids of each upsert, and the article count after."""

    removed_ids: list[int]
    inserted_ids: list[list[int]]
    article_count: int


def crashpoint(name: str) -> None:
    """Kill this process with SIGKILL at a named point when a crash test asks for it.

    The crash-safety test sets POLICYBOT_CRASH_AT=name[:n] in a real `policybot index`
    subprocess; nothing else sets it, and without it this is a dictionary lookup.

    With POLICYBOT_CRASH_SIGNAL=name[:n] instead, the nth hit writes "crashpoint NAME reached"
    to stderr and the work goes on, up to the next crashpoint, which waits there. The test
    sends SIGKILL when it reads that line: the kill lands anywhere between the two points,
    in a process that is certainly still running (no guess at how long a run takes).
    """
    if os.environ.get(CRASH_SIGNAL):
        _signal_crashpoint(name)
    wanted = os.environ.get("POLICYBOT_CRASH_AT")
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    remaining = int(count or "1") - 1
    os.environ["POLICYBOT_CRASH_AT"] = f"{point}:{remaining}"
    if remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)


CRASH_SIGNAL = "POLICYBOT_CRASH_SIGNAL"
_WAITING_FOR_KILL = "waiting"


def _signal_crashpoint(name: str) -> None:
    """POLICYBOT_CRASH_SIGNAL: report the nth hit of `name` on stderr; stop at the next crashpoint until killed."""
    wanted = os.environ[CRASH_SIGNAL]
    if wanted == _WAITING_FOR_KILL:
        while True:  # the test's SIGKILL ends this
            time.sleep(1)
    point, _, count = wanted.partition(":")
    if point != name:
        return
    remaining = int(count or "1") - 1
    os.environ[CRASH_SIGNAL] = f"{point}:{remaining}" if remaining > 0 else _WAITING_FOR_KILL
    if remaining <= 0:
        os.write(2, f"crashpoint {name} reached\n".encode())


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


@contextlib.contextmanager
def writer_lock(index_dir: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the index's writer lock; one writer at a time across processes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    handle = open(index_dir / LOCK, "a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(f"another policybot process is updating the index in {index_dir}") from None
                time.sleep(0.1)
        yield
    finally:
        handle.close()


def read_manifest(index_dir: Path) -> dict | None:
    """The current manifest, or None when no index was ever written here."""
    path = index_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
            raise ValueError("unknown format")
        int(manifest["generation"])
        if not isinstance(manifest["model"], str) or not isinstance(manifest["dimension"], int):
            raise ValueError("no model")
        manifest["files"]["vectors"]["name"]
        manifest["files"]["meta"]["name"]
        for entry in manifest["files"].values():
            name = entry["name"]
            if (
                not isinstance(name, str)
                or name in ("", ".", "..")
                or "/" in name
                or not isinstance(entry["bytes"], int)
                or not isinstance(entry["sha256"], str)
            ):
                raise ValueError("bad file entry")
    except (ValueError, KeyError, TypeError):
        raise IndexCorruptError(f"index manifest {path} is unreadable; run `policybot index --rebuild`") from None
    return manifest


def _verify(index_dir: Path, entry: dict) -> Path:
    path = index_dir / entry["name"]
    if not path.exists():
        raise IndexCorruptError(f"index file {path} is missing; run `policybot index` to rebuild it from the corpus")
    size = path.stat().st_size
    if size != entry["bytes"] or _sha256(path) != entry["sha256"]:
        state = "truncated" if size < entry["bytes"] else "corrupted"
        raise IndexCorruptError(f"index file {path} is {state} (checksum mismatch); run `policybot index` to rebuild it from the corpus")
    return path


def new_vector_index(dimension: int) -> faiss.IndexIDMap2:
    """Exact inner-product search over unit vectors, addressed by stable chunk ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


class IndexStore:
    """A loaded generation of the index: vectors in memory, metadata in a read-only SQLite file."""

    def __init__(
        self,
        index_dir: Path,
        model: str,
        dimension: int,
        manifest: dict | None,
        vectors: faiss.IndexIDMap2,
        db: sqlite3.Connection | None,
        ann: faiss.IndexIVF | None = None,
    ):
        self.index_dir = index_dir
        self.model = model
        self.dimension = dimension
        self.manifest = manifest
        self.vectors = vectors
        self.ann = ann
        self._db = db

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path, model: str, dimension: int) -> IndexStore:
        """Load the current generation, verifying checksums; an empty store when none exists."""
        index_dir = Path(index_dir)
        for attempt in range(3):
            manifest = read_manifest(index_dir)
            if manifest is None:
                return cls(index_dir, model, dimension, None, new_vector_index(dimension), None)
            if manifest.get("model") != model or int(manifest.get("dimension", -1)) != dimension:
                raise ModelMismatchError(
                    f"the index in {index_dir} was built with model '{manifest.get('model')}' "
                    f"({manifest.get('dimension')} dims), not '{model}' ({dimension} dims); "
                    "run `policybot index --rebuild`"
                )
            try:
                return cls._load(index_dir, manifest, model, dimension)
            except IndexCorruptError:
                # A writer may have replaced the manifest and cleaned up between our reads.
                if attempt == 2 or read_manifest(index_dir) == manifest:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load(cls, index_dir: Path, manifest: dict, model: str, dimension: int) -> IndexStore:
        files = manifest["files"]
        vectors_path = _verify(index_dir, files["vectors"])
        meta_path = _verify(index_dir, files["meta"])
        # read_index returns the concrete class it wrote (faiss downcasts); its stubs only say Index.
        ann: faiss.IndexIVF | None = None
        if "ann" in files:
            ann = cast(faiss.IndexIVF, faiss.read_index(str(_verify(index_dir, files["ann"]))))
        try:
            vectors = cast(faiss.IndexIDMap2, faiss.read_index(str(vectors_path)))
        except RuntimeError as exc:
            raise IndexCorruptError(f"index file {vectors_path} cannot be read ({exc}); run `policybot index --rebuild`") from None
        db = sqlite3.connect(f"file:{meta_path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        count = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if count != vectors.ntotal or vectors.d != dimension:
            db.close()
            raise IndexCorruptError(
                f"index in {index_dir} is inconsistent ({count} chunks, {vectors.ntotal} vectors); run `policybot index --rebuild`"
            )
        return cls(index_dir, model, dimension, manifest, vectors, db, ann)

    @classmethod
    def empty_like(cls, index_dir: Path, model: str, dimension: int) -> IndexStore:
        """A new empty store for a rebuild; its first commit replaces whatever is on disk."""
        return cls(Path(index_dir), model, dimension, None, new_vector_index(dimension), None)

    def close(self) -> None:
        """Release the SQLite connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---- reading -------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """How many commits built this index (0 when empty)."""
        return int(self.manifest["generation"]) if self.manifest else 0

    @property
    def chunk_count(self) -> int:
        """Number of indexed chunks."""
        return int(self.vectors.ntotal)

    def _rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        if self._db is None:
            return []
        return self._db.execute(sql, tuple(params)).fetchall()

    def articles(self) -> list[ArticleInfo]:
        """Indexed articles with their chunk counts, oldest first."""
        rows = self._rows(
            "SELECT a.article_id, a.title, a.url, COUNT(c.chunk_id), a.added_at, a.updated_at, a.content_hash, "
            "a.author, a.published, a.source "
            "FROM articles a LEFT JOIN chunks c ON c.article_id = a.article_id "
            "GROUP BY a.article_id ORDER BY a.added_at, a.article_id"
        )
        return [ArticleInfo(*row) for row in rows]

    def find_article(self, query: str) -> ArticleInfo:
        """The article whose id is `query`, or whose id or title starts with (then contains) it.

        Raises LookupError with a helpful message when nothing or several articles match.
        """
        wanted = " ".join(query.split()).casefold()
        if not wanted:
            raise LookupError("name an article: its id or the start of its title")
        infos = self.articles()
        for test in (
            # An id as given names that article, even when another's title reads the same.
            lambda i: i.article_id == query,
            lambda i: i.article_id.casefold() == wanted or i.title.casefold() == wanted,
            lambda i: i.article_id.casefold().startswith(wanted) or i.title.casefold().startswith(wanted),
            lambda i: wanted in i.title.casefold(),
        ):
            matches = [i for i in infos if test(i)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                shown = "; ".join(f"{m.article_id} ({m.title})" for m in matches[:5])
                raise LookupError(f"{len(matches)} articles match {query!r}: {shown}")
        raise LookupError(f"no indexed article matches {query!r}; the articles command lists them")

    def article_text(self, article_id: str) -> str | None:
        """The full text that chunk offsets point into."""
        rows = self._rows("SELECT text FROM articles WHERE article_id = ?", (article_id,))
        return rows[0][0] if rows else None

    def chunks_by_id(self, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks with the article fields a citation needs, keyed by chunk id."""
        if not chunk_ids:
            return {}
        found: dict[int, StoredChunk] = {}
        ids = [int(i) for i in chunk_ids]
        for offset in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            part = ids[offset : offset + 900]
            marks = ",".join("?" * len(part))
            for row in self._rows(
                "SELECT c.chunk_id, c.article_id, a.title, a.url, c.paragraph, c.start, c.end, c.text "
                f"FROM chunks c JOIN articles a ON a.article_id = c.article_id WHERE c.chunk_id IN ({marks})",
                part,
            ):
                found[row[0]] = StoredChunk(*row)
        return found

    @property
    def sentence_count(self) -> int:
        """Number of sentence vectors stored for answers (0 for an index written before they were)."""
        try:
            rows = self._rows("SELECT COUNT(*) FROM sentence_vectors")
        except sqlite3.OperationalError:
            return 0
        return int(rows[0][0]) if rows else 0

    def sentence_vectors(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these sentence keys (see index/indexing/sentences.py); missing keys are left out."""
        if not keys:
            return {}
        found: dict[str, np.ndarray] = {}
        try:
            for offset in range(0, len(keys), 500):  # SQLite's limit on parameters
                part = list(keys[offset : offset + 500])
                marks = ",".join("?" * len(part))
                for key, blob in self._rows(f"SELECT key, vector FROM sentence_vectors WHERE key IN ({marks})", part):
                    found[key] = np.frombuffer(blob, dtype=np.float16).astype(np.float32)
        except sqlite3.OperationalError:  # an index written before sentences were stored: they are embedded instead
            return {}
        return found

    def chunk_ids_of(self, article_ids: Sequence[str]) -> list[int]:
        """The chunk ids of these articles (at most 900: SQLite's parameter limit), in id order."""
        marks = ",".join("?" * len(article_ids[:900]))
        return [r[0] for r in self._rows(f"SELECT chunk_id FROM chunks WHERE article_id IN ({marks}) ORDER BY chunk_id", article_ids[:900])]

    def chunk_ids_and_texts(self) -> tuple[np.ndarray, list[str]]:
        """Every chunk id and text, in id order (for keyword search)."""
        rows = self._rows("SELECT chunk_id, text FROM chunks ORDER BY chunk_id")
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    # ---- writing -------------------------------------------------------------------------

    def commit(self, upserts: Sequence[Upsert], removals: Sequence[str], ann_builder: AnnBuilder | None = None, chunking: str = "") -> None:
        """Write a new generation with these articles added or replaced and `removals` deleted.

        `chunking` records the chunk settings the index was built with, so a change is noticed.

        On any exception the files on disk are unchanged; call `open` again to reload.
        """
        index_dir = self.index_dir
        index_dir.mkdir(parents=True, exist_ok=True)
        generation = max(self.generation, (read_manifest_quiet(index_dir) or {}).get("generation", 0)) + 1
        meta_path = index_dir / f"meta-{generation:06d}.sqlite"
        vectors_path = index_dir / f"vectors-{generation:06d}.faiss"
        meta_tmp = meta_path.with_name(f".{meta_path.name}.tmp")
        vectors_tmp = vectors_path.with_name(f".{vectors_path.name}.tmp")
        for stale in (meta_tmp, vectors_tmp):
            stale.unlink(missing_ok=True)

        # 1. Metadata: copy the current SQLite file and apply the changes in one transaction.
        if self._db is not None:
            backup = sqlite3.connect(meta_tmp)
            self._db.backup(backup)
            backup.close()
        crashpoint("meta-copied")
        db = sqlite3.connect(meta_tmp)
        try:
            db.executescript(SCHEMA)
            removed_ids, inserted_ids, article_count = _apply_changes(db, upserts, removals)
            db.execute(
                "INSERT OR REPLACE INTO info VALUES ('model', ?), ('dimension', ?), ('generation', ?)",
                (self.model, str(self.dimension), str(generation)),
            )
            crashpoint("meta-written")
            db.commit()
            new_ids = [row[0] for row in db.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id")]
        finally:
            db.close()
        _fsync_path(meta_tmp)
        crashpoint("meta-synced")

        # 2. Vectors: apply the same changes to the in-memory FAISS index and write it out.
        if removed_ids:
            # faiss wraps remove_ids to take an id array; its stubs list only the IDSelector form.
            self.vectors.remove_ids(np.array(removed_ids, dtype=np.int64))  # type: ignore[arg-type]
        for upsert, ids in zip(upserts, inserted_ids):
            if len(ids):
                self.vectors.add_with_ids(np.ascontiguousarray(upsert.vectors, dtype=np.float32), np.array(ids, dtype=np.int64))
        if self.vectors.ntotal != len(new_ids):
            raise RuntimeError("vector and metadata counts disagree; nothing was written")
        faiss.write_index(self.vectors, str(vectors_tmp))
        crashpoint("vectors-written")
        _fsync_path(vectors_tmp)
        crashpoint("vectors-synced")

        files = {}
        os.replace(meta_tmp, meta_path)
        crashpoint("meta-renamed")
        os.replace(vectors_tmp, vectors_path)
        crashpoint("vectors-renamed")
        ann = ann_builder(self.vectors) if ann_builder else None
        if ann is not None:
            ann_path = index_dir / f"ann-{generation:06d}.faiss"
            ann_tmp = ann_path.with_name(f".{ann_path.name}.tmp")
            faiss.write_index(ann, str(ann_tmp))
            _fsync_path(ann_tmp)
            os.replace(ann_tmp, ann_path)
            files["ann"] = {"name": ann_path.name, "bytes": ann_path.stat().st_size, "sha256": _sha256(ann_path)}
        _fsync_path(index_dir)
        crashpoint("files-synced")
        for key, path in (("vectors", vectors_path), ("meta", meta_path)):
            files[key] = {"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}
        crashpoint("checksummed")

        # 3. The switch: one atomic rename of the manifest makes the new generation current.
        manifest = {
            "format": FORMAT_VERSION,
            "generation": generation,
            "model": self.model,
            "dimension": self.dimension,
            "chunks": int(self.vectors.ntotal),
            "articles": article_count,
            "written_at": _now(),
            "files": files,
            "chunking": chunking,
            "previous_files": [f["name"] for f in (self.manifest or {}).get("files", {}).values()],
        }
        atomic_write_bytes(index_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
        crashpoint("manifest-replaced")

        self.close()
        self.manifest = manifest
        self.ann = ann
        self._db = sqlite3.connect(f"file:{meta_path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        remove_unreferenced_files(index_dir, manifest)
        crashpoint("cleaned")


def _apply_changes(db: sqlite3.Connection, upserts: Sequence[Upsert], removals: Sequence[str]) -> _Applied:
    """Apply removals and upserts to an open metadata database."""
    now = _now()
    replaced = [u.article.article_id for u in upserts]
    removed_ids: list[int] = []
    added_at: dict[str, str] = {}
    for article_id in [*removals, *replaced]:
        removed_ids.extend(r[0] for r in db.execute("SELECT chunk_id FROM chunks WHERE article_id = ?", (article_id,)))
        row = db.execute("SELECT added_at FROM articles WHERE article_id = ?", (article_id,)).fetchone()
        if row:
            added_at[article_id] = row[0]
        db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        db.execute("DELETE FROM articles WHERE article_id = ?", (article_id,))
        db.execute("DELETE FROM sentence_vectors WHERE article_id = ?", (article_id,))
    inserted: list[list[int]] = []
    for upsert in upserts:
        a = upsert.article
        if len(upsert.chunks) != len(upsert.vectors):
            raise ValueError(f"article {a.article_id}: {len(upsert.chunks)} chunks but {len(upsert.vectors)} vectors")
        db.execute(
            "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                a.article_id,
                a.title,
                a.url,
                a.author,
                a.published,
                a.source,
                a.path,
                a.content_hash,
                a.text,
                added_at.get(a.article_id, now),
                now,
            ),
        )
        ids: list[int] = []
        for c in upsert.chunks:
            cursor = db.execute(
                "INSERT INTO chunks (article_id, ordinal, paragraph, start, end, text, token_count) VALUES (?,?,?,?,?,?,?)",
                (a.article_id, c.ordinal, c.paragraph, c.start, c.end, c.text, c.token_count),
            )
            ids.append(inserted_id(cursor))
        inserted.append(ids)
        db.executemany(
            "INSERT OR IGNORE INTO sentence_vectors VALUES (?,?,?)",
            ((key, a.article_id, np.asarray(vector, dtype=np.float16).tobytes()) for key, vector in upsert.sentence_vectors.items()),
        )
    return _Applied(removed_ids, inserted, db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])


def read_manifest_quiet(index_dir: Path) -> dict | None:
    """The manifest if it is readable, else None (for numbering a rebuild's generation)."""
    try:
        return read_manifest(index_dir)
    except IndexCorruptError:
        return None


def remove_unreferenced_files(index_dir: Path, manifest: dict) -> None:
    """Delete generations older than the previous one, and temporaries left by a crash."""
    keep = {MANIFEST, LOCK, *(f["name"] for f in manifest["files"].values()), *manifest.get("previous_files", [])}
    for path in index_dir.iterdir():
        if path.name in keep or not path.is_file():
            continue
        if path.name.startswith((".meta-", ".vectors-", ".ann-", ".manifest", "meta-", "vectors-", "ann-")):
            with contextlib.suppress(OSError):
                path.unlink()
