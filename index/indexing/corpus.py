"""Read articles from the corpus folder: Markdown with YAML front matter, or plain text."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from index.indexing.chunking import lines_are_paragraphs
from index.types import Article, SkippedFile

ARTICLE_SUFFIXES = (".md", ".markdown", ".txt")
DEFAULT_MAX_ARTICLE_BYTES = 10 * 1024 * 1024
FRONT_MATTER_FIELDS = ("title", "url", "author", "published", "source")

# Unicode category Cc (U+0000-U+001F, U+007F-U+009F) less \t \n \f \r: one regex scan instead of a
# unicodedata call per character, which made `policybot index` on an unchanged corpus slow.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"\A[ \t]*#[ \t]+(?P<title>[^\n]+?)[ \t#]*(?:\n|\Z)")
# A .txt's first line is its title when it reads as one: short, with letters, not ending like a
# sentence or a lead-in ("Mr. President,"), a paragraph of its own, and followed by the text.
_FIRST_LINE = re.compile(r"[ \t]*(?P<title>[^\n]{1,120}?)[ \t]*\n")
_NOT_TITLE_ENDINGS = (".", ",", ";", ":", "\u2026", "-", "\u2013", "\u2014")
# A closing "By Jane Doe" line is a byline (metadata), not body text.
_TRAILING_BYLINE = re.compile(r"\n[ \t]*(?:[*_]{0,2})By[ \t]+(?P<author>[^\n]{2,80}?)(?:[*_]{0,2})[ \t]*\s*\Z")


class ArticleError(ValueError):
    """A file that cannot be read as an article; the message says why in plain words."""


@dataclass(frozen=True)
class CorpusScan:
    """The readable articles of a corpus folder and the files skipped, with reasons."""

    articles: list[Article]
    skipped: list[SkippedFile]
    # Paths (as in `skipped`) of links that lead outside the corpus: unlike a file that became
    # unreadable, whose last good version stays indexed, their articles leave the index.
    outside_links: frozenset[str] = frozenset()


def article_id_for(path: Path, corpus_dir: Path) -> str:
    """A stable id from the file's path in the corpus: lower-case, without the suffix."""
    relative = path.relative_to(corpus_dir).with_suffix("")
    slug = re.sub(r"[^a-z0-9/]+", "-", relative.as_posix().lower()).strip("-/")
    return slug or "article"


