"""The sentences of a chunk as answers read them, and the key their vectors are stored under.

Answers score the sentences of the retrieved passages; embedding them at answer time was most
of an answer's latency. The indexer embeds every sentence here once, with exactly the text the
answer engine would embed (a sentence that leans on the one before it is read with it), and the
store keeps the vectors under `context_key`, so an answer embeds only the question.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from index.indexing.chunking import Span, paragraph_spans, sentence_spans
from index.text import has_words, leans_back, plain_sentence

_HEADING = re.compile(r"#{1,6}[ \t]")


@dataclass(frozen=True)
class ChunkSentence:
    """One sentence of a chunk: offsets in the article, the text embedded for it, its paragraph number."""

    start: int
    end: int
    text: str
    context: str
    paragraph: int
    # Where the sentence before it ends, in the article (across paragraphs): a lead-in is looked up there.
    lead_end: int


def context_key(context: str) -> str:
    """The key a sentence's vector is stored under: a hash of exactly the text that was embedded."""
    return hashlib.sha1(context.encode("utf-8")).hexdigest()


def chunk_sentences(
    chunk_text: str, chunk_start: int, chunk_paragraph: int, article_text: str, paragraphs: list[Span]
) -> list[ChunkSentence]:
    """The sentences of a chunk worth quoting, each cut inside its own article paragraph and numbered by it.

    A Markdown heading is read with the sentence after it and never quoted alone; a sentence
    that leans on the one before it ("It has tested…") is read with it. `paragraphs` are the
    article's paragraph spans (`paragraph_spans(article_text)`); without the article's text the
    chunk's own blank lines count.
    """
    chunk_end = chunk_start + len(chunk_text)
    pieces = [
        (number, Span(max(p.start, chunk_start) - chunk_start, min(p.end, chunk_end) - chunk_start))
        for number, p in enumerate(paragraphs, start=1)
        if p.start < chunk_end and p.end > chunk_start
    ]
    if not pieces:
        pieces = [(chunk_paragraph + i, p) for i, p in enumerate(paragraph_spans(chunk_text))]
    found: list[ChunkSentence] = []
    anchor: int | None = None  # start of the last sentence that stands on its own
    heading: int | None = None
    for number, piece in pieces:
        for span in sentence_spans(chunk_text, piece):
            text = chunk_text[span.start : span.end]
            if _HEADING.match(text):
                heading = span.start
                continue
            lean = leans_back(text)
            context_start = anchor if lean and anchor is not None else span.start
            if not lean:
                anchor = span.start
            if heading is not None:
                context_start, heading = min(context_start, heading), None
            if not has_words(text):
                continue
            context = plain_sentence(chunk_text[context_start : span.end])
            found.append(
                ChunkSentence(
                    chunk_start + span.start,
                    chunk_start + span.end,
                    text,
                    context,
                    number,
                    _lead_end(chunk_text, chunk_start, span.start, article_text),
                )
            )
    return found


def _lead_end(chunk_text: str, chunk_start: int, start: int, article_text: str) -> int:
    """Where the sentence before the one at `start` (in the chunk) ends: in the article, so across
    paragraphs and passages; within the chunk when the article's text is not at hand."""
    text, offset, position = (article_text, 0, chunk_start + start) if article_text else (chunk_text, chunk_start, start)
    while position > 0 and text[position - 1].isspace():
        position -= 1
    return position + offset
