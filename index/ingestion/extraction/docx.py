"""Word documents: the package checked for zip and XML bombs, then paragraphs, headings and tables read."""

from __future__ import annotations

import codecs
import io
import re
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from index.ingestion.extraction.common import (
    ExtractedArticle,
    ExtractionError,
    ExtractLimits,
    check_size,
    first_line,
    human_size,
    one_line,
    tidy,
    without_title_heading,
    word_count,
)

if TYPE_CHECKING:
    import zipfile

    from lxml import etree

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
_DOCX_JUNK_AUTHORS = frozenset({"administrator", "admin", "user", "windows user", "microsoft office user", "owner", "python-docx"})


def _check_docx_package(data: bytes, limits: ExtractLimits) -> None:
    """Refuse zip bombs, absurd archives and XML with DTDs (entity bombs, external entities) before python-docx parses it."""
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise ExtractionError(f"the Word document is damaged (not a readable zip archive: {one_line(exc, 80)})") from None
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
                f"the Word document unpacks to {human_size(unpacked)}; the limit is {human_size(limits.max_unpacked_bytes)}"
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
            raise ExtractionError(f"the Word document is damaged ({one_line(exc, 80)})") from None


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
        raise ExtractionError(f"a part of the Word document ({name}) declares XML entities (an entity bomb or external entity?); not added")


def _docx_content_types(archive: zipfile.ZipFile) -> tuple[dict[str, str], dict[str, str]]:
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
        raise ExtractionError(f"the Word document is damaged ([Content_Types].xml: {one_line(exc, 80)})") from None
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
    check_size(len(data), limits)
    _check_docx_package(data, limits)
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        style_names = {style.style_id: style.name or "" for style in document.styles}
        blocks = list(_docx_blocks(document.element.body, style_names))
        properties = document.core_properties
        meta_title = one_line(properties.title)
        author = one_line(properties.author)
    except ExtractionError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # python-docx and lxml raise many types for damaged files
        reason = f"{type(exc).__name__}: {one_line(exc, 120)}"
        raise ExtractionError(f"the Word document is damaged and cannot be read ({reason})") from None
    text = tidy("\n\n".join(text for _, text in blocks))
    words = word_count(text)
    if words < limits.min_words:
        raise ExtractionError(f"the Word document has almost no text ({words} words)")
    headings = [text for style, text in blocks if style in ("title", "heading")]
    title = meta_title or (first_line(headings[0]) if headings else "")
    text = without_title_heading(text, title)
    if author.lower() in _DOCX_JUNK_AUTHORS:
        author = ""
    # The document's 'created' date is often a template's or an older copy's, so it is not used as the publication date.
    return ExtractedArticle(title=title, text=text, author=author)


def _docx_blocks(container: etree._Element, style_names: dict[str, str]) -> Iterator[tuple[str, str]]:
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


def _cell_paragraphs(cell: etree._Element) -> Iterator[etree._Element]:
    """A table cell's paragraphs, nested tables included, text boxes left out (as in the body)."""
    for paragraph in cell.iter(f"{_W}p"):
        if not any(ancestor.tag == f"{_W}txbxContent" for ancestor in paragraph.iterancestors()):
            yield paragraph


def _docx_paragraph(paragraph: etree._Element, style_names: dict[str, str]) -> tuple[str, str]:
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


def _docx_run_text(paragraph: etree._Element) -> str:
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


def _run_is_hidden(run: etree._Element) -> bool:
    """Word's hidden text (w:vanish): not printed or shown, so not indexed either."""
    vanish = run.find(f"{_W}rPr/{_W}vanish")
    return vanish is not None and vanish.get(f"{_W}val", "true").lower() not in ("0", "false", "off")
