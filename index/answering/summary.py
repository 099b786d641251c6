"""Extractive summaries: central, non-redundant sentences in article order, each cited."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from index.indexing.chunking import paragraph_spans, sentence_spans
from index.indexing.embedding import Embedder
from index.text import content_words, has_words, leans_back, plain_sentence
from index.types import Answer, Citation

SUMMARY_SENTENCES = {"short": 3, "medium": 5, "long": 8}
# Trade-off between centrality and novelty (maximal marginal relevance).
MMR_LAMBDA = 0.7
# Sentences this short are headings, captions or fragments, not summary material.
MIN_SENTENCE_WORDS = 6
# Salience = similarity to the article's centre + this much for saying something specific.
INFORMATION_WEIGHT = 0.25
# Extra score for a sentence from a paragraph the summary has not drawn on yet.
COVERAGE_BONUS = 0.10


@dataclass(frozen=True)
class ArticleSentence:
    """One sentence of an article, with its paragraph number and offsets."""

    paragraph: int
    start: int
    end: int
    text: str


def article_sentences(text: str) -> list[ArticleSentence]:
    """Every sentence of an article in order, with paragraph numbers as chunks count them.

    A sentence that leans on the one before it ("It has tested…") is joined to it, so a
    summary never quotes a dangling "It".
    """
    sentences: list[ArticleSentence] = []
    for number, paragraph in enumerate(paragraph_spans(text), start=1):
        for span in sentence_spans(text, paragraph):
            piece = text[span.start : span.end]
            previous = sentences[-1] if sentences else None
            if previous and previous.paragraph == number and leans_back(piece) and len(previous.text.split()) < 40:
                sentences[-1] = ArticleSentence(number, previous.start, span.end, text[previous.start : span.end])
            else:
                sentences.append(ArticleSentence(number, span.start, span.end, piece))
    return sentences


def informativeness(text: str) -> float:
    """0..1: how much a sentence says (content words, with a little extra for figures)."""
    words = content_words(text)
    return min(1.0, len(words) / 20) + (0.2 if any(w.isdigit() for w in words) else 0.0)


def select_central(vectors: np.ndarray, eligible: list[int], count: int, paragraphs: list[int], information: list[float]) -> list[int]:
    """Pick `count` sentences by maximal marginal relevance, spreading over paragraphs.

    Centrality is similarity to the article's mean vector; a sentence from a paragraph not yet
    covered gets a small bonus so a summary walks through the article instead of repeating its lead.
    """
    centroid = vectors[eligible].mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    salience = vectors @ centroid + INFORMATION_WEIGHT * np.array(information)
    chosen: list[int] = []
    while eligible and len(chosen) < count:
        best, best_score = None, -np.inf
        covered = {paragraphs[i] for i in chosen}
        for i in eligible:
            if i in chosen:
                continue
            redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            score = MMR_LAMBDA * float(salience[i]) - (1 - MMR_LAMBDA) * redundancy
            if paragraphs[i] not in covered:
                score += COVERAGE_BONUS
            if score > best_score:
                best, best_score = i, score
        if best is None:
            break
        chosen.append(best)
    return sorted(chosen)


def summarize_text(article_id: str, title: str, url: str, text: str, embedder: Embedder, length: str = "medium") -> Answer:
    """An extractive summary of one article; each sentence cites its own place in the article."""
    if length not in SUMMARY_SENTENCES:
        raise ValueError(f"length must be one of {', '.join(SUMMARY_SENTENCES)}, not {length!r}")
    started = time.perf_counter()
    sentences = [s for s in article_sentences(text) if has_words(s.text)]
    if not sentences:
        return Answer(f"summary of {title}", "This article has no text to summarise.", True)
    eligible = [i for i, s in enumerate(sentences) if len(s.text.split()) >= MIN_SENTENCE_WORDS] or list(range(len(sentences)))
    vectors = embedder.embed([plain_sentence(s.text) for s in sentences])
    picked = select_central(
        vectors, eligible, SUMMARY_SENTENCES[length], [s.paragraph for s in sentences], [informativeness(s.text) for s in sentences]
    )
    citations, parts = [], []
    for n, index in enumerate(picked, start=1):
        s = sentences[index]
        citations.append(Citation(n, article_id, title, url, s.paragraph, s.text, s.start, s.end, 1.0))
        parts.append(f"{plain_sentence(s.text)} [{n}]")
    elapsed = (time.perf_counter() - started) * 1000
    return Answer(f"summary of {title}", " ".join(parts), False, tuple(citations), timings_ms={"answer": elapsed, "total": elapsed})
