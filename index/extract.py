"""Turn uploaded web pages, PDFs and Word documents into article text, safely.

Uploaded files are hostile until read: a page may hide text meant only for the bot, a PDF may
unpack to gigabytes, a .docx may be a zip bomb or carry an XML entity bomb. So:

* indexed text is data: HTML comments, scripts, styles and hidden elements are removed from
  the page before trafilatura looks for the article, and never reach the index;
* every size is bounded before it is reached (file bytes, PDF pages and unpacked streams,
  unpacked zip members), and `extract_bounded` reads the file in a child process with a
  memory and CPU limit and a wall-clock timeout, so a bomb costs a child process, not the bot;
* a file whose name and content disagree (a "report.pdf" that is a web page) is refused.

Run as `python -m index.extract`, the module is that child: it reads a JSON header line and the
file's bytes on stdin and writes one JSON object on stdout. It imports only the standard library
at import time; trafilatura, pypdf and python-docx are imported when a file of their kind is read.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

LOGGER = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = (".html", ".htm", ".pdf", ".docx")
KINDS = ("html", "pdf", "docx")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
# Unicode Cc less \t \n \r (as in index.corpus): text with many of these is binary data.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MANY_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def word_count(text: str) -> int:
    """Words as the extraction benchmark counts them: runs of \\w characters."""
    return len(_WORD.findall(text))


def _size(num_bytes: float) -> str:
    """Bytes as the user's settings show them: '1 GB', '50 MB', '1.5 MB' (powers of 1024)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.3g} {unit}"
    return f"{int(num_bytes)} bytes"


def _check_size(num_bytes: int, limits: ExtractLimits) -> None:
    if num_bytes > limits.max_bytes:
        raise ExtractionError(f"the file is {_size(num_bytes)}; the limit is {_size(limits.max_bytes)}")


def _tidy(text: str) -> str:
    """NFC, no control characters, no trailing spaces, paragraphs separated by exactly one blank line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL_CHARS.sub("", text.replace("\x0c", "\n"))
    text = _TRAILING_SPACE.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


def _one_line(value: Any, limit: int = 300) -> str:
    """A metadata value as one clean line ('' for None), cut at `limit` characters."""
    if value is None:
        return ""
    line = " ".join(_CONTROL_CHARS.sub(" ", str(value)).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "\u2026"


def _iso_date(value: Any) -> str:
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


# ---------------------------------------------------------------------------------------------
# Sniffing: does the content match the file name?


_BINARY_SIGNATURES = (
    (b"%PDF-", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-format (.doc) or password-protected Office file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"{\\rtf", "an RTF document"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
)
_KIND_NAMES = MappingProxyType({"html": "a web page", "pdf": "a PDF", "docx": "a Word document (.docx)"})
# Tags that appear near the top of any web page; a text file without one is not HTML.
_HTML_TAG = re.compile(
    r"<\s*(?:!doctype\s+html|html|head|body|meta|title|article|main|section|div|p|h[1-6]|table|span|a|br|ul|ol)\b",
    re.IGNORECASE,
)


def _kind_for(suffix_or_kind: str) -> str:
    """'html', 'pdf' or 'docx' from '.HTM', 'pdf', 'docx'...; ExtractionError for anything else."""
    name = suffix_or_kind.lower().lstrip(".")
    if name == "htm":
        name = "html"
    if name not in KINDS:
        accepted = ", ".join(DOCUMENT_SUFFIXES)
        what = f"'{suffix_or_kind}' files" if name else "files without an extension"
        raise ExtractionError(f"{what} cannot be read; accepted: {accepted}")
    return name


def _zip_names(data: bytes) -> list[str] | None:
    """Member names of a zip archive, or None when it cannot be opened as one."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return None


def _describe_zip(data: bytes) -> str:
    names = _zip_names(data)
    if names is None:
        return "a damaged ZIP archive"
    present = set(names)
    for member, what in (
        ("word/document.xml", "a Word document"),
        ("xl/workbook.xml", "an Excel workbook"),
        ("ppt/presentation.xml", "a PowerPoint presentation"),
        ("mimetype", "an OpenDocument file"),
    ):
        if member in present:
            return what
    return "a ZIP archive"


def _looks_like(data: bytes) -> str:
    """A short description of what the bytes are, for messages: 'a PDF', 'a web page', 'plain text'..."""
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return _describe_zip(data) if signature.startswith(b"PK") else what
    try:
        text = decode_html(data)
    except ExtractionError:
        return "binary data"
    if _HTML_TAG.search(text[:65536]):
        return "a web page"
    return "plain text"


def _mismatch(kind: str, data: bytes, filename: str, suffix: str) -> ExtractionError:
    called = f"the file is called {filename}" if filename else f"the file ends in {suffix}"
    return ExtractionError(f"{called} but is not {_KIND_NAMES[kind]} (it looks like {_looks_like(data)})")


