"""Shared fixtures: the real packaged model (loaded once), a cheap fake embedder, a small corpus."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

# The packaged model lies on disk; never let a test reach for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from index.indexing.chunking import whitespace_token_counter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def _is_loopback(host) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for any other address or name."""
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only_network(monkeypatch):
    """No test may reach past this machine, nor ask DNS about a name, even if a guard it tests is broken."""
    real_connect = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def create_connection(address, *args, **kwargs):
        if not _is_loopback(address[0]):
            pytest.fail(f"a test tried to connect to {address[0]}")
        return real_connect(address, *args, **kwargs)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            pytest.fail(f"a test asked DNS about {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Deterministic hashing bag-of-words vectors: texts sharing words get high cosine similarity.

    Unit-length float32 rows like a real model's, computed in microseconds, stable across
    processes (hashlib, not the salted built-in hash()).
    """

    def __init__(self, name: str = "fake-hashing-bow", dimension: int = 384, max_tokens: int = 254):
        self.name = name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.calls = 0
        self.embedded_texts = 0

    def _bucket(self, word: str) -> tuple[int, float]:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimension, 1.0 if (value >> 32) & 1 else -1.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.embedded_texts += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                column, sign = self._bucket(word)
                out[row, column] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return whitespace_token_counter(texts)


def write_article(corpus_dir: Path, name: str, title: str, body: str, **front: str) -> Path:
    """Write one Markdown article with YAML front matter; returns its path."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    lines = ["---", f'title: "{title}"', *(f'{key}: "{value}"' for key, value in front.items()), "---", ""]
    path = corpus_dir / name
    path.write_text("\n".join(lines) + textwrap.dedent(body).strip() + "\n", encoding="utf-8")
    return path


# Four short articles on distinct topics, so a search can be checked by article id.
SMALL_CORPUS = {
    "water-rationing.md": (
        "Drought and water rationing",
        """
        The regional water board announced rationing after the third dry winter in a row. Reservoirs
        stand at a third of their capacity, and farmers face cuts to irrigation allocations.

        Households are asked to limit lawn watering to two days a week. Fines for wasting water rise
        in the summer months, and the board will publish weekly reservoir levels.
        """,
    ),
    "carbon-tax.md": (
        "A carbon tax with a dividend",
        """
        The finance ministry proposes a carbon tax on fuel and heating oil, starting at forty euros per
        tonne of emissions and rising each year.

        All revenue is returned to households as an equal dividend, so most low-income families receive
        more than they pay. Exporters of steel and cement get a border adjustment.
        """,
    ),
    "school-meals.md": (
        "Free school meals for every pupil",
        """
        The education department will fund free lunches for all primary school pupils from September.
        Kitchens must serve fresh vegetables daily and limit sugar in desserts.

        Head teachers report that hungry children concentrate poorly in afternoon lessons, and the
        programme aims to improve attendance as well as nutrition.
        """,
    ),
    "housing-zoning.md": (
        "Zoning reform to build more homes",
        """
        The city council voted to end single-family zoning near train stations. Apartment blocks of up
        to six storeys may now be built without a special permit.

        Rents have risen faster than wages for a decade, and planners expect thousands of new homes.
        Neighbourhood groups worry about parking and the shade cast by taller buildings.
        """,
    ),
}


def write_small_corpus(corpus_dir: Path) -> Path:
    """Write SMALL_CORPUS into corpus_dir and return it."""
    for name, (title, body) in SMALL_CORPUS.items():
        write_article(corpus_dir, name, title, body, url=f"https://example.org/{Path(name).stem}", author="Test Author")
    return corpus_dir


@pytest.fixture(scope="session")
def embedder():
    """The real packaged sentence-transformers model, loaded once per test session."""
    from index.indexing.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    """A cheap deterministic stand-in for the model (384 dims, whitespace token counts)."""
    return FakeEmbedder()


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """A corpus folder with four short articles on distinct topics (ids are the file stems)."""
    return write_small_corpus(tmp_path / "corpus")


def extractive_engines(embedder):
    """The engine factory a KnowledgeBase needs: the extractive engine over each loaded index."""
    from index.answering.extractive import ExtractiveEngine
    from index.retrieval.retriever import Retriever

    return lambda store: ExtractiveEngine(Retriever(store, embedder), embedder)
