"""Web pages: hidden and unseen parts removed, then the article found by trafilatura."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from index.ingestion.extraction.common import (
    CONTROL_CHARS,
    ExtractedArticle,
    ExtractionError,
    ExtractLimits,
    check_size,
    iso_date,
    one_line,
    tidy,
    without_title_heading,
    word_count,
)

if TYPE_CHECKING:
    from lxml import etree

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
_CHARSET_ALIASES = MappingProxyType(
    {
        "iso-8859-1": "cp1252",
        "iso8859-1": "cp1252",
        "latin1": "cp1252",
        "latin-1": "cp1252",
        "l1": "cp1252",
        "ascii": "cp1252",
        "us-ascii": "cp1252",
        "iso-8859-9": "cp1254",
        "latin5": "cp1254",
        "iso-8859-11": "cp874",
        "tis-620": "cp874",
        "gb2312": "gb18030",
        "gbk": "gb18030",
        "euc-kr": "cp949",
        "shift_jis": "cp932",
        "shift-jis": "cp932",
        "sjis": "cp932",
        "x-sjis": "cp932",
        # A page read as bytes cannot be UTF-16 without a BOM; browsers treat the label as UTF-8.
        "utf-16": "utf-8",
        "utf-16le": "utf-8",
        "utf-16be": "utf-8",
        "utf-16-le": "utf-8",
        "utf-16-be": "utf-8",
    }
)
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
        utf8: str | None = None
        if not declared.startswith(_SEVEN_BIT_CHARSETS):
            try:
                utf8 = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if utf8 is None:
            if b"\x00" in data[:65536]:
                raise ExtractionError("binary data (contains NUL bytes), not text")
            utf8 = data.decode(declared or _guess_charset(data), errors="replace")
        text = utf8
    sample = text[:65536]
    if "\x00" in sample or len(CONTROL_CHARS.findall(sample)) > max(8, len(sample) // 100):
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
_HIDING_CLASSES = frozenset(
    {
        "hidden",
        "d-none",
        "hide",
        "is-hidden",
        "invisible",
        "sr-only",
        "visually-hidden",
        "visuallyhidden",
        "screen-reader-text",
    }
)
# ...unless a responsive class shows the element on some screens ("hidden md:block", "d-none d-lg-block").
_RESPONSIVE_CLASS = re.compile(r":|^d-(?:sm|md|lg|xl|xxl)-")
# Never dropped even when marked hidden: pages hide <body> until their scripts have run.
_STRUCTURE_TAGS = ("html", "head", "body")
_JSON_LD = "application/ld+json"
# A CommonMark backslash escape of an ASCII punctuation character.
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@dataclass(frozen=True)
class HtmlVariant:
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


def _is_hidden(element: etree._Element, variant: HtmlVariant) -> bool:
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
        variant.hiding_classes and _HIDING_CLASSES.intersection(classes) and not any(_RESPONSIVE_CLASS.search(name) for name in classes)
    )


def remove_unseen(tree: etree._Element, variant: HtmlVariant = HtmlVariant(), keep_json_ld: bool = False) -> int:
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


def _drop_keeping_tail(node: etree._Element, parent: etree._Element) -> None:
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


def require_article(text: str, limits: ExtractLimits) -> None:
    words = word_count(text)
    kind = _stand_in_kind(text, limits)
    if kind:
        raise ExtractionError(
            f"the page looks like {kind}, not an article ({words} words of text) — save the article's full text and upload that instead"
        )
    if words < limits.min_words:
        raise ExtractionError(
            f"no article text found on the page ({words} words) — it may be behind a paywall or a login, "
            "need JavaScript to show its text, or not be an article"
        )


def extract_html(html: bytes | str, url: str = "", limits: ExtractLimits = ExtractLimits()) -> ExtractedArticle:
    """The article of a web page: title, author, date, site and main text in Markdown (trafilatura)."""
    return extract_html_variant(html, url, limits, HtmlVariant())


def extract_html_variant(html: bytes | str, url: str, limits: ExtractLimits, variant: HtmlVariant) -> ExtractedArticle:
    """extract_html in one of its variants, so the benchmark can measure what each choice costs."""
    if isinstance(html, bytes):
        check_size(len(html), limits)
        html = decode_html(html)
    else:
        check_size(len(html), limits)
    import trafilatura
    from trafilatura.settings import Document

    tree = trafilatura.load_html(html)
    if tree is None:
        raise ExtractionError("no article text found on the page (it is empty or not HTML)")
    remove_unseen(tree, variant, keep_json_ld=True)
    meta = trafilatura.extract_metadata(tree, default_url=url or None)
    remove_unseen(tree, variant)
    document = trafilatura.bare_extraction(
        tree,
        url=url or None,
        include_comments=False,
        include_tables=True,
        output_format="markdown",
        with_metadata=False,
    )
    # Without as_dict, bare_extraction gives a Document or None.
    text = _markdown_text(document.body, variant.inline_markup) if isinstance(document, Document) else ""
    title = one_line(meta.title)
    if not variant.title_heading:
        text = without_title_heading(text, title)
    require_article(text, limits)
    return ExtractedArticle(
        title=title,
        text=text,
        author=one_line(meta.author),
        published=iso_date(meta.date),
        site=one_line(meta.sitename),
        url=url or one_line(meta.url, limit=2000),
    )


def _markdown_text(body: etree._Element, inline_markup: bool = False) -> str:
    """trafilatura's Markdown (headings, lists, tables, blank lines between paragraphs) without inline markup.

    Bold, italics, underline (<u>) and strike-through marks and the backslash escapes that
    protect literal '*', '_' or '[' are noise in indexed and quoted text, and cost F1 on the
    benchmark ('Director\\_Oh' reads as two words); see docs/measurements/extraction.md.
    """
    from lxml import etree
    from trafilatura.xml import xmltotxt

    if inline_markup:
        return tidy(xmltotxt(body, include_formatting=True))
    etree.strip_tags(body, "hi", "del")
    return tidy(_MARKDOWN_ESCAPE.sub(r"\1", xmltotxt(body, include_formatting=True)))