def sniff(suffix: str, data: bytes, filename: str = "") -> None:
    """Raise ExtractionError when the content is not what the extension says ('x.pdf' that is a web page)."""
    kind = _kind_for(suffix)
    suffix = "." + suffix.lower().lstrip(".")
    if not data.strip():
        raise ExtractionError(f"the file {filename} is empty" if filename else "the file is empty")
    if kind == "pdf":
        if not data.startswith(b"%PDF-"):
            raise _mismatch(kind, data, filename, suffix)
    elif kind == "docx":
        if not data.startswith(b"PK\x03\x04") or "word/document.xml" not in (_zip_names(data) or ()):
            raise _mismatch(kind, data, filename, suffix)
    else:
        if any(data.startswith(signature) for signature, _ in _BINARY_SIGNATURES):
            raise _mismatch(kind, data, filename, suffix)
        try:
            text = decode_html(data)
        except ExtractionError:
            raise _mismatch(kind, data, filename, suffix) from None
        if not _HTML_TAG.search(text[:65536]):
            raise _mismatch(kind, data, filename, suffix)


# ---------------------------------------------------------------------------------------------
# HTML


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-z0-9_.:-]{1,40})"""
    rb"""|<\?xml[^>]{0,200}?encoding\s*=\s*["']([a-z0-9_.:-]{1,40})""",
    re.IGNORECASE,
)
# As browsers do (WHATWG Encoding standard): these labels mean the superset that pages actually use.
_CHARSET_ALIASES = MappingProxyType({
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "ascii": "cp1252", "us-ascii": "cp1252", "iso-8859-9": "cp1254", "latin5": "cp1254",
    "iso-8859-11": "cp874", "tis-620": "cp874", "gb2312": "gb18030", "gbk": "gb18030",
    "euc-kr": "cp949", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    # A page read as bytes cannot be UTF-16 without a BOM; browsers treat the label as UTF-8.
    "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8", "utf-16-le": "utf-8", "utf-16-be": "utf-8",
})
# 7-bit encodings (Python codec names) whose bytes are also valid UTF-8: the declaration must win for them.
_SEVEN_BIT_CHARSETS = ("iso2022", "utf-7", "hz")


def _declared_charset(data: bytes) -> str:
    """The Python codec named by a <meta charset> or <?xml encoding> near the top, or ''."""
    match = _DECLARED_CHARSET.search(data[:8192])
    if not match:
        return ""
    label = (match.group(1) or match.group(2)).decode("ascii").lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return ""


def decode_html(data: bytes) -> str:
    """Decode a web page: BOM, then UTF-8 when the bytes are valid UTF-8, then the declared charset, then a guess.

    Valid UTF-8 wins over a declared legacy charset because mislabelled UTF-8 pages are common
    and text in a legacy charset is almost never valid UTF-8 by accident.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding, errors="replace")
            break
    else:
        declared = _declared_charset(data)
        text = None
        if not declared.startswith(_SEVEN_BIT_CHARSETS):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if text is None:
            if b"\x00" in data[:65536]:
                raise ExtractionError("binary data (contains NUL bytes), not text")
            text = data.decode(declared or _guess_charset(data), errors="replace")
    sample = text[:65536]
    if "\x00" in sample or len(_CONTROL_CHARS.findall(sample)) > max(8, len(sample) // 100):
        raise ExtractionError("binary data (too many control characters), not text")
    return text


def _guess_charset(data: bytes) -> str:
    """charset_normalizer's best guess for undeclared, non-UTF-8 bytes; Windows-1252 as browsers default."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return "cp1252"
    best = from_bytes(data[:65536]).best()
    return best.encoding if best is not None else "cp1252"


_UNSEEN_TAGS = ("script", "style", "noscript", "template")
# Inline CSS that hides an element from readers; text only a machine would see is never indexed.
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)", re.IGNORECASE)
# Utility classes that hide an element on every screen (Bootstrap, Tailwind, WordPress, HTML5
# Boilerplate); stylesheets are not evaluated, so these conventions are all that can be known.
_HIDING_CLASSES = frozenset({
    "hidden", "d-none", "hide", "is-hidden", "invisible", "sr-only", "visually-hidden", "visuallyhidden", "screen-reader-text",
})
# ...unless a responsive class shows the element on some screens ("hidden md:block", "d-none d-lg-block").
_RESPONSIVE_CLASS = re.compile(r":|^d-(?:sm|md|lg|xl|xxl)-")
# Never dropped even when marked hidden: pages hide <body> until their scripts have run.
_STRUCTURE_TAGS = ("html", "head", "body")
_JSON_LD = "application/ld+json"
# A CommonMark backslash escape of an ASCII punctuation character.
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@dataclass(frozen=True)
class _HtmlVariant:
    """How extract_html reads a page; the defaults are the product, other values exist for the benchmark's ablations."""

    # Which unseen parts of the page are removed before extraction.
    comments: bool = True
    unseen_tags: bool = True
    hidden_attribute: bool = True
    aria_hidden: bool = True
    hidden_style: bool = True
    hiding_classes: bool = True
    # trafilatura's Markdown as it is, with emphasis marks, <u> tags and backslash escapes.
    inline_markup: bool = False
    # Keep a first heading that repeats the title (the title is metadata, kept apart).
    title_heading: bool = False


