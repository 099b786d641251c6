"""Split article text into paragraph- and sentence-aware chunks measured in model tokens.

A chunk is a run of whole sentences. A sentence longer than the limit is split at clause
boundaries (then at word boundaries), so the model never truncates text silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from index.types import Chunk

TokenCounter = Callable[[Sequence[str]], list[int]]

# Chosen by measurement on SQuAD dev v1.1: see docs/measurements/retrieval-quality.md.
DEFAULT_TARGET_TOKENS = 250
DEFAULT_OVERLAP_SENTENCES = 0
# all-MiniLM-L6-v2 reads 256 tokens including [CLS] and [SEP].
DEFAULT_MAX_TOKENS = 250
# A paragraph this short (a heading, a one-line lead) joins the chunk after it.
MIN_CHUNK_TOKENS = 24

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")
# One paragraph a line: at least two single newlines for each blank-line block, and the lines
# before them end sentences (by their share of the text). Measured in docs/measurements/indexing-and-search.md.
LINE_PARAGRAPHS_MIN_SHARE = 0.5
# Markdown structure (list item, heading, quote, table row, fence) neither counts nor decides.
_STRUCTURE_LINE = re.compile(r"[ \t]*(?:[-*+\u2022][ \t]|#{1,6}[ \t]|>|\||\d{1,3}[.)][ \t]|```|~~~)")
_SENTENCE_FINAL = ".!?\u2026\u3002\uff01\uff1f\u061f\u0964"
_CLOSING = "\"'\u201d\u2019)]\u300d\u300f\uff09"
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "mt",
    "no",
    "nos",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "u.s",
    "u.k",
    "u.n",
    "e.u",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "gen",
    "col",
    "lt",
    "sgt",
    "capt",
    "gov",
    "sen",
    "rep",
    "rev",
    "fig",
    "approx",
    "dept",
    "est",
    "inc",
    "ltd",
    "co",
    "corp",
    "al",
    "cf",
    "ca",
    "vol",
    "pp",
    "p",
}
# Candidate sentence end: terminal punctuation, closing quotes or brackets, then whitespace.
# CJK full stops end a sentence without a following space ("日本です。東京は..."), as CJK text has none.
_SENTENCE_END = re.compile(
    r"[.!?\u2026\u3002\uff01\uff1f\u061f\u0964]+[\"'\u201d\u2019)\]\u300d\u300f\uff09]*(?=\s)"
    r"|[\u3002\uff01\uff1f]+[\u300d\u300f\uff09\u201d\u2019]*(?=\S)"
)
# A line that starts a list item or heading starts a new sentence even without punctuation.
_LINE_START = re.compile(r"\n[ \t]*(?=[-*+\u2022#>]|\d+[.)][ \t])")
_CLAUSE_END = re.compile(r"(?:[;:,\u2014\u2013)]|\s-{1,2})(?=\s)|[\u3001\uff0c\uff1b\uff1a](?=\S)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Span:
    """A half-open character range [start, end) of the article text."""

    start: int
    end: int


def lines_are_paragraphs(text: str) -> bool:
    """True for text written one paragraph a line (single newlines), False for blank-line paragraphs.

    Decided once for the whole text, by measurement: hard-wrapped lines end mid-sentence, a
    line that is a paragraph ends one. Short salutations and headings weigh little, as the share
    counts characters; Markdown list items, headings and table rows are left out. Text whose
    blank lines separate its paragraphs (fewer than two single newlines a block) keeps them.
    """
    blocks = [block for block in _PARAGRAPH_BREAK.split(text.strip()) if block.strip()]
    measured = ended = breaks = 0
    for block in blocks:
        lines = block.split("\n")
        for line, following in zip(lines, lines[1:]):
            if _STRUCTURE_LINE.match(line) or _STRUCTURE_LINE.match(following):
                continue
            breaks += 1
            line = line.strip()
            measured += len(line)
            ended += len(line) if line.rstrip(_CLOSING)[-1:] in _SENTENCE_FINAL else 0
    return breaks >= 2 * len(blocks) and measured > 0 and ended >= LINE_PARAGRAPHS_MIN_SHARE * measured


def paragraph_spans(text: str) -> list[Span]:
    """Non-empty paragraphs, trimmed of surrounding whitespace.

    Paragraphs are separated by blank lines; hard-wrapped lines inside one are joined. In text
    written one paragraph a line (lines_are_paragraphs), every line is a paragraph. The text is
    never rewritten: the spans point into it as it is.
    """
    separator = _LINE_BREAK if lines_are_paragraphs(text) else _PARAGRAPH_BREAK
    spans = []
    position = 0
    for match in [*separator.finditer(text), None]:
        end = match.start() if match else len(text)
        span = _trim(text, position, end)
        if span:
            spans.append(span)
        if match:
            position = match.end()
    return spans


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at `dot` ends an abbreviation or an initial rather than a sentence."""
    word_start = dot
    while word_start > 0 and not text[word_start - 1].isspace() and text[word_start - 1] not in "(\"'\u201c":
        word_start -= 1
    word = text[word_start:dot].lower()
    if word in _ABBREVIATIONS:
        return True
    # Initials such as "J." or "U.S." or decimal-looking tokens.
    return len(word) == 1 and word.isalpha()


