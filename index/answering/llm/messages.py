"""The messages a model is sent: rules, earlier turns and the numbered passages as a fenced data block."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from index.answering.llm import prompts
from index.answering.llm.claims import strip_citations
from index.answering.llm.config import LLMConfig
from index.indexing.chunking import paragraph_spans, sentence_spans
from index.text import has_words
from index.types import Hit, Passage, StoredChunk, Turn

_ANGLES = str.maketrans({"<": "\u2039", ">": "\u203a"})
# Bracketed numbers ("[3]", "[1, 2]") would pose as passage headers or citations; [INST] and [/SYS] as turn markers.
_BRACKET_MARKER = re.compile(r"\[(\s*/?\s*(?:\d+(?:\s*[,;\u2013-]\s*\d+)*|INST|SYS)\s*)\]", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def neutralize_data(text: str) -> str:
    """Passage text made harmless inside the data block of a prompt.

    Every "<" and ">" becomes a look-alike angle quote, so neither the block's closing tag
    nor chat-template control tokens (<|im_start|>, <end_of_turn>, <<SYS>>) can appear; bracketed
    numbers become parenthesised so a passage cannot fake a passage header or a citation;
    control characters go. The original text is still what citations quote.
    """
    text = _CONTROL.sub(" ", text.translate(_ANGLES))
    return _BRACKET_MARKER.sub(lambda m: f"({m.group(1)})", text)


def render_passages(passages: Sequence[Passage]) -> str:
    """The numbered passages as they appear inside the data block."""
    return prompts.PASSAGE_SEPARATOR.join(
        prompts.PASSAGE_TEMPLATE.format(
            n=p.n,
            title=neutralize_data(" ".join(p.chunk.title.split())),
            paragraph=p.chunk.paragraph,
            text=neutralize_data(p.chunk.text.strip()),
        )
        for p in passages
    )


def answer_messages(
    question: str, passages: Sequence[Passage], history: Sequence[Turn] = (), config: LLMConfig = LLMConfig()
) -> list[dict]:
    """System rules, the last few turns of the conversation, then the data block and the question."""
    messages = [{"role": "system", "content": prompts.ANSWER_SYSTEM.format(max_sentences=config.max_sentences)}]
    earlier_turns = list(history)[-config.history_turns :] if config.history_turns > 0 else []
    for turn in earlier_turns:
        messages.append({"role": "user", "content": neutralize_data(turn.question)})
        if turn.answer:
            earlier = strip_citations(turn.answer)
            if len(earlier) > config.history_chars:
                earlier = earlier[: config.history_chars].rsplit(" ", 1)[0] + " …"
            messages.append({"role": "assistant", "content": neutralize_data(earlier)})
    messages.append(
        {
            "role": "user",
            "content": prompts.ANSWER_USER.format(passages=render_passages(passages), question=neutralize_data(" ".join(question.split()))),
        }
    )
    return messages


def summary_messages(title: str, passages: Sequence[Passage], sentences: int) -> list[dict]:
    """The messages asking for a cited summary of one article's passages."""
    return [
        {"role": "system", "content": prompts.SUMMARY_SYSTEM.format(sentences=sentences)},
        {
            "role": "user",
            "content": prompts.SUMMARY_USER.format(
                title=neutralize_data(" ".join(title.split())), passages=render_passages(passages), sentences=sentences
            ),
        },
    ]


def passages_from_hits(hits: Sequence[Hit]) -> list[Passage]:
    """Retrieved chunks numbered 1..n in rank order."""
    return [Passage(n, h.chunk, h.score) for n, h in enumerate(hits, start=1)]


def article_passages(article_id: str, title: str, url: str, text: str, config: LLMConfig = LLMConfig()) -> list[Passage]:
    """An article cut into numbered passages for a summary: its paragraphs, long ones split at sentences.

    Paragraph numbers count like the chunker's and the extractive summary's. When there are
    more passages than `config.summary_passages`, evenly spaced ones are kept (always the first
    and the last), so a long article is summarised across its whole length.
    """
    pieces: list[tuple[int, int, int]] = []
    for number, paragraph in enumerate(paragraph_spans(text), start=1):
        if paragraph.end - paragraph.start <= config.summary_passage_chars:
            pieces.append((number, paragraph.start, paragraph.end))
            continue
        start: int | None = None
        end = paragraph.start
        for span in sentence_spans(text, paragraph):
            if start is not None and span.end - start > config.summary_passage_chars:
                pieces.append((number, start, end))
                start = None
            start = span.start if start is None else start
            end = span.end
        if start is not None:
            pieces.append((number, start, end))
    pieces = [p for p in pieces if has_words(text[p[1] : p[2]])]
    if len(pieces) > config.summary_passages:
        keep = sorted(set(np.linspace(0, len(pieces) - 1, config.summary_passages).round().astype(int).tolist()))
        pieces = [pieces[i] for i in keep]
    # Pieces of an article that are not stored chunks: no vector id (-1).
    return [
        Passage(n, StoredChunk(-1, article_id, title, url, number, start, end, text[start:end]), 1.0)
        for n, (number, start, end) in enumerate(pieces, start=1)
    ]