def _is_hidden(element, variant: _HtmlVariant) -> bool:
    """Hidden from every reader: the hidden attribute, aria-hidden, inline display:none, a hiding utility class."""
    if variant.hidden_attribute and element.get("hidden") is not None:
        return True
    if variant.aria_hidden and (element.get("aria-hidden") or "").strip().lower() == "true":
        return True
    style = element.get("style")
    if variant.hidden_style and style and _HIDDEN_STYLE.search(style):
        return True
    if variant.hidden_attribute and element.tag == "dialog" and element.get("open") is None:  # a closed dialog is not shown
        return True
    classes = (element.get("class") or "").split()
    return bool(
        variant.hiding_classes
        and _HIDING_CLASSES.intersection(classes)
        and not any(_RESPONSIVE_CLASS.search(name) for name in classes)
    )


def _remove_unseen(tree, variant: _HtmlVariant = _HtmlVariant(), keep_json_ld: bool = False) -> int:
    """Drop comments, scripts, styles, noscript, templates and hidden elements (their tail text stays); returns how many."""
    doomed = []
    for node in tree.iter():
        if not isinstance(node.tag, str):
            # Comments and processing instructions: never text a reader sees.
            if variant.comments and node.getparent() is not None:
                doomed.append(node)
            continue
        tag = node.tag.lower()
        if tag in _STRUCTURE_TAGS:
            continue
        if variant.unseen_tags and tag in _UNSEEN_TAGS:
            # JSON-LD is the publisher's metadata (author, date) for machines; it is read for the
            # metadata only and removed before the article text is extracted.
            if not (keep_json_ld and tag == "script" and (node.get("type") or "").strip().lower() == _JSON_LD):
                doomed.append(node)
        elif _is_hidden(node, variant):
            doomed.append(node)
    for node in doomed:
        parent = node.getparent()
        if parent is not None:
            _drop_keeping_tail(node, parent)
    return len(doomed)


def _drop_keeping_tail(node, parent) -> None:
    """Remove an element or comment; the text after it belongs to its parent and stays."""
    tail = node.tail
    previous = node.getprevious()
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(node)


# Phrases of pages that stand in front of an article; used only on short extractions.
_STAND_IN_SIGNS = (
    (
        "a paywall",
        re.compile(
            r"subscribe (?:now|today|to (?:continue|keep) reading|to read|for full access)|(?:already|become) a subscriber"
            r"|subscribers? only|to continue reading|(?:article|story|content) is (?:only )?(?:available|reserved|exclusive)"
            r" (?:to|for) (?:paying |our )?(?:subscribers|members)|start (?:your )?free trial|unlock (?:this|the full)"
            r" (?:article|story)|premium (?:article|content)|purchase a subscription",
            re.IGNORECASE,
        ),
    ),
    (
        "a login page",
        re.compile(
            r"(?:sign|log) ?in to (?:continue|read|view|access|your account)|forgot (?:your )?password"
            r"|(?:create|register) (?:an|your|a free) account|(?:email|username) (?:address )?and password"
            r"|remember me|not a member\?|please (?:sign|log) ?in",
            re.IGNORECASE,
        ),
    ),
    (
        "a cookie wall",
        re.compile(
            r"(?:we|this (?:web)?site) uses? cookies|accept (?:all )?cookies|cookie (?:policy|settings|preferences)"
            r"|manage (?:your )?(?:cookie|privacy|consent) (?:settings|preferences|choices)"
            r"|(?:consent to|agree to) (?:the|our) use of cookies|we value your privacy",
            re.IGNORECASE,
        ),
    ),
)
# An extraction this many times min_words or longer is an article even if a paragraph mentions cookies.
_STAND_IN_MAX_FACTOR = 5


def _stand_in_kind(text: str, limits: ExtractLimits) -> str:
    """'a paywall', 'a login page', 'a cookie wall' when a short text is mostly such notices, else ''."""
    total = word_count(text)
    if total >= _STAND_IN_MAX_FACTOR * limits.min_words:
        return ""
    for kind, sign in _STAND_IN_SIGNS:
        flagged = sum(word_count(p) for p in text.split("\n\n") if sign.search(p))
        if flagged and (total < limits.min_words or flagged * 2 >= total):
            return kind
    return ""


def _require_article(text: str, limits: ExtractLimits) -> None:
    words = word_count(text)
    kind = _stand_in_kind(text, limits)
    if kind:
        raise ExtractionError(
            f"the page looks like {kind}, not an article ({words} words of text) — "
            "save the article's full text and upload that instead"
        )
    if words < limits.min_words:
        raise ExtractionError(
            f"no article text found on the page ({words} words) — it may be behind a paywall or a login, "
            "need JavaScript to show its text, or not be an article"
        )


def extract_html(html: bytes | str, url: str = "", limits: ExtractLimits = ExtractLimits()) -> ExtractedArticle:
    """The article of a web page: title, author, date, site and main text in Markdown (trafilatura)."""
    return _extract_html(html, url, limits, _HtmlVariant())


