"""Adding and removing articles: a URL, an upload or a file becomes one Markdown file in the corpus.

The corpus folder stays the source of truth: these functions change files (atomically, never
leaving half an article), and the caller runs an incremental reindex afterwards. The same
URL or the same text is not added twice; a changed article replaces its older version.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import threading
import unicodedata
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from index.indexing.corpus import (
    ARTICLE_SUFFIXES,
    DEFAULT_MAX_ARTICLE_BYTES,
    ArticleError,
    article_id_for,
    corpus_files,
    decode_article_bytes,
    parse_article,
    scan_corpus,
    title_from_filename,
)
from index.ingestion.extraction import (
    DOCUMENT_SUFFIXES,
    ExtractedArticle,
    ExtractionError,
    ExtractLimits,
    decode_html,
    extract_bounded,
)
from index.ingestion.fetch import Fetcher, FetchError
from index.ingestion.urls import UrlRefused, normalize_url, same_page
from index.types import Article, ArticleInfo

if TYPE_CHECKING:
    from index.knowledge import KnowledgeBase

MAX_FILENAME_STEM = 80
# Longer than any article (a long book is ~150,000 words); a bigger "article" is a data dump.
MAX_ARTICLE_WORDS = 200_000
UPLOAD_SUFFIXES = ARTICLE_SUFFIXES + DOCUMENT_SUFFIXES
# Two articles sharing this much of their 5-word phrases are the same article (a reprint,
# a re-post with another headline); see docs/adding-articles.md.
NEAR_DUPLICATE_RESEMBLANCE = 0.80
SHINGLE_WORDS = 5
# Held (flock) while an add checks for duplicates and writes, so two adds at once cannot both
# pass the check. Hidden, so the corpus scanner ignores it.
ADD_LOCK_NAME = ".policybot-add.lock"

# (article info, its text) for indexed articles that may resemble a text.
SimilarArticles = Callable[[str], Sequence[tuple[ArticleInfo, str]]]


class IngestError(ValueError):
    """An article that cannot be added; the message says why in plain words."""


@dataclass(frozen=True)
class AddedArticle:
    """A file written into the corpus, and what it replaced."""

    path: Path
    article: Article
    replaced: ArticleInfo | None = None
    source: str = ""

    @property
    def replaced_title(self) -> str:
        """The title of the older version this replaced, or ''."""
        return self.replaced.title if self.replaced else ""


# ---- names ---------------------------------------------------------------------------------------


def slug(text: str, limit: int = MAX_FILENAME_STEM) -> str:
    """Lower-case ASCII words joined by hyphens, at most `limit` characters ('' when nothing is left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].strip("-")


