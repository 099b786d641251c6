"""PDFs: text by pypdf within page and stream limits, lines joined back into paragraphs."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from index.ingestion.extraction.common import (
    CONTROL_CHARS,
    ExtractedArticle,
    ExtractionError,
    ExtractLimits,
    check_size,
    first_line,
    human_size,
    iso_date,
    one_line,
    tidy,
    word_count,
)

if TYPE_CHECKING:
    from pypdf import DocumentInformation, PdfReader

# ---------------------------------------------------------------------------------------------
# PDF


_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"}
)
_PAGE_NUMBER = re.compile(r"(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?|[-\u2013\u2014]\s*\d{1,4}\s*[-\u2013\u2014]", re.IGNORECASE)
# A line that starts a list item: it starts a new paragraph even after a full-width line.
_ITEM_START = re.compile(r"(?:[\u2022\u25cf\u25aa\u2023\u2043\u25e6*\-\u2013]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
_SENTENCE_END = re.compile(r"[.!?:;\"'\u201d\u2019)\]]$")
_PDF_JUNK_TITLE = re.compile(r"^(?:untitled|microsoft (?:word|powerpoint) - .*|.*\.(?:docx?|pdf|indd|qxd|rtf|txt))$", re.IGNORECASE)


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
    check_size(len(data), limits)
    import pypdf
    from pypdf.errors import LimitReachedError

    try:
        with pypdf.apply_configuration(**_pdf_configuration(limits)):
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise ExtractionError(
                    "the PDF is encrypted (password-protected or locked against copying); save or print an unprotected copy and upload that"
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
                    raise ExtractionError(f"the PDF's text is larger than {human_size(limits.max_unpacked_bytes)}")
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
            f"part of the PDF unpacks to more than {human_size(limits.max_unpacked_bytes)} (a compression bomb?); not added"
        ) from None
    except RecursionError:
        raise ExtractionError("the PDF's structure is nested too deeply to read") from None
    except Exception as exc:  # pypdf raises many types for damaged files; the user needs one message
        raise ExtractionError(f"the PDF is damaged and cannot be read ({type(exc).__name__}: {one_line(exc, 120)})") from None
    text = tidy(pdf_paragraphs(page_texts))
    words = word_count(text)
    if words < limits.min_words:
        raise ExtractionError(
            f"no text found in the PDF ({words} words) — it may be a scan (pages stored as images); only PDFs with a text layer can be read"
        )
    title = meta_title if meta_title and not _PDF_JUNK_TITLE.match(meta_title) else first_line("\n".join(page_texts))
    return ExtractedArticle(title=title, text=text, author=author, published=published)


def _declared_page_count(reader: PdfReader) -> int:
    """The page count the PDF declares, read without walking the page tree (0 when absent)."""
    try:
        # Any PDF object: in a damaged file these need not be dictionaries, and the except below says so.
        root: Any = reader.trailer["/Root"]
        return int(root["/Pages"]["/Count"])
    except Exception:  # a missing or odd /Count: the real page list is counted next
        return 0


def _pdf_info(info: DocumentInformation | None, name: str) -> str:
    try:
        return one_line(getattr(info, name, None)) if info is not None else ""
    except Exception:  # undecodable metadata strings are not worth refusing the file
        return ""


def _pdf_created(info: DocumentInformation | None) -> str:
    try:
        return iso_date(info.creation_date) if info is not None else ""
    except Exception:  # malformed dates ("D:2019'") raise in pypdf
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
    return CONTROL_CHARS.sub("", text.translate(_LIGATURES).replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n"))


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