def _extract_html(html: bytes | str, url: str, limits: ExtractLimits, variant: _HtmlVariant) -> ExtractedArticle:
    """extract_html in one of its variants, so the benchmark can measure what each choice costs."""
    if isinstance(html, bytes):
        _check_size(len(html), limits)
        html = decode_html(html)
    else:
        _check_size(len(html), limits)
    import trafilatura

    tree = trafilatura.load_html(html)
    if tree is None:
        raise ExtractionError("no article text found on the page (it is empty or not HTML)")
    _remove_unseen(tree, variant, keep_json_ld=True)
    meta = trafilatura.extract_metadata(tree, default_url=url or None)
    _remove_unseen(tree, variant)
    document = trafilatura.bare_extraction(
        tree,
        url=url or None,
        include_comments=False,
        include_tables=True,
        output_format="markdown",
        with_metadata=False,
    )
    text = _markdown_text(document.body, variant.inline_markup) if document is not None else ""
    title = _one_line(meta.title)
    if not variant.title_heading:
        text = _without_title_heading(text, title)
    _require_article(text, limits)
    return ExtractedArticle(
        title=title,
        text=text,
        author=_one_line(meta.author),
        published=_iso_date(meta.date),
        site=_one_line(meta.sitename),
        url=url or _one_line(meta.url, limit=2000),
    )


def _without_title_heading(text: str, title: str) -> str:
    """The text without a first heading that repeats the title: the title is kept apart, as in corpus files."""
    first, _, rest = text.partition("\n\n")
    if title and first.startswith("#") and " ".join(first.lstrip("#").split()).casefold() == " ".join(title.split()).casefold():
        return rest
    return text


def _markdown_text(body, inline_markup: bool = False) -> str:
    """trafilatura's Markdown (headings, lists, tables, blank lines between paragraphs) without inline markup.

    Bold, italics, underline (<u>) and strike-through marks and the backslash escapes that
    protect literal '*', '_' or '[' are noise in indexed and quoted text, and cost F1 on the
    benchmark ('Director\\_Oh' reads as two words); see docs/extraction.md.
    """
    from lxml import etree
    from trafilatura.xml import xmltotxt

    if inline_markup:
        return _tidy(xmltotxt(body, include_formatting=True))
    etree.strip_tags(body, "hi", "del")
    return _tidy(_MARKDOWN_ESCAPE.sub(r"\1", xmltotxt(body, include_formatting=True)))


# ---------------------------------------------------------------------------------------------
# PDF


