"""What every extractor shares: the result and limit types, size checks and tidying of text and metadata."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

DOCUMENT_SUFFIXES = (".html", ".htm", ".pdf", ".docx")
KINDS = ("html", "pdf", "docx")


class ExtractionError(ValueError):
    """A document with no usable article; the message says why in plain words."""


@dataclass(frozen=True)
class ExtractedArticle:
    """The article found in a document: its text (paragraphs separated by blank lines) and metadata."""

    title: str
    text: str
    author: str = ""
    published: str = ""  # YYYY-MM-DD or ""
    site: str = ""
    url: str = ""


@dataclass(frozen=True)
class ExtractLimits:
    """How much a document may cost to read before it is refused."""

    max_bytes: int = 10 * 2**20
    max_pdf_pages: int = 300
    max_unpacked_bytes: int = 50 * 2**20
    seconds: float = 30.0
    memory_bytes: int = 1 * 2**30
    min_words: int = 40


# ---------------------------------------------------------------------------------------------
# Shared helpers


_WORD = re.compile(r"\w+")
# Unicode Cc less \t \n \r (as in index.indexing.corpus): text with many of these is binary data.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MANY_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def word_count(text: str) -> int:
    """Words as the extraction benchmark counts them: runs of \\w characters."""
    return len(_WORD.findall(text))


def human_size(num_bytes: float) -> str:
    """Bytes as the user's settings show them: '1 GB', '50 MB', '1.5 MB' (powers of 1024)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.3g} {unit}"
    return f"{int(num_bytes)} bytes"


def check_size(num_bytes: int, limits: ExtractLimits) -> None:
    if num_bytes > limits.max_bytes:
        raise ExtractionError(f"the file is {human_size(num_bytes)}; the limit is {human_size(limits.max_bytes)}")


def tidy(text: str) -> str:
    """NFC, no control characters, no trailing spaces, paragraphs separated by exactly one blank line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = CONTROL_CHARS.sub("", text.replace("\x0c", "\n"))
    text = _TRAILING_SPACE.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


def one_line(value: Any, limit: int = 300) -> str:
    """A metadata value as one clean line ('' for None), cut at `limit` characters."""
    if value is None:
        return ""
    line = " ".join(CONTROL_CHARS.sub(" ", str(value)).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "\u2026"


def iso_date(value: Any) -> str:
    """'2019-11-18' from a date string or datetime, '' when it is not one."""
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        try:
            return value.strftime("%Y-%m-%d")
        except ValueError:  # years before 1000 and similar oddities
            return ""
    text = str(value).strip()[:10]
    try:
        return date.fromisoformat(text).isoformat() if _DATE.fullmatch(text) else ""
    except ValueError:  # '2019-13-45'
        return ""


def first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return one_line(line, limit=200)
    return ""


def without_title_heading(text: str, title: str) -> str:
    """The text without a first heading that repeats the title: the title is kept apart, as in corpus files."""
    first, _, rest = text.partition("\n\n")
    if title and first.startswith("#") and " ".join(first.lstrip("#").split()).casefold() == " ".join(title.split()).casefold():
        return rest
    return text