def safe_filename(name: str, accepted: Sequence[str] = ARTICLE_SUFFIXES) -> str:
    """A corpus file name from an uploaded one: no folders, lower-case ASCII slug, an accepted suffix."""
    base = re.split(r"[\\/]", name.strip())[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = f".{suffix.lower()}"
    if suffix not in accepted:
        raise IngestError(f"{base or 'the file'!r} is not an article file; accepted: {', '.join(accepted)}")
    return f"{slug(stem) or 'article'}{suffix}"


def free_name(corpus_dir: Path, stem: str) -> str:
    """`stem.md`, or `stem-2.md`, `stem-3.md`… when that name's article id is already taken.

    Ids ignore the suffix, so `stem.txt` or `stem.markdown` in the corpus takes `stem.md`'s id too.
    """
    stem = stem or "article"
    taken = {article_id_for(path, corpus_dir) for path in corpus_files(corpus_dir)} if corpus_dir.is_dir() else set()
    candidate, n = f"{stem}.md", 1
    while article_id_for(corpus_dir / candidate, corpus_dir) in taken:
        n += 1
        candidate = f"{stem}-{n}.md"
    return candidate


def article_file(corpus_dir: Path, article_id: str) -> Path | None:
    """The corpus file holding an article, or None."""
    for path in corpus_files(corpus_dir):
        if article_id_for(path, corpus_dir) == article_id:
            return path
    return None


# ---- duplicates ----------------------------------------------------------------------------------


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[int]:
    """Hashes of the text's overlapping `size`-word phrases (lower-case words)."""
    words = re.findall(r"\w+", text.lower())
    if len(words) < size:
        return {zlib.crc32(" ".join(words).encode())} if words else set()
    return {zlib.crc32(" ".join(words[i : i + size]).encode()) for i in range(len(words) - size + 1)}


def resemblance(first: set[int], second: set[int]) -> float:
    """Jaccard resemblance of two shingle sets (0 to 1)."""
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def saved_articles(
    corpus_dir: Path, indexed: Sequence[ArticleInfo], max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES
) -> tuple[list[ArticleInfo], dict[str, Article]]:
    """The indexed articles plus those saved in the corpus but not indexed (in their saved version).

    A file saved by an add whose indexing failed or was killed is invisible to the index; its
    front matter and text (read without the model) keep it from being added a second time.
    Returns the infos to check against and the unindexed articles by id.
    """
    if not corpus_dir.is_dir():
        return list(indexed), {}
    current = {(info.article_id, info.content_hash) for info in indexed}
    unindexed = {a.article_id: a for a in scan_corpus(corpus_dir, max_bytes).articles if (a.article_id, a.content_hash) not in current}
    infos = [info for info in indexed if info.article_id not in unindexed]
    infos += [ArticleInfo(a.article_id, a.title, a.url, 0, "", "", a.content_hash) for a in unindexed.values()]
    return infos, unindexed


_locks_held = threading.local()


@contextmanager
def corpus_lock(corpus_dir: Path) -> Iterator[None]:
    """Hold the corpus folder's add lock: one add at a time, across processes, checks and writes.

    An flock on a hidden file in the folder; the kernel drops it when its holder dies, so a
    killed add never leaves the folder locked. Re-entrant within a thread.
    """
    corpus_dir = Path(corpus_dir)
    key = str(corpus_dir.resolve())
    held: set[str] = _locks_held.__dict__.setdefault("dirs", set())
    if key in held:
        yield
        return
    corpus_dir.mkdir(parents=True, exist_ok=True)
    with open(corpus_dir / ADD_LOCK_NAME, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def check_not_duplicate(
    article: Article,
    indexed: Sequence[ArticleInfo],
    similar: SimilarArticles | None,
    replacing: str | None,
    unindexed: Mapping[str, Article] | None = None,
) -> None:
    """IngestError when the same text is indexed (or saved, `unindexed`), or a near-copy of it is, as another article."""
    unindexed = unindexed or {}
    for info in indexed:
        if info.content_hash == article.content_hash:
            if info.article_id in unindexed:
                raise IngestError(
                    f"this article is already saved as {unindexed[info.article_id].path} but not indexed yet; "
                    "run `policybot index` (or /reindex in Discord)"
                )
            where = "is already indexed" if info.article_id in (article.article_id, replacing) else f"is already indexed as “{info.title}”"
            raise IngestError(f"this article {where}; nothing changed")
    mine = shingles(article.text)
    for saved in unindexed.values():
        if saved.article_id in (article.article_id, replacing):
            continue
        share = resemblance(mine, shingles(saved.text))
        if share >= NEAR_DUPLICATE_RESEMBLANCE:
            raise IngestError(
                f"this article is nearly the same as “{saved.title}” ({share:.0%} of its phrases are shared), "
                f"saved as {saved.path} but not indexed yet; not added"
            )
    if similar is None:
        return
    for info, text in similar(article.text):
        if info.article_id in (article.article_id, replacing):
            continue
        share = resemblance(mine, shingles(text))
        if share >= NEAR_DUPLICATE_RESEMBLANCE:
            raise IngestError(f"this article is nearly the same as “{info.title}” ({share:.0%} of its phrases are shared); not added")


# ---- writing ------------------------------------------------------------------------------------


def write_atomically(target: Path, text: str) -> None:
    """Write the file under a hidden temporary name, then rename: the corpus never holds half an article."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".upload-{secrets.token_hex(6)}.tmp"
    try:
        with open(temporary, "xb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def article_markdown(extracted: ExtractedArticle, url: str = "", fetched: str = "") -> str:
    """Markdown with YAML front matter (title, source URL, author, dates, site) and the article text."""
    front = {
        "title": extracted.title,
        "url": url or extracted.url,
        "author": extracted.author,
        "published": extracted.published,
        "source": extracted.site,
        "fetched": fetched,
    }
    front = {key: " ".join(str(value).split()) for key, value in front.items() if value and str(value).strip()}
    header = yaml.safe_dump(front, allow_unicode=True, sort_keys=False, width=100_000)
    return f"---\n{header}---\n\n{extracted.text.strip()}\n"


def save_article(
    corpus_dir: Path,
    name: str,
    text: str,
    indexed: Sequence[ArticleInfo],
    similar: SimilarArticles | None = None,
    replacing: ArticleInfo | None = None,
    source: str = "",
    unindexed: Mapping[str, Article] | None = None,
) -> AddedArticle:
    """Parse the article text, refuse duplicates, and write it into the corpus as `name`.

    The check and the write hold the corpus lock. Duplicates are looked for among `indexed` and
    the files saved in the corpus; a caller that already read those (saved_articles, holding
    the lock) passes its merged `indexed` and `unindexed`.
    """
    corpus_dir = Path(corpus_dir)
    target = corpus_dir / name
    try:
        article = parse_article(
            text,
            article_id=article_id_for(target, corpus_dir),
            fallback_title=title_from_filename(target),
            path=name,
            markdown=target.suffix != ".txt",
        )
    except ArticleError as exc:
        raise IngestError(f"{name} cannot be read as an article: {exc}") from None
    words = len(article.text.split())
    if words > MAX_ARTICLE_WORDS:
        raise IngestError(f"the article has {words:,} words; the limit is {MAX_ARTICLE_WORDS:,}")
    with corpus_lock(corpus_dir):
        if unindexed is None:
            indexed, unindexed = saved_articles(corpus_dir, indexed)
        # Ids ignore the suffix: a.txt beside a.md would never be indexed (and every index run would say so).
        holder = article_file(corpus_dir, article.article_id)
        if holder is not None and holder != target:
            raise IngestError(
                f"{name} would have the same article id '{article.article_id}' as {holder.relative_to(corpus_dir)}, "
                "already in the corpus (ids ignore the suffix); rename the file, or remove that article first"
            )
        if replacing is None:
            replacing = next((i for i in indexed if i.article_id == article.article_id), None)
        check_not_duplicate(article, indexed, similar, replacing.article_id if replacing else None, unindexed)
        write_atomically(target, text)
    return AddedArticle(target, article, replacing, source)


# ---- the three ways in ---------------------------------------------------------------------------


def today() -> str:
    """The date in UTC, as front matter records it."""
    return datetime.now(UTC).date().isoformat()


def add_article_file(
    corpus_dir: Path,
    filename: str,
    data: bytes,
    indexed: Sequence[ArticleInfo],
    max_bytes: int,
    similar: SimilarArticles | None = None,
    limits: ExtractLimits | None = None,
) -> AddedArticle:
    """An uploaded or local file (.md, .txt, .html, .pdf, .docx) checked and written into the corpus.

    Markdown and text are kept as they are; other documents are converted to Markdown with
    front matter. The same file name with new content replaces the old version.
    """
    if len(data) > max_bytes:
        raise IngestError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    name = safe_filename(filename, UPLOAD_SUFFIXES)
    suffix = Path(name).suffix
    if suffix in ARTICLE_SUFFIXES:
        try:
            if is_legacy_text(data):
                # Text saved in an older charset: convert it. A guess needs a few paragraphs to be
                # right; a short text is most likely Windows-1252 (which includes Latin-1's letters).
                legacy = decode_html(data) if len(data) >= 2000 else data.decode("cp1252", errors="replace")
                data = legacy.encode("utf-8")
            text = decode_article_bytes(data)
        except (ArticleError, ExtractionError) as exc:
            raise IngestError(f"{name} cannot be read as an article: {exc}") from None
        return save_article(corpus_dir, name, text, indexed, similar, source=name)
    try:
        # A child process with capped memory and time: a document bomb cannot take the bot down.
        extracted = extract_bounded(suffix, data, "", limits or ExtractLimits(max_bytes=max_bytes), filename=name)
    except ExtractionError as exc:
        raise IngestError(f"{name}: {exc}") from None
    markdown_name = f"{Path(name).stem}.md"
    return save_article(corpus_dir, markdown_name, article_markdown(extracted, fetched=today()), indexed, similar, source=name)


def is_legacy_text(data: bytes) -> bool:
    """True for text that is not UTF-8 but has no NUL bytes (so not binary): an older 8-bit charset."""
    if b"\x00" in data[:65536]:
        return False
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return True
    return False


def add_url(
    url: str,
    corpus_dir: Path,
    indexed: Sequence[ArticleInfo],
    fetcher: Fetcher,
    similar: SimilarArticles | None = None,
    limits: ExtractLimits | None = None,
) -> AddedArticle:
    """Fetch a page, extract its article and write it into the corpus; the same URL again replaces it if it changed."""
    try:
        normal = normalize_url(url)
        page = fetcher.fetch(normal)
    except (UrlRefused, FetchError) as exc:
        raise IngestError(str(exc)) from None
    limits = limits or ExtractLimits(max_bytes=fetcher.limits.max_bytes)
    if not page.body.strip():
        raise IngestError(f"nothing was added from {normal}: the page is empty")
    try:
        if page.kind == "html":
            extracted = extract_bounded("html", page.body, page.url, limits)
        elif page.kind == "pdf":
            extracted = extract_bounded("pdf", page.body, page.url, limits)
        else:
            extracted = plain_text_article(page.body, page.charset, page.url, limits)
    except ExtractionError as exc:
        raise IngestError(f"nothing was added from {normal}: {exc}") from None
    corpus_dir = Path(corpus_dir)
    markdown = article_markdown(extracted, normal, today())
    with corpus_lock(corpus_dir):
        # The same URL saved by an add whose indexing failed counts too: it is replaced, not added again.
        known, unindexed = saved_articles(corpus_dir, indexed)
        previous = next((i for i in known if i.url and (same_page(i.url, normal) or same_page(i.url, page.url))), None)
        existing_file = article_file(corpus_dir, previous.article_id) if previous else None
        if existing_file is not None:
            name = str(existing_file.relative_to(corpus_dir))
        else:
            stem = slug(extracted.title) or slug(page.url.rstrip("/").rsplit("/", 1)[-1]) or "article"
            name = free_name(corpus_dir, stem)
        return save_article(corpus_dir, name, markdown, known, similar, replacing=previous, source=normal, unindexed=unindexed)


def plain_text_article(body: bytes, charset: str, url: str, limits: ExtractLimits) -> ExtractedArticle:
    """A text/plain page as an article: its first line is the title when short enough."""
    try:
        text = body.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        text = body.decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n").strip()
    if len(text.split()) < limits.min_words:
        raise ExtractionError(f"the page has almost no text ({len(text.split())} words)")
    first, _, rest = text.partition("\n")
    if len(first) <= 150 and rest.strip():
        return ExtractedArticle(title=first.strip(" #"), text=rest.strip(), url=url)
    return ExtractedArticle(title=url.rstrip("/").rsplit("/", 1)[-1] or url, text=text, url=url)


def describe_not_indexed(saved: str, reason: str, remedy: str = "run `policybot index`") -> str:
    """Plain words for an add whose file (`saved`) was written into the corpus but whose indexing failed."""
    return f"Saved {saved} but it is not indexed yet: {reason}; {remedy}."


def describe_added(added: AddedArticle, passages: int) -> str:
    """One line for the person who added an article: what, how big, what it replaced, where it is."""
    what = f"“{added.article.title}” ({passages} passage{'s' if passages != 1 else ''})"
    if added.replaced is None:
        line = f"Added {what}"
    elif added.replaced.title == added.article.title:
        line = f"Updated {what}, replacing the earlier version"
    else:
        line = f"Added {what}, replacing “{added.replaced.title}” (same {'URL' if added.source.startswith('http') else 'file'})"
    return f"{line} as {added.path.name}."


def remove_article_file(corpus_dir: Path, article_id: str, trash_dir: Path) -> Path:
    """Move the article's file out of the corpus into the trash folder (nothing is deleted); returns where it went."""
    path = article_file(Path(corpus_dir), article_id)
    if path is None:
        raise LookupError(f"no file for article {article_id!r} in {corpus_dir}")
    trash_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    destination = trash_dir / f"{stamp}-{path.name}"
    # shutil.move, not os.replace: the trash folder may be on another file system.
    shutil.move(path, destination)
    return destination


@dataclass(frozen=True)
class ArticleAdder:
    """add_url and add_article_file bound to one corpus folder, knowledge base, fetcher and limits.

    The composition root (bot/services.py) builds one; the CLI, the feed checks and /add use it.
    """

    corpus_dir: Path
    knowledge: KnowledgeBase
    fetcher: Fetcher
    limits: ExtractLimits
    max_article_bytes: int

    def add_url(self, url: str) -> AddedArticle:
        """Fetch a page and write its article into the corpus (not indexed yet)."""
        return add_url(url, self.corpus_dir, self.knowledge.articles, self.fetcher, self.knowledge.similar_articles, self.limits)

    def add_file(self, filename: str, data: bytes) -> AddedArticle:
        """Check an uploaded or local file and write it into the corpus (not indexed yet)."""
        return add_article_file(
            self.corpus_dir, filename, data, self.knowledge.articles, self.max_article_bytes, self.knowledge.similar_articles, self.limits
        )