def content_hash(*parts: str) -> str:
    """SHA-256 of the parts; used to skip articles whose content did not change."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def decode_article_bytes(raw: bytes) -> str:
    """Decode a file's bytes as UTF-8 text, refusing binary data with a reason."""
    if not raw.strip():
        raise ArticleError("empty file")
    if b"\x00" in raw[:65536]:
        raise ArticleError("binary file (contains NUL bytes), not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArticleError(f"not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    controls = len(_CONTROL_CHARS.findall(text, 0, 65536))
    if controls > max(8, len(text[:65536]) // 100):
        raise ArticleError("binary file (too many control characters), not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_front_matter(text: str) -> tuple[dict, str]:
    """Split YAML front matter from the body; raise ArticleError when it is malformed."""
    if not text.startswith("---"):
        return {}, text
    first_line_end = text.find("\n")
    if first_line_end == -1 or text[:first_line_end].strip() != "---":
        return {}, text
    closing = _FRONT_MATTER_END.search(text, first_line_end + 1)
    if closing is None:
        raise ArticleError("broken front matter: no closing '---' line")
    block = text[first_line_end + 1 : closing.start()]
    try:
        data = yaml.safe_load(block) if block.strip() else {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ArticleError(f"broken front matter{line}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ArticleError("broken front matter: expected 'key: value' lines")
    body = text[closing.end() :]
    return data, body.lstrip("\n")


def _field(front: dict, name: str) -> str:
    value = front.get(name)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ArticleError(f"broken front matter: '{name}' must be a single value")
    return " ".join(str(value).split())


def _looks_like_name(author: str) -> bool:
    """'Jane Doe', 'J. R. Smith and Ann Lee' -- not a closing sentence such as 'By contrast, Seoul lags.'"""
    words = author.replace(",", " ").split()
    connectors = {"and", "&", "de", "del", "der", "van", "von", "da", "di", "la", "le", "bin", "al"}
    return (
        0 < len(words) <= 10
        and not any(ch.isdigit() for ch in author)
        and author.rstrip()[-1:] not in (".", "!", "?", ":", ";")
        and all(not w[0].islower() or w.lower() in connectors for w in words)
    )


def _title_line(body: str) -> re.Match[str] | None:
    """A plain text's first line when it is a title (see _FIRST_LINE), else None."""
    line = _FIRST_LINE.match(body)
    if line is None or not body[line.end() :].strip():
        return None
    title = line.group("title")
    if title.endswith(_NOT_TITLE_ENDINGS) or not any(ch.isalpha() for ch in title):
        return None
    if re.match(r"By[ \t]", title) and _looks_like_name(title[3:]):
        return None  # a byline, not a title
    # A paragraph of its own (a blank line after it, or text one paragraph a line), not the first
    # line of a hard-wrapped paragraph, which is short and often ends without a full stop too.
    if not re.match(r"[ \t]*\n", body[line.end() :]) and not lines_are_paragraphs(body):
        return None
    return line


def parse_article(text: str, article_id: str, fallback_title: str, path: str = "", markdown: bool = True) -> Article:
    """Build an Article from decoded file text; the title falls back to the first heading (in a .txt, a first
    line that is a title), then the file name. A closing "By …" line gives the author; neither is body text."""
    front, body = split_front_matter(text) if markdown else ({}, text)
    body = body.lstrip("\n")
    meta = {name: _field(front, name) for name in FRONT_MATTER_FIELDS}
    heading = _HEADING.match(body) if markdown else _title_line(body)
    if heading:
        if not meta["title"]:
            meta["title"] = heading.group("title").strip()
        body = body[heading.end() :]
    byline = _TRAILING_BYLINE.search(body.rstrip())
    if byline and _looks_like_name(byline.group("author")):
        if not meta["author"]:
            meta["author"] = byline.group("author").strip()
        body = body.rstrip()[: byline.start()]
    body = body.strip()
    if not body:
        raise ArticleError("empty: no article text after the front matter")
    title = meta["title"] or fallback_title
    # How the text divides into paragraphs is indexed too (chunks, citations): a new reading re-indexes it.
    layout = ("one paragraph a line",) if lines_are_paragraphs(body) else ()
    digest = content_hash(body, *(meta[name] for name in FRONT_MATTER_FIELDS), title, *layout)
    return Article(
        article_id=article_id,
        title=title,
        text=body,
        content_hash=digest,
        path=path,
        url=meta["url"],
        author=meta["author"],
        published=meta["published"],
        source=meta["source"],
    )


def title_from_filename(path: Path) -> str:
    """'north-korea_policy.md' -> 'North korea policy'."""
    words = re.sub(r"[-_]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


class OutsideLinkError(ArticleError):
    """A symbolic link in the corpus that leads outside the corpus folder: never read."""


def real_path_inside(path: Path, corpus_dir: Path) -> Path:
    """The file's real location, or OutsideLinkError when a symbolic link leads out of the corpus folder.

    A link that stays inside the corpus folder (to a file kept in a hidden folder, say) is read
    like the file it names. One leading anywhere else (/etc/passwd, the bot's .env) is never
    read, so no member can have the bot quote it.
    """
    real = path.resolve()
    root = corpus_dir.resolve()
    if real != root and root not in real.parents:
        # The target is not named: skipped-file reasons are shown in Discord too.
        raise OutsideLinkError("a symbolic link leading outside the corpus folder: not read")
    return real


def read_article(path: Path, corpus_dir: Path, max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> Article:
    """Read one corpus file as an Article or raise ArticleError with the reason."""
    # The resolved path is opened without following links: a link swapped in after the check fails.
    path_read = real_path_inside(path, corpus_dir)
    size = path_read.stat().st_size
    if size > max_bytes:
        # MB as in the MAX_ARTICLE_MB setting (2**20 bytes), so the limit shows as the number the user set.
        raise ArticleError(f"too large ({size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.1f} MB)")
    descriptor = os.open(path_read, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with open(descriptor, "rb") as handle:
        raw = handle.read()
    text = decode_article_bytes(raw)
    return parse_article(
        text,
        article_id=article_id_for(path, corpus_dir),
        fallback_title=title_from_filename(path),
        path=str(path.relative_to(corpus_dir)),
        markdown=path.suffix.lower() != ".txt",
    )


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Article files under the corpus folder, sorted; hidden files and folders are ignored.

    Symbolic links to files are listed (read_article refuses those leading outside the corpus);
    linked folders are never entered.
    """
    return _walk_corpus(corpus_dir)[0]


def _walk_corpus(corpus_dir: Path) -> tuple[list[Path], list[Path]]:
    """Article files, and symbolic links to folders outside the corpus, under the corpus folder; sorted."""
    found, linked_folders = [], []
    # rglob does not descend into linked folders (Python 3.11 to 3.13): a link to /etc reads nothing.
    for path in corpus_dir.rglob("*"):
        relative = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink() and path.is_dir():
            try:
                real_path_inside(path, corpus_dir)
            except OutsideLinkError:
                linked_folders.append(path)
        elif path.suffix.lower() in ARTICLE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found), sorted(linked_folders)


def scan_corpus(corpus_dir: Path, max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> CorpusScan:
    """Read every article in the folder; unreadable files are skipped with a reason, never fatal."""
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist")
    articles: list[Article] = []
    skipped: list[SkippedFile] = []
    seen: dict[str, str] = {}
    files, linked_folders = _walk_corpus(corpus_dir)
    outside = {str(path) for path in linked_folders}
    for path in linked_folders:
        skipped.append(SkippedFile(str(path), "a symbolic link to a folder outside the corpus folder: not read"))
    for path in files:
        shown = str(path)
        try:
            article = read_article(path, corpus_dir, max_bytes)
        except OutsideLinkError as exc:
            skipped.append(SkippedFile(shown, str(exc)))
            outside.add(shown)
            continue
        except ArticleError as exc:
            skipped.append(SkippedFile(shown, str(exc)))
            continue
        except OSError as exc:
            skipped.append(SkippedFile(shown, f"cannot be read: {exc.strerror or exc}"))
            continue
        if article.article_id in seen:
            skipped.append(
                SkippedFile(
                    shown,
                    f"not indexed: same article id '{article.article_id}' as {seen[article.article_id]} "
                    "(ids ignore the suffix); rename or remove one of the two files",
                )
            )
            continue
        seen[article.article_id] = shown
        articles.append(article)
    return CorpusScan(articles, skipped, frozenset(outside))
