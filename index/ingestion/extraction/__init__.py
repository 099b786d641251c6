"""Turning uploaded web pages, PDFs and Word documents into article text, safely (see sandbox.py)."""

from index.ingestion.extraction.common import (
    DOCUMENT_SUFFIXES,
    ExtractedArticle,
    ExtractionError,
    ExtractLimits,
    word_count,
)
from index.ingestion.extraction.docx import extract_docx
from index.ingestion.extraction.html import (
    HtmlVariant,
    decode_html,
    extract_html,
    extract_html_variant,
    remove_unseen,
)
from index.ingestion.extraction.pdf import extract_pdf, pdf_paragraphs
from index.ingestion.extraction.sandbox import extract_bounded, extract_document
from index.ingestion.extraction.sniffing import sniff

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