def sentence_spans(text: str, span: Span) -> list[Span]:
    """Sentences of one paragraph, as spans that cover it without gaps or overlaps of text."""
    boundaries = []
    for match in _SENTENCE_END.finditer(text, span.start, span.end):
        end = match.end()
        if text[match.start()] == "." and match.end() - match.start() == 1 and _is_abbreviation(text, match.start()):
            continue
        following = text[end : span.end].lstrip()
        # "He said 3.5 times" cannot split (no whitespace); a lower-case continuation is not a new sentence.
        if following and following[0].islower():
            continue
        boundaries.append(end)
    for match in _LINE_START.finditer(text, span.start, span.end):
        boundaries.append(match.start())
    sentences = []
    position = span.start
    for boundary in sorted(set(boundaries)):
        piece = _trim(text, position, boundary)
        if piece:
            sentences.append(piece)
        position = boundary
    last = _trim(text, position, span.end)
    if last:
        sentences.append(last)
    return sentences


def _split_at(text: str, span: Span, pattern: re.Pattern) -> list[Span]:
    pieces = []
    position = span.start
    for match in pattern.finditer(text, span.start, span.end):
        piece = _trim(text, position, match.end())
        if piece:
            pieces.append(piece)
        position = match.end()
    last = _trim(text, position, span.end)
    if last:
        pieces.append(last)
    return pieces


def _continues_character(ch: str) -> bool:
    """True for a code point that belongs to the one before it (combining mark, joiner, selector, skin tone)."""
    return unicodedata.category(ch) in ("Mn", "Me", "Mc") or ch in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff"


