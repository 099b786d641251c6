"""Read articles from the corpus folder: Markdown with YAML front matter, or plain text."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from index.types import Article, SkippedFile

ARTICLE_SUFFIXES = (".md", ".markdown", ".txt")
DEFAULT_MAX_ARTICLE_BYTES = 10 * 1024 * 1024
FRONT_MATTER_FIELDS = ("title", "url", "author", "published", "source")

# Unicode category Cc (U+0000-U+001F, U+007F-U+009F) less \t \n \f \r: one regex scan instead of a
# unicodedata call per character, which made `policybot index` on an unchanged corpus slow.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"\A[ \t]*#[ \t]+(?P<title>[^\n]+?)[ \t#]*(?:\n|\Z)")
# A closing "By Jane Doe" line is a byline (metadata), not body text.
_TRAILING_BYLINE = re.compile(r"\n[ \t]*(?:[*_]{0,2})By[ \t]+(?P<author>[^\n]{2,80}?)(?:[*_]{0,2})[ \t]*\s*\Z")


class ArticleError(ValueError):
    """A file that cannot be read as an article; the message says why in plain words."""


@dataclass(frozen=True)
class CorpusScan:
    """The readable articles of a corpus folder and the files skipped, with reasons."""

    articles: list[Article]
    skipped: list[SkippedFile]


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


def parse_article(text: str, article_id: str, fallback_title: str, path: str = "", markdown: bool = True) -> Article:
    """Build an Article from decoded file text; the title falls back to the first heading, then the file name."""
    front, body = split_front_matter(text) if markdown else ({}, text)
    body = body.lstrip("\n")
    meta = {name: _field(front, name) for name in FRONT_MATTER_FIELDS}
    heading = _HEADING.match(body) if markdown else None
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
    digest = content_hash(body, *(meta[name] for name in FRONT_MATTER_FIELDS), title)
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


def read_article(path: Path, corpus_dir: Path, max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> Article:
    """Read one corpus file as an Article or raise ArticleError with the reason."""
    size = path.stat().st_size
    if size > max_bytes:
        # MB as in the MAX_ARTICLE_MB setting (2**20 bytes), so the limit shows as the number the user set.
        raise ArticleError(f"too large ({size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.1f} MB)")
    text = decode_article_bytes(path.read_bytes())
    return parse_article(
        text,
        article_id=article_id_for(path, corpus_dir),
        fallback_title=title_from_filename(path),
        path=str(path.relative_to(corpus_dir)),
        markdown=path.suffix.lower() != ".txt",
    )


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Article files under the corpus folder, sorted; hidden files and folders are ignored."""
    found = []
    for path in corpus_dir.rglob("*"):
        relative = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in ARTICLE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def scan_corpus(corpus_dir: Path, max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> CorpusScan:
    """Read every article in the folder; unreadable files are skipped with a reason, never fatal."""
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist")
    articles: list[Article] = []
    skipped: list[SkippedFile] = []
    seen: dict[str, str] = {}
    for path in corpus_files(corpus_dir):
        shown = str(path)
        try:
            article = read_article(path, corpus_dir, max_bytes)
        except ArticleError as exc:
            skipped.append(SkippedFile(shown, str(exc)))
            continue
        except OSError as exc:
            skipped.append(SkippedFile(shown, f"cannot be read: {exc.strerror or exc}"))
            continue
        if article.article_id in seen:
            skipped.append(SkippedFile(shown, f"same article id '{article.article_id}' as {seen[article.article_id]}"))
            continue
        seen[article.article_id] = shown
        articles.append(article)
    return CorpusScan(articles, skipped)
