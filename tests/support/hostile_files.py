"""Valid and hostile documents, generated in memory: web pages, PDFs, Word files, Markdown (tests and bench).

Bombs are built without ever holding their unpacked bytes: a block of packed zeros is repeated,
so a stream that inflates to gigabytes costs megabytes and well under a second to make.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

BODY = (
    "<p>The parliament passed the budget on Tuesday after weeks of negotiations between the coalition "
    "parties, who agreed to raise spending on schools and hospitals in the poorer regions.</p>"
    "<p>Critics said the deal did little to address the deficit, which has grown for three years in a row "
    "and now stands at four percent of economic output, the highest level in a decade.</p>"
    "<h2>What comes next</h2>"
    "<p>The finance minister will present a medium-term plan in June, she told reporters outside the "
    "chamber on Tuesday evening, and promised that it would include new rules for borrowing.</p>"
)

PARAGRAPH_LINES = [
    "The Commission proposed on Monday a new framework for inter-",
    "national cooperation on ports, customs and the inspection of",
    "containers arriving from outside the single market area.",
    "Member states will vote on it next spring.",
]
SECOND_PARAGRAPH = [
    "Under the proposal, each port authority would share its risk",
    "assessments with the others within two days of an inspection,",
    "and a new agency in Brussels would keep the common register.",
    "Smaller ports asked for more time.",
]

BILLION_LAUGHS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b']>\n<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
)

_ZEROS_BLOCK = 16 << 20


# ---- web pages -----------------------------------------------------------------------------------


def page(body: str = BODY, head: str = "", charset: str = "utf-8") -> str:
    """A news page: navigation, an article with a headline, a footer."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="{charset}"><title>Budget deal | Policy Review</title>'
        '<meta name="author" content="Jane Doe">'
        '<meta property="article:published_time" content="2024-03-05T10:00:00Z">'
        f'<meta property="og:site_name" content="Policy Review">{head}</head>'
        '<body><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/economy">Economy</a></nav>'
        f"<main><article><h1>Budget deal</h1>{body}</article></main>"
        "<footer><p>Copyright 2024 Policy Review. All rights reserved.</p></footer></body></html>"
    )


def long_page(target_bytes: int) -> bytes:
    """A valid web page of numbered copies of the budget article's paragraphs, about `target_bytes` long."""
    text = BODY.replace("<h2>", "<p>").replace("</h2>", ".</p>")
    head = "<!doctype html><html><head><meta charset='utf-8'><title>Long report</title></head><body><article><h1>Long report</h1>"
    tail = "</article></body></html>"
    parts, size, number = [], len(head) + len(tail), 0
    while size < target_bytes:
        part = text.replace("<p>", f"<p>Section {number}. ", 1) + "\n"
        parts.append(part)
        size += len(part)
        number += 1
    return (head + "".join(parts) + tail).encode("utf-8")


def paywall_page() -> str:
    """A news page whose article stops after one sentence at a 'subscribe to continue reading' gate."""
    return page(
        "<p>The first lines of the story are free for everyone to read.</p>"
        '<div class="article-gate"><p>Subscribe to continue reading. Already a subscriber? Log in.</p></div>'
    )


def login_page() -> str:
    """A sign-in form where an article was expected."""
    return (
        "<html><head><title>Sign in</title></head><body><main><h1>Sign in to your account</h1><form>"
        '<label>Email</label><input name="email"><label>Password</label><input type="password" name="pw">'
        "<button>Sign in</button><p>Forgot your password?</p><p>Not a member? Create an account.</p></form></main></body></html>"
    )


# ---- Markdown and text ---------------------------------------------------------------------------


def article_text() -> str:
    """The budget article as plain paragraphs (no markup)."""
    paragraphs = [p.split(">", 1)[1] for p in BODY.replace("<h2>", "<p>").replace("</h2>", "</p>").split("</p>") if p]
    return "\n\n".join(paragraphs)


def markdown_article(front_matter: str = "title: Budget deal\nauthor: Jane Doe") -> bytes:
    """A corpus-style Markdown article with YAML front matter."""
    return f"---\n{front_matter}\n---\n\n{article_text()}\n".encode()


