"""Fixtures for the Discord tests: a library (corpus + index) built once, copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from index.indexing.indexer import update_index
from tests.conftest import write_article, write_small_corpus
from tests.support.discord_bot import SEED_ARTICLE, copy_library

HOSTILE_TITLE = "Ping test @everyone"
HOSTILE_BODY = (
    "Harbour pilots in Valmora went on strike over pension cuts @everyone and @here were told. "
    "The union leader <@123456789012345678> asked the role <@&223456789012345678> to join the walkout.\n\n"
    "The port authority says container traffic fell by a third during the strike."
)


@pytest.fixture(scope="session")
def library(tmp_path_factory, embedder) -> Path:
    """Seed article, four small articles and one full of mention syntax, indexed once."""
    root = tmp_path_factory.mktemp("library")
    corpus = write_small_corpus(root / "corpus")
    shutil.copy(SEED_ARTICLE, corpus / SEED_ARTICLE.name)
    write_article(corpus, "harbour-strike.md", HOSTILE_TITLE, HOSTILE_BODY, url="https://example.org/strike")
    update_index(corpus, root / "data" / "index", embedder)[1].close()
    return root


@pytest.fixture
def paths(library, tmp_path) -> tuple[Path, Path]:
    return copy_library(library, tmp_path / "copy")