_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"}
)
_PAGE_NUMBER = re.compile(
    r"(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?|[-\u2013\u2014]\s*\d{1,4}\s*[-\u2013\u2014]", re.IGNORECASE
)
# A line that starts a list item: it starts a new paragraph even after a full-width line.
_ITEM_START = re.compile(r"(?:[\u2022\u25cf\u25aa\u2023\u2043\u25e6*\-\u2013]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
_SENTENCE_END = re.compile(r"[.!?:;\"'\u201d\u2019)\]]$")
_PDF_JUNK_TITLE = re.compile(
    r"^(?:untitled|microsoft (?:word|powerpoint) - .*|.*\.(?:docx?|pdf|indd|qxd|rtf|txt))$", re.IGNORECASE
)


def _pdf_configuration(limits: ExtractLimits) -> dict[str, Any]:
    """pypdf limits for this read: no stream may unpack to more than max_unpacked_bytes, no external programs."""
    unpacked = limits.max_unpacked_bytes
    return {
        "maximum_declared_stream_length": unpacked,
        "array_based_stream_maximum_output_length": unpacked,
        "jbig2_maximum_output_length": unpacked,
        "lzw_maximum_output_length": unpacked,
        "run_length_maximum_output_length": unpacked,
        "zlib_maximum_output_length": unpacked,
        "brotli_maximum_output_length": unpacked,
        "image_maximum_buffer_size": unpacked,
        "stream_decoding_work_maximum_length": 2 * unpacked,
        "xfa_decoding_work_maximum_length": 2 * unpacked,
        # pypdf would run the jbig2dec program for JBIG2 images; a reader of text needs no programs.
        "jbig2dec_binary": None,
    }


def extract_pdf(data: bytes, limits: ExtractLimits = ExtractLimits()) -> ExtractedArticle:
    """The text of a PDF's pages as paragraphs; refuses encrypted PDFs, too many pages and compression bombs."""
    _check_size(len(data), limits)
    import pypdf
    from pypdf.errors import LimitReachedError

    try:
        with pypdf.apply_configuration(**_pdf_configuration(limits)):
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise ExtractionError(
                    "the PDF is encrypted (password-protected or locked against copying); "
                    "save or print an unprotected copy and upload that"
                )
            declared = _declared_page_count(reader)
            if declared > limits.max_pdf_pages:
                raise ExtractionError(f"the PDF has {declared} pages; the limit is {limits.max_pdf_pages}")
            pages = reader.pages
            if len(pages) > limits.max_pdf_pages:
                raise ExtractionError(f"the PDF has {len(pages)} pages; the limit is {limits.max_pdf_pages}")
            page_texts = []
            unpacked = 0
            for page in pages:
                page_text = page.extract_text() or ""
                unpacked += len(page_text)
                if unpacked > limits.max_unpacked_bytes:
                    raise ExtractionError(f"the PDF's text is larger than {_size(limits.max_unpacked_bytes)}")
                page_texts.append(page_text)
            info = reader.metadata
            meta_title = _pdf_info(info, "title")
            author = _pdf_info(info, "author")
            published = _pdf_created(info)
    except ExtractionError:
        raise
    except MemoryError:
        raise
    except LimitReachedError:
        raise ExtractionError(
            f"part of the PDF unpacks to more than {_size(limits.max_unpacked_bytes)} (a compression bomb?); not added"
        ) from None
    except RecursionError:
        raise ExtractionError("the PDF's structure is nested too deeply to read") from None
    except Exception as exc:  # pypdf raises many types for damaged files; the user needs one message
        raise ExtractionError(f"the PDF is damaged and cannot be read ({type(exc).__name__}: {_one_line(exc, 120)})") from None
    text = _tidy(pdf_paragraphs(page_texts))
    words = word_count(text)
    if words < limits.min_words:
        raise ExtractionError(
            f"no text found in the PDF ({words} words) — it may be a scan (pages stored as images); "
            "only PDFs with a text layer can be read"
        )
    title = meta_title if meta_title and not _PDF_JUNK_TITLE.match(meta_title) else _first_line("\n".join(page_texts))
    return ExtractedArticle(title=title, text=text, author=author, published=published)


def _declared_page_count(reader) -> int:
    """The page count the PDF declares, read without walking the page tree (0 when absent)."""
    try:
        count = reader.trailer["/Root"]["/Pages"]["/Count"]
        return int(count)
    except Exception:  # a missing or odd /Count: the real page list is counted next
        return 0


def _pdf_info(info, name: str) -> str:
    try:
        return _one_line(getattr(info, name, None)) if info is not None else ""
    except Exception:  # undecodable metadata strings are not worth refusing the file
        return ""


def _pdf_created(info) -> str:
    try:
        return _iso_date(info.creation_date) if info is not None else ""
    except Exception:  # malformed dates ("D:2019'") raise in pypdf
        return ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return _one_line(line, limit=200)
    return ""


def pdf_paragraphs(page_texts: list[str]) -> str:
    """Page texts as paragraphs: lines of a paragraph joined, hyphenated line breaks mended, page numbers dropped.

    pypdf gives one line per printed line and rarely a blank line between paragraphs. A paragraph
    ends at a blank line, at a line clearly shorter than the text width (a paragraph's last line,
    a heading), or before a list item; a paragraph cut by a page break continues on the next page.
    """
    pages = [[line.strip() for line in _tidy_pdf_text(page).split("\n")] for page in page_texts]
    pages = [_without_page_numbers(lines) for lines in pages]
    lengths = sorted(len(line) for lines in pages for line in lines if line)
    if not lengths:
        return ""
    # The text width, in characters: most lines of body text are about this long.
    width = lengths[int(0.8 * (len(lengths) - 1))]
    paragraphs: list[list[str]] = []
    current: list[str] = []

    def close() -> None:
        if current:
            paragraphs.append(current.copy())
            current.clear()

    for lines in pages:
        for line in lines:
            if not line:
                close()
                continue
            if current and _ITEM_START.match(line):
                close()
            current.append(line)
            # A paragraph's last line ends a sentence short of the right margin (ragged-right lines
            # vary by about a tenth); a heading is short and usually has no full stop.
            if len(line) < (0.85 if _SENTENCE_END.search(line) else 0.7) * width:
                close()
        # Carry an unfinished sentence over the page break; anything else ends with its page.
        if current and _SENTENCE_END.search(current[-1]):
            close()
    close()
    return "\n\n".join(_join_lines(lines) for lines in paragraphs)


def _tidy_pdf_text(text: str) -> str:
    return _CONTROL_CHARS.sub("", text.translate(_LIGATURES).replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n"))


def _without_page_numbers(lines: list[str]) -> list[str]:
    """Drop a bare page number ('12', 'Page 3 of 9', '- 4 -') at the top or bottom of a page."""
    content = [index for index, line in enumerate(lines) if line]
    edges = {content[0], content[-1]} if content else set()
    return [line for index, line in enumerate(lines) if not (index in edges and _PAGE_NUMBER.fullmatch(line))]


def _join_lines(lines: list[str]) -> str:
    """One paragraph from its printed lines: 'inter-' + 'national' -> 'international', else a space."""
    joined = lines[0]
    for line in lines[1:]:
        if joined.endswith("\u00ad"):
            joined = joined[:-1] + line
        elif len(joined) > 1 and joined[-1] == "-" and joined[-2].isalpha() and line[:1].islower():
            joined = joined[:-1] + line
        else:
            joined = f"{joined} {line}"
    return " ".join(joined.split())


# ---------------------------------------------------------------------------------------------
# DOCX


_MAX_ZIP_ENTRIES = 5000
# A member may unpack to at most this many times its packed size (past _RATIO_FREE_BYTES):
# Word's XML packs about 5-30 to 1; zip bombs pack thousands to 1.
_MAX_COMPRESSION_RATIO = 100
_RATIO_FREE_BYTES = 2**20
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_XML_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)""")
_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.IGNORECASE)
# Placeholder authors that Word, templates and python-docx fill in.
_DOCX_JUNK_AUTHORS = frozenset(
    {"administrator", "admin", "user", "windows user", "microsoft office user", "owner", "python-docx"}
)


def _check_docx_package(data: bytes, limits: ExtractLimits) -> None:
    """Refuse zip bombs, absurd archives and XML with DTDs (entity bombs, external entities) before python-docx parses it."""
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise ExtractionError(f"the Word document is damaged (not a readable zip archive: {_one_line(exc, 80)})") from None
    with archive:
        members = archive.infolist()
        if len(members) > _MAX_ZIP_ENTRIES:
            raise ExtractionError(f"the Word document has {len(members)} parts; the limit is {_MAX_ZIP_ENTRIES}")
        names = {member.filename for member in members}
        if "word/document.xml" not in names:
            raise ExtractionError("the file is a zip archive but not a Word document (no word/document.xml)")
        unpacked = sum(member.file_size for member in members)
        if unpacked > limits.max_unpacked_bytes:
            raise ExtractionError(
                f"the Word document unpacks to {_size(unpacked)}; the limit is {_size(limits.max_unpacked_bytes)}"
            )
        for member in members:
            if member.flag_bits & 0x1:
                raise ExtractionError("the Word document is encrypted; save an unprotected copy and upload that")
            if member.file_size > _RATIO_FREE_BYTES and member.file_size > _MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
                ratio = member.file_size // max(member.compress_size, 1)
                raise ExtractionError(
                    f"a part of the Word document ({member.filename}) unpacks {ratio} times larger than it is packed "
                    "(a zip bomb?); not added"
                )
        try:
            content_types = _docx_content_types(archive)
            for member in members:
                if _parsed_as_xml(member.filename, content_types):
                    _check_xml_part(member.filename, archive.read(member))
        except ExtractionError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError, KeyError) as exc:
            raise ExtractionError(f"the Word document is damaged ({_one_line(exc, 80)})") from None


def _check_xml_part(name: str, xml: bytes) -> None:
    """Refuse an XML part that declares a DTD or entities, or is in an encoding the DTD check cannot read."""
    # Word writes UTF-8. Anything that does not start with an ASCII '<' (UTF-16 or -32, EBCDIC)
    # could spell '<!DOCTYPE' in bytes this check would not recognise, so it is refused.
    start = xml.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    if start and not start.startswith(b"<") or b"\x00" in start[:4]:
        raise ExtractionError(f"a part of the Word document ({name}) is in an unusual encoding; not added")
    declared = _XML_DECLARED_ENCODING.match(start[:200])
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
        raise ExtractionError(f"a part of the Word document ({name}) is in an unusual encoding; not added")
    lowered = xml.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise ExtractionError(
            f"a part of the Word document ({name}) declares XML entities (an entity bomb or external entity?); not added"
        )


def _docx_content_types(archive) -> tuple[dict[str, str], dict[str, str]]:
    """(defaults by extension, overrides by part name) from [Content_Types].xml, parsed only after its own check."""
    from lxml import etree

    try:
        raw = archive.read("[Content_Types].xml")
    except KeyError:
        raise ExtractionError("the Word document is damaged (no [Content_Types].xml)") from None
    _check_xml_part("[Content_Types].xml", raw)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ExtractionError(f"the Word document is damaged ([Content_Types].xml: {_one_line(exc, 80)})") from None
    defaults, overrides = {}, {}
    for element in root:
        tag = etree.QName(element).localname if isinstance(element.tag, str) else ""
        if tag == "Default":
            defaults[(element.get("Extension") or "").lower()] = (element.get("ContentType") or "").lower()
        elif tag == "Override":
            overrides[(element.get("PartName") or "").lstrip("/").lower()] = (element.get("ContentType") or "").lower()
    return defaults, overrides


def _parsed_as_xml(name: str, content_types: tuple[dict[str, str], dict[str, str]]) -> bool:
    """Whether python-docx may parse this member as XML: by its content type, or by name for .rels and .xml."""
    lowered = name.lower()
    if lowered.endswith((".xml", ".rels")):
        return True
    defaults, overrides = content_types
    content_type = overrides.get(lowered) or defaults.get(lowered.rpartition(".")[2], "")
    # Images (SVG included) are kept as bytes by python-docx, never parsed.
    return not content_type.startswith("image/") and (content_type.endswith("+xml") or content_type.endswith("/xml"))


def extract_docx(data: bytes, limits: ExtractLimits = ExtractLimits()) -> ExtractedArticle:
    """The text of a Word document: headings as '# ' lines, list items as '- ', tables row by row; hidden text left out."""
    _check_size(len(data), limits)
    _check_docx_package(data, limits)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        style_names = {style.style_id: style.name or "" for style in document.styles}
        blocks = list(_docx_blocks(document.element.body, style_names))
        properties = document.core_properties
        meta_title = _one_line(properties.title)
        author = _one_line(properties.author)
    except ExtractionError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # python-docx and lxml raise many types for damaged files
        reason = f"{type(exc).__name__}: {_one_line(exc, 120)}"
        raise ExtractionError(f"the Word document is damaged and cannot be read ({reason})") from None
    text = _tidy("\n\n".join(text for _, text in blocks))
    words = word_count(text)
    if words < limits.min_words:
        raise ExtractionError(f"the Word document has almost no text ({words} words)")
    headings = [text for style, text in blocks if style in ("title", "heading")]
    title = meta_title or (_first_line(headings[0]) if headings else "")
    text = _without_title_heading(text, title)
    if author.lower() in _DOCX_JUNK_AUTHORS:
        author = ""
    # The document's 'created' date is often a template's or an older copy's, so it is not used as the publication date.
    return ExtractedArticle(title=title, text=text, author=author)


def _docx_blocks(container, style_names: dict[str, str]):
    """(kind, text) for the paragraphs and tables of a body, in order; content controls are opened up."""
    for child in container:
        tag = child.tag
        if tag == f"{_W}p":
            block = _docx_paragraph(child, style_names)
            if block[1].strip():
                yield block
        elif tag == f"{_W}tbl":
            rows = []
            for row in child.iterchildren(f"{_W}tr"):  # a nested table's rows are read with its cell
                cells = [" ".join(_docx_run_text(p) for p in _cell_paragraphs(cell)) for cell in row.iterchildren(f"{_W}tc")]
                cells = [" ".join(cell.split()) for cell in cells if cell.strip()]
                if cells:
                    rows.append(" | ".join(cells))
            if rows:
                yield "table", "\n".join(rows)
        elif tag in (f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml"):
            yield from _docx_blocks(child, style_names)


def _cell_paragraphs(cell):
    """A table cell's paragraphs, nested tables included, text boxes left out (as in the body)."""
    for paragraph in cell.iter(f"{_W}p"):
        if not any(ancestor.tag == f"{_W}txbxContent" for ancestor in paragraph.iterancestors()):
            yield paragraph


def _docx_paragraph(paragraph, style_names: dict[str, str]) -> tuple[str, str]:
    text = _docx_run_text(paragraph).strip()
    properties = paragraph.find(f"{_W}pPr")
    style_id = ""
    is_list = False
    if properties is not None:
        style = properties.find(f"{_W}pStyle")
        style_id = style.get(f"{_W}val", "") if style is not None else ""
        is_list = properties.find(f"{_W}numPr") is not None
    style_name = style_names.get(style_id, style_id)
    heading = _HEADING_STYLE.fullmatch(style_name.strip())
    if style_name.strip().lower() == "title":
        return "title", f"# {text}"
    if heading:
        return "heading", f"{'#' * min(int(heading.group(1)) + 1, 6)} {text}"
    if is_list or style_name.lower().startswith("list"):
        return "item", f"- {text}"
    return "paragraph", text


def _docx_run_text(paragraph) -> str:
    """The visible text of a paragraph: no deleted revisions, no hidden (vanish) runs, no text boxes."""
    parts = []
    skip_inside = (f"{_W}del", f"{_W}moveFrom", f"{_W}txbxContent")
    for node in paragraph.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr", f"{_W}noBreakHyphen"):
        run = None
        ancestor = node.getparent()
        skipped = False
        while ancestor is not None and ancestor is not paragraph:
            if ancestor.tag in skip_inside:
                skipped = True
                break
            if run is None and ancestor.tag == f"{_W}r":
                run = ancestor
            ancestor = ancestor.getparent()
        if skipped or (run is not None and _run_is_hidden(run)):
            continue
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}tab":
            parts.append("\t")
        elif node.tag == f"{_W}noBreakHyphen":
            parts.append("-")
        else:
            parts.append("\n")
    return "".join(parts)