def yaml_bomb_markdown(levels: int = 9, fan_out: int = 9) -> bytes:
    """Markdown whose front matter nests aliases ('billion laughs' in YAML): fan_out**levels strings if expanded."""
    lines = ["title: Budget deal", 'lol0: &lol0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * fan_out)}]")
    return markdown_article("\n".join(lines))


def latin1_text() -> bytes:
    """A plain-text article in ISO-8859-1 (accented letters are single bytes, not UTF-8)."""
    return ("Le caf\u00e9 de la soci\u00e9t\u00e9 a ferm\u00e9\n\n" + article_text() + "\n").encode("latin-1")


def binary_bytes(size: int = 4096, seed: int = 0) -> bytes:
    """A PNG signature followed by reproducible random bytes."""
    return b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(size)


# ---- PDF -----------------------------------------------------------------------------------------


def pdf_string(text: str) -> bytes:
    """A PDF literal string: '(...)' with backslashes and parentheses escaped."""
    return b"(" + text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def make_pdf(pages: list[list[str]], title: str = "", packed_streams: list[bytes] | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per entry, 14 pt apart; or pages with given FlateDecode contents."""
    streams = packed_streams
    if streams is None:
        streams = []
        for lines in pages:
            ops = [b"BT /F1 11 Tf 14 TL 72 760 Td"]
            for line in lines:
                ops.append(pdf_string(line) + b" Tj T*" if line else b"T*")
            ops.append(b"ET")
            streams.append(b"\n".join(ops))
    count = len(streams)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(count)) + b"] /Count %d >>" % count,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, stream in enumerate(streams):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (5 + 2 * index)
        )
        filters = b" /Filter /FlateDecode" if packed_streams else b""
        objects.append(b"<< /Length %d%s >>\nstream\n" % (len(stream), filters) + stream + b"\nendstream")
    info_ref = b""
    if title:
        objects.append(b"<< /Title " + pdf_string(title) + b" /Author (Ann Lee) /CreationDate (D:20230412093000Z) >>")
        info_ref = b" /Info %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info_ref, xref)
    return bytes(out)


def _deflated_zeros(unpacked_bytes: int) -> bytes:
    """Raw deflate data (no header) for `unpacked_bytes` zeros, built from one packed block repeated."""
    parts = []
    whole, rest = divmod(unpacked_bytes, _ZEROS_BLOCK)
    for size, times in ((_ZEROS_BLOCK, whole), (rest, 1)):
        if size and times:
            packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            # A full flush ends the block byte-aligned and forgets the history: copies of it chain validly.
            parts.append((packer.compress(bytes(size)) + packer.flush(zlib.Z_FULL_FLUSH)) * times)
    return b"".join(parts) + zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # the final, empty block


def _crc32_of_zeros(count: int) -> int:
    crc, block = 0, bytes(min(count, _ZEROS_BLOCK))
    whole, rest = divmod(count, len(block) or 1)
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(block[:rest], crc)


def flate_bomb(unpacked_bytes: int) -> bytes:
    """A FlateDecode (zlib) stream of zeros: about a thousand times smaller packed than unpacked."""
    # Adler-32 of n zero bytes: A stays 1, B grows by 1 per byte.
    adler = ((unpacked_bytes % 65521) << 16) | 1
    return b"\x78\xda" + _deflated_zeros(unpacked_bytes) + struct.pack(">I", adler)


def bomb_pdf(unpacked_bytes: int) -> bytes:
    """A one-page PDF whose content stream is a flate bomb of `unpacked_bytes` zeros."""
    return make_pdf([], packed_streams=[flate_bomb(unpacked_bytes)])


def many_pages_pdf(pages: int, declared: int | None = None) -> bytes:
    """A PDF of `pages` one-line pages whose page tree declares `declared` pages (the truth by default)."""
    pdf = make_pdf([[f"Page {number} of the report."] for number in range(1, pages + 1)])
    if declared is None:
        return pdf
    true, lie = b"/Count %d" % pages, b"/Count %d" % declared
    assert len(lie) <= len(true), "the lie must not be longer: offsets in the xref table would move"
    return pdf.replace(true, lie.ljust(len(true)), 1)


def encrypted_pdf(user_password: str = "secret") -> bytes:
    """A readable article PDF, encrypted with RC4-128 (needs pypdf)."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf([PARAGRAPH_LINES * 4]))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# ---- Word ----------------------------------------------------------------------------------------


def make_docx(hidden: str = "") -> bytes:
    """A Word document with a title, a heading, paragraphs, a bullet, a table, and optionally hidden (vanish) text."""
    import docx

    document = docx.Document()
    document.core_properties.title = "Ports and customs"
    document.core_properties.author = "Ann Lee"
    document.add_heading("Port cooperation", level=1)
    document.add_paragraph(" ".join(PARAGRAPH_LINES).replace("inter- national", "international"))
    paragraph = document.add_paragraph(" ".join(SECOND_PARAGRAPH))
    if hidden:
        paragraph.add_run(" " + hidden).font.hidden = True
    document.add_paragraph("Share risk assessments within two days", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Port", "Inspections"
    table.cell(1, 0).text, table.cell(1, 1).text = "Rotterdam", "1200"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def rezip(docx_bytes: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None) -> bytes:
    """The same package with some members replaced or added."""
    replace, add = replace or {}, add or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, replace.get(item.filename, source.read(item)))
        for name, data in add.items():
            target.writestr(name, data)
    return out.getvalue()


def docx_zip_bomb(unpacked_bytes: int = 4_000_000_000, member: str = "word/media/image1.bin") -> bytes:
    """A valid Word document plus one member of zeros inflating to `unpacked_bytes` (< 4 GiB; no ZIP64)."""
    if unpacked_bytes >= 2**32:
        raise ValueError("members of 4 GiB or more need ZIP64, which this writer does not do")
    with zipfile.ZipFile(io.BytesIO(make_docx())) as source:
        members = [(item.filename, source.read(item)) for item in source.infolist()]
    entries = []
    for name, data in members:
        packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        entries.append((name, packer.compress(data) + packer.flush(), zlib.crc32(data), len(data)))
    entries.append((member, _deflated_zeros(unpacked_bytes), _crc32_of_zeros(unpacked_bytes), unpacked_bytes))
    out, central = bytearray(), bytearray()
    stamp = (0, 0x21)  # 1980-01-01 00:00
    for name, packed, crc, size in entries:
        encoded = name.encode("utf-8")
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, *stamp, crc, len(packed), size, len(encoded), 0)
        out += encoded + packed
        central += (
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, *stamp, crc, len(packed), size, len(encoded), 0, 0, 0, 0, 0, offset)
            + encoded
        )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + end)
