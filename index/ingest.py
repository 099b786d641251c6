"""Adding and removing articles: uploads become safely named corpus files; removed ones go to a trash folder.

The corpus folder stays the source of truth: these functions change files, and the caller
runs an incremental reindex afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from index.corpus import (
    ARTICLE_SUFFIXES,
    ArticleError,
    article_id_for,
    corpus_files,
    decode_article_bytes,
    parse_article,
    title_from_filename,
)
from index.models import Article
from index.store import ArticleInfo

MAX_FILENAME_STEM = 80


class IngestError(ValueError):
    """An article that cannot be added; the message says why in plain words."""


@dataclass(frozen=True)
class AddedArticle:
    """A file written into the corpus, and whether it replaced an older version."""

    path: Path
    article: Article
    replaced: bool


def safe_filename(name: str) -> str:
    """A corpus file name from an uploaded one: no folders, lower-case ASCII slug, an accepted suffix."""
    base = re.split(r"[\\/]", name.strip())[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = f".{suffix.lower()}"
    if suffix not in ARTICLE_SUFFIXES:
        accepted = ", ".join(ARTICLE_SUFFIXES)
        raise IngestError(f"{base or 'the file'!r} is not an article file; accepted: {accepted}")
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_stem.lower()).strip("-")[:MAX_FILENAME_STEM].strip("-")
    return f"{slug or 'article'}{suffix}"


def add_article_file(corpus_dir: Path, filename: str, data: bytes, indexed: Sequence[ArticleInfo],
                     max_bytes: int) -> AddedArticle:
    """Check an uploaded article and write it into the corpus atomically; IngestError says what is wrong.

    The same content already indexed under another name is refused as a duplicate; the same
    name with new content replaces the old version.
    """
    corpus_dir = Path(corpus_dir)
    if len(data) > max_bytes:
        raise IngestError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    name = safe_filename(filename)
    target = corpus_dir / name
    try:
        text = decode_article_bytes(data)
        article = parse_article(text, article_id=article_id_for(target, corpus_dir), fallback_title=title_from_filename(target),
                                path=name, markdown=target.suffix != ".txt")
    except ArticleError as exc:
        raise IngestError(f"{name} cannot be read as an article: {exc}") from None
    for info in indexed:
        if info.content_hash == article.content_hash:
            where = "is already indexed" if info.article_id == article.article_id else f"is already indexed as {info.title!r}"
            raise IngestError(f"this article {where}; nothing changed")
    corpus_dir.mkdir(parents=True, exist_ok=True)
    replaced = target.exists()
    # A hidden temporary name: the corpus scan ignores it until the rename makes it whole.
    temporary = corpus_dir / f".upload-{secrets.token_hex(6)}.tmp"
    try:
        with open(temporary, "xb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return AddedArticle(target, article, replaced)


def remove_article_file(corpus_dir: Path, article_id: str, trash_dir: Path) -> Path:
    """Move the article's file out of the corpus into the trash folder (nothing is deleted); returns where it went."""
    corpus_dir = Path(corpus_dir)
    for path in corpus_files(corpus_dir):
        if article_id_for(path, corpus_dir) == article_id:
            trash_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            destination = trash_dir / f"{stamp}-{path.name}"
            # shutil.move, not os.replace: the trash folder may be on another file system.
            shutil.move(path, destination)
            return destination
    raise LookupError(f"no file for article {article_id!r} in {corpus_dir}")