def _run_is_hidden(run) -> bool:
    """Word's hidden text (w:vanish): not printed or shown, so not indexed either."""
    vanish = run.find(f"{_W}rPr/{_W}vanish")
    return vanish is not None and vanish.get(f"{_W}val", "true").lower() not in ("0", "false", "off")


# ---------------------------------------------------------------------------------------------
# Dispatch, in this process or in a bounded child process


def _extract_kind(kind: str, data: bytes, url: str, limits: ExtractLimits) -> ExtractedArticle:
    if kind == "html":
        return extract_html(data, url, limits)
    article = extract_pdf(data, limits) if kind == "pdf" else extract_docx(data, limits)
    return dataclasses.replace(article, url=url) if url else article


def extract_document(filename: str, data: bytes, url: str = "", limits: ExtractLimits = ExtractLimits()) -> ExtractedArticle:
    """Read an uploaded file in this process by its suffix, after checking that its content matches the suffix."""
    kind = _kind_for(Path(filename).suffix)
    _check_size(len(data), limits)
    sniff(kind, data, filename=Path(filename).name)
    return _extract_kind(kind, data, url, limits)


def extract_bounded(
    kind: str, data: bytes, url: str, limits: ExtractLimits = ExtractLimits(), filename: str = ""
) -> ExtractedArticle:
    """extract_document in a child process limited to limits.memory_bytes and limits.seconds; blocks until done.

    `kind` is 'html', 'pdf' or 'docx' (a suffix such as '.htm' also works). Call it from a
    worker thread in async code: it waits for the child.
    """
    kind = _kind_for(kind)
    _check_size(len(data), limits)
    sniff(kind, data, filename=filename)
    header = json.dumps({"kind": kind, "url": url, "limits": dataclasses.asdict(limits)}).encode("utf-8")
    # -B: the child writes no bytecode files (it may not write files at all). The project root
    # as working directory makes `-m index.extract` importable even without an installed package.
    command = [sys.executable, "-B", "-m", "index.extract"]
    started = time.monotonic()
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        start_new_session=True,  # its own process group, so a kill reaches anything it started
    )
    try:
        output, errors = child.communicate(header + b"\n" + data, timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        _kill(child)
        child.communicate()
        raise ExtractionError(f"took longer than {limits.seconds:g} s to read; not added") from None
    finally:
        if child.poll() is None:  # an exception (KeyboardInterrupt...) while waiting: leave no child behind
            _kill(child)
            child.wait()
    return _child_result(child.returncode, output, errors, limits, time.monotonic() - started)


def _kill(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()


def _child_result(returncode: int, output: bytes, errors: bytes, limits: ExtractLimits, elapsed: float) -> ExtractedArticle:
    """The child's answer as an article, or the ExtractionError that explains why there is none."""
    memory_message = f"needed more than {_size(limits.memory_bytes)} of memory to read; not added"
    if returncode == 0:
        try:
            reply = json.loads(output)
        except ValueError:
            reply = {}
        if "article" in reply:
            return ExtractedArticle(**reply["article"])
        if "error" in reply:
            raise ExtractionError(reply["error"])
        if reply.get("failure") == "memory":
            raise ExtractionError(memory_message)
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise ExtractionError(f"took longer than {limits.seconds:g} s to read; not added")
    if b"MemoryError" in errors or b"Cannot allocate memory" in errors or b"std::bad_alloc" in errors:
        raise ExtractionError(memory_message)
    stderr_tail = errors[-2000:].decode("utf-8", "replace")
    LOGGER.warning("document reader exited with %s after %.1f s: %s", returncode, elapsed, stderr_tail)
    raise ExtractionError(f"the file could not be read (the reader stopped unexpectedly, exit status {returncode}); not added")


def _limit_own_resources(limits: ExtractLimits) -> None:
    """Cap this (child) process: address space, CPU seconds, no core dumps, no files written."""
    try:
        import resource
    except ImportError:  # not on POSIX: the parent's wall-clock timeout still applies
        return

    def cap(which: int, soft: int, hard: int | None = None) -> None:
        _, current_hard = resource.getrlimit(which)
        hard = soft if hard is None else hard
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))

    cap(resource.RLIMIT_AS, int(limits.memory_bytes))
    cpu = max(1, math.ceil(limits.seconds))
    # SIGXCPU at the soft limit ends the child; the kernel's SIGKILL a second later is the backstop.
    cap(resource.RLIMIT_CPU, cpu, cpu + 1)
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_FSIZE, 0)


