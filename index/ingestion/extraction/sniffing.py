"""Does a file's content match its name? A "report.pdf" that is a web page is refused."""

from __future__ import annotations

import io
import re
from types import MappingProxyType

from index.ingestion.extraction.common import DOCUMENT_SUFFIXES, KINDS, ExtractionError
from index.ingestion.extraction.html import decode_html

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


def kind_for(suffix_or_kind: str) -> str:
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
    kind = kind_for(suffix)
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