def _split_by_characters(text: str, span: Span, count_tokens: TokenCounter, limit: int) -> list[Span]:
    """Cut a single over-long "word" (a URL, a run of symbols) into pieces of at most `limit` tokens."""
    pieces = []
    position = span.start
    while position < span.end:
        end = min(span.end, position + limit)
        while end > position + 1 and count_tokens([text[position:end]])[0] > limit:
            end = position + max(1, (end - position) * 3 // 4)
        # Never cut an accent, emoji modifier or joiner off the character it belongs to.
        while position + 1 < end < span.end and (_continues_character(text[end]) or text[end - 1] == "\u200d"):
            end -= 1
        pieces.append(Span(position, end))
        position = end
    return pieces


def split_long_sentence(text: str, span: Span, count_tokens: TokenCounter, limit: int) -> list[tuple[Span, int]]:
    """Split a sentence over `limit` tokens at clause boundaries, then words, then characters."""
    pieces: list[Span] = []
    for clause in _split_at(text, span, _CLAUSE_END):
        if count_tokens([text[clause.start : clause.end]])[0] <= limit:
            pieces.append(clause)
            continue
        for word in _WORD.finditer(text, clause.start, clause.end):
            word_span = Span(word.start(), word.end())
            if count_tokens([word.group()])[0] <= limit:
                pieces.append(word_span)
            else:
                pieces.extend(_split_by_characters(text, word_span, count_tokens, limit))
    counts = count_tokens([text[p.start : p.end] for p in pieces])
    packed: list[tuple[Span, int]] = []
    for piece, count in zip(pieces, counts):
        if packed:
            joined = Span(packed[-1][0].start, piece.end)
            joined_count = count_tokens([text[joined.start : joined.end]])[0]
            if joined_count <= limit:
                packed[-1] = (joined, joined_count)
                continue
        packed.append((piece, count))
    return packed


@dataclass(frozen=True)
class _Unit:
    paragraph: int
    span: Span
    tokens: int


def _units(text: str, count_tokens: TokenCounter, max_tokens: int) -> list[_Unit]:
    """Every sentence (or clause piece of an over-long sentence) with its paragraph and token count."""
    located: list[tuple[int, Span]] = []
    for number, block in enumerate(paragraph_spans(text), start=1):
        located.extend((number, sentence) for sentence in sentence_spans(text, block))
    counts = count_tokens([text[s.start : s.end] for _, s in located]) if located else []
    units = []
    for (paragraph, sentence), count in zip(located, counts):
        if count <= max_tokens:
            units.append(_Unit(paragraph, sentence, count))
        else:
            units.extend(_Unit(paragraph, piece, n) for piece, n in split_long_sentence(text, sentence, count_tokens, max_tokens))
    return units


def chunk_text(
    article_id: str,
    text: str,
    count_tokens: TokenCounter,
    target_tokens: int = DEFAULT_TARGET_TOKENS,
    overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> list[Chunk]:
    """Pack whole sentences into chunks of about `target_tokens`, never past `max_tokens`.

    A chunk stays inside one paragraph unless it holds whole paragraphs shorter than
    MIN_CHUNK_TOKENS in all (a heading joins what follows it). Consecutive chunks of one paragraph
    share `overlap_sentences` sentences so an answer that straddles a boundary is still found.
    """
    if target_tokens > max_tokens:
        raise ValueError("target_tokens must not exceed max_tokens")
    units = _units(text, count_tokens, max_tokens)
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    # Only a chunk that holds whole short paragraphs may run on into the next paragraph;
    # the short tail of a long paragraph stays a chunk of its own.
    paragraph_starts = {id(u) for i, u in enumerate(units) if i == 0 or units[i - 1].paragraph != u.paragraph}
    for unit in units:
        total = sum(u.tokens for u in current)
        new_paragraph = bool(current) and unit.paragraph != current[-1].paragraph
        whole_paragraphs = bool(current) and id(current[0]) in paragraph_starts
        too_big = total + unit.tokens > (max_tokens if total < MIN_CHUNK_TOKENS else target_tokens)
        if current and (too_big or (new_paragraph and (total >= MIN_CHUNK_TOKENS or not whole_paragraphs))):
            groups.append(current)
            carry = current[-overlap_sentences:] if overlap_sentences and not new_paragraph else []
            # Overlap only while it leaves room for new text in the next chunk.
            while carry and sum(u.tokens for u in carry) + unit.tokens > target_tokens // 2 + unit.tokens // 2:
                carry = carry[1:]
            if carry and sum(u.tokens for u in carry) + unit.tokens > max_tokens:
                carry = []
            current = list(carry)
        current.append(unit)
    if current:
        groups.append(current)
    chunks = []
    for ordinal, group in enumerate(groups):
        start, end = group[0].span.start, group[-1].span.end
        chunks.append(
            Chunk(
                article_id=article_id,
                ordinal=ordinal,
                paragraph=group[0].paragraph,
                start=start,
                end=end,
                text=text[start:end],
                token_count=sum(u.tokens for u in group),
            )
        )
    return chunks


def whitespace_token_counter(texts: Sequence[str]) -> list[int]:
    """Rough token counts (words and punctuation runs) for tests and tools without a tokenizer."""
    return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]