def _address_space_exhausted(limits: ExtractLimits) -> bool:
    """Whether this process's peak virtual memory (VmPeak) came within 10% of its RLIMIT_AS."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024 >= 0.9 * limits.memory_bytes
    except (OSError, ValueError, MemoryError):
        pass
    return False


def _child_main() -> int:
    """The child side of extract_bounded: header line and bytes on stdin, one JSON object on stdout."""
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    # Whatever the libraries print goes to stderr; stdout carries only the answer.
    os.dup2(2, 1)
    logging.disable(logging.WARNING)  # pypdf warns once per damaged object; the parent needs only the answer
    header = json.loads(sys.stdin.buffer.readline())
    limits = ExtractLimits(**header["limits"])
    _limit_own_resources(limits)
    # Freed when reading fails, so that telling out-of-memory from other failures has memory to work with.
    reserve = bytearray(1 << 20)
    try:
        data = sys.stdin.buffer.read()
        article = _extract_kind(_kind_for(header["kind"]), data, header.get("url", ""), limits)
        reply: dict[str, Any] = {"article": dataclasses.asdict(article)}
    except ExtractionError as exc:
        reply = {"error": str(exc)}
    except MemoryError:
        reply = {"failure": "memory"}
    except Exception:
        # Out of address space, CPython sometimes fails with SystemError or ImportError ("failed
        # to map segment") instead of MemoryError; a peak at the limit tells the two apart.
        del reserve
        if not _address_space_exhausted(limits):
            raise
        reply = {"failure": "memory"}
    json.dump(reply, answer)
    answer.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
