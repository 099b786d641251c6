"""Turning uploaded web pages, PDFs and Word documents into article text, safely (see sandbox.py).

The names below are imported on first use: the reader's child process runs
`python -m index.ingestion.extraction.sandbox` under a small memory cap, and importing every
reader module before it starts would cost memory and import the sandbox module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.ingestion.extraction.common import (
        DOCUMENT_SUFFIXES,
        ExtractedArticle,
        ExtractionError,
        ExtractLimits,
        word_count,
    )
    from index.ingestion.extraction.docx import extract_docx
    from index.ingestion.extraction.html import HtmlVariant, decode_html, extract_html, extract_html_variant, remove_unseen
    from index.ingestion.extraction.pdf import extract_pdf, pdf_paragraphs
    from index.ingestion.extraction.sandbox import extract_bounded, extract_document
    from index.ingestion.extraction.sniffing import sniff

_HOMES = {
    "DOCUMENT_SUFFIXES": "common",
    "ExtractLimits": "common",
    "ExtractedArticle": "common",
    "ExtractionError": "common",
    "word_count": "common",
    "extract_docx": "docx",
    "HtmlVariant": "html",
    "decode_html": "html",
    "extract_html": "html",
    "extract_html_variant": "html",
    "remove_unseen": "html",
    "extract_pdf": "pdf",
    "pdf_paragraphs": "pdf",
    "extract_bounded": "sandbox",
    "extract_document": "sandbox",
    "sniff": "sniffing",
}
__all__ = [
    "DOCUMENT_SUFFIXES",
    "ExtractLimits",
    "ExtractedArticle",
    "ExtractionError",
    "HtmlVariant",
    "decode_html",
    "extract_bounded",
    "extract_document",
    "extract_docx",
    "extract_html",
    "extract_html_variant",
    "extract_pdf",
    "pdf_paragraphs",
    "remove_unseen",
    "sniff",
    "word_count",
]


def __getattr__(name: str) -> Any:
    """A reader's public name, from the module that defines it."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'index.ingestion.extraction' has no attribute {name!r}")
    return getattr(importlib.import_module(f"index.ingestion.extraction.{home}"), name)
