"""Extractive summaries: the article's thesis first, then its parts in reading order, each cited.

1. The article is cut into paragraphs exactly as the chunker cuts it (paragraph_spans), and each
   paragraph into sentences. Fragments (a line broken mid-sentence, a heading, a byline) and
   sentences under 6 words are never chosen. A sentence that leans on the one before it ("It…",
   "However…", "In this context…") is only ever quoted together with that one.
2. Budget: a number of points — a point is a sentence with any sentences it leans on — that is a
   share of the article's sentences within fixed bounds, plus a character limit for Discord.
3. Sections: the article's paragraphs, or runs of paragraphs when it has more than the budget.
4. The thesis opens the summary: the sentence of the lead (the first paragraphs, at least 15% of
   the article) most similar to the whole article, a little favouring specific ones.
5. Then one point per section in reading order, then more for the sections least represented
   for their size. Within a section a sentence scores by similarity to the section and to the
   whole article, specificity (content words, names, figures) and its place in the paragraph's
   argument (it opens the paragraph; the next sentence builds on it; it answers a concession
   with "Yet"/"Still"; a sentence conceded that way gets no such credit), minus similarity to
   what is already chosen plus the share of its words and names not yet said.
6. Chosen sentences are shown in article order; consecutive ones of a paragraph share one
   citation quoting exactly text[start:end].
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np

from index.indexing.chunking import paragraph_spans, sentence_spans
from index.indexing.embedding import Embedder
from index.text import content_words, has_words, leans_back, plain_sentence
from index.types import Answer, Citation

# Most points per length; a point is a sentence with the sentences it leans on (also the
# "about N sentences" an LLM summary is asked for).
SUMMARY_SENTENCES = {"short": 3, "medium": 10, "long": 16}
# Fewest points per length, when the article has that many sentences.
SUMMARY_MIN_SENTENCES = {"short": 3, "medium": 5, "long": 8}
# Points per eligible sentence of the article, within the bounds above.
SUMMARY_SHARE = {"short": 0.0, "medium": 0.4, "long": 0.6}
# Discord shows at most 4,096 characters of a summary; stay well inside.
SUMMARY_CHARS = {"short": 1200, "medium": 3000, "long": 3800}
# Sections (one point each before any second) per point of budget.
SECTIONS_PER_SENTENCE = 0.8
# The thesis is looked for in the first paragraphs covering at least this share of sentences.
LEAD_SHARE = 0.15
# Sentences this short are headings, captions, bylines or fragments, not summary material.
MIN_SENTENCE_WORDS = 6
# A sentence never comes with more antecedents than this (a longer chain is not quotable).
MAX_ANTECEDENTS = 2
# Scoring weights (docs/answers.md, "Summaries"): specificity; a sentence that opens its paragraph,
# answers the one before with "Yet"/"Still", or is built on by the next; similarity to what is
# chosen; words and names not yet said; each antecedent brought along; the thesis's place in the lead.
INFORMATION_WEIGHT = 0.25
OPENING_WEIGHT = 0.15
CONTRAST_WEIGHT = 0.15
ELABORATED_WEIGHT = 0.2
REDUNDANCY_WEIGHT = 0.3
ANTECEDENT_COST = 0.1
NOVELTY_WEIGHT = 0.3
LEAD_POSITION_WEIGHT = 0.05
# Two sentences this similar say the same thing: never both.
DUPLICATE_SIMILARITY = 0.9

# Openings that refer back beyond index.text.leans_back's pronouns and conjunctions.
_CONNECTIVE = re.compile(
    r"^(?:Nonetheless|Nevertheless|Moreover|Furthermore|Besides|Also|Instead|Thus|Hence|Therefore|"
    r"Consequently|Accordingly|Meanwhile|Likewise|Similarly|Otherwise|Then|And|Or|Nor|As such|"
    r"In addition|In turn|As a result|On the other hand|By contrast|In contrast|That said|Even so)\b"
)
# A short opening phrase pointing back ("In this context,", "Despite that,") or a pronoun right after one.
_BACK_REFERENCE = re.compile(
    r"^(?:\w+\s+){0,3}(?:this|that|these|those|such|it)(?:\s+\w+)?,"
    r"|^[^,.;]{1,30},\s+(?:it|its|this|these|those|they|their|such)\b"
    r"|^\w+\s+(?:it|they|he|she)\b",
    re.IGNORECASE,
)
# A sentence turning against the one before it ("Yet…", "Still…") usually carries the point of the pair.
_CONTRAST = re.compile(r"^(?:However|Yet|Still|But|Nonetheless|Nevertheless|Even so)\b")
_OPENING = "\"'\u201c\u2018([\u300c\u300e\u00bf\u00a1*_"
_CLOSING = "\"'\u201d\u2019)]\u300d\u300f*_"
_SENTENCE_FINAL = ".!?\u2026\u3002\uff01\uff1f\u061f\u0964"
_NAME = re.compile(r"(?<=\s)[A-Z][\w’'.-]*\w")


@dataclass(frozen=True)
class ArticleSentence:
    """One sentence of an article, with its paragraph number (as chunks count them) and offsets."""

    paragraph: int
    start: int
    end: int
    text: str


def article_sentences(text: str) -> list[ArticleSentence]:
    """Every sentence of an article in order, each with its paragraph number."""
    return [
        ArticleSentence(number, span.start, span.end, text[span.start : span.end])
        for number, paragraph in enumerate(paragraph_spans(text), start=1)
        for span in sentence_spans(text, paragraph)
    ]


def is_complete(sentence: str) -> bool:
    """False for a fragment: a sentence cut by a line break (lower-case start or no final stop), a heading, a byline."""
    plain = plain_sentence(sentence).lstrip(_OPENING).rstrip(_CLOSING)
    return bool(plain) and not plain[0].islower() and plain[-1] in _SENTENCE_FINAL


def refers_back(sentence: str) -> bool:
    """True when a sentence cannot open a summary: it leans on the sentence before it."""
    plain = plain_sentence(sentence)
    return leans_back(plain) or bool(_CONNECTIVE.match(plain) or _BACK_REFERENCE.match(plain))


def names_in(text: str) -> list[str]:
    """Capitalised words after the first (names, places, organisations), lower-cased."""
    return [name.lower().removesuffix("’s").removesuffix("'s") for name in _NAME.findall(plain_sentence(text))]


def informativeness(text: str) -> float:
    """0..1.2: how much a sentence says — content words, names, and a little extra for figures."""
    words = content_words(text)
    return 0.7 * min(1.0, len(words) / 20) + 0.3 * min(1.0, len(names_in(text)) / 4) + (0.2 if any(w.isdigit() for w in words) else 0.0)


def summary_budget(length: str, sentences: int) -> int:
    """How many points a summary of this length makes from an article with `sentences` eligible sentences."""
    wanted = max(SUMMARY_MIN_SENTENCES[length], round(SUMMARY_SHARE[length] * sentences))
    return min(SUMMARY_SENTENCES[length], wanted, sentences)


def sections_of(paragraphs: list[int], weights: list[int], count: int) -> list[list[int]]:
    """`count` runs of consecutive paragraphs (at least one each) of roughly equal weight."""
    if count >= len(paragraphs):
        return [[p] for p in paragraphs]
    total, running = sum(weights), 0
    sections: list[list[int]] = [[]]
    for index, (paragraph, weight) in enumerate(zip(paragraphs, weights)):
        left = len(paragraphs) - index
        if sections[-1] and (running >= total * len(sections) / count or left == count - len(sections)):
            sections.append([])
        sections[-1].append(paragraph)
        running += weight
    return sections


class _Selection:
    """The sentences chosen so far (each with its antecedents) and what one more would cost and bring."""

    def __init__(self, sentences: list[ArticleSentence], vectors: np.ndarray, budget: int, chars: int):
        self.sentences, self.vectors, self.budget, self.chars = sentences, vectors, budget, chars
        self.chosen: set[int] = set()
        self.anchors: list[int] = []
        self.words: set[str] = set()
        self.names: set[str] = set()
        self.leaning = [i > 0 and refers_back(s.text) for i, s in enumerate(sentences)]
        self.complete = [is_complete(s.text) for s in sentences]

    def unit(self, index: int) -> list[int] | None:
        """The sentence with the antecedents it needs, or None when the chain is too long."""
        start = index
        while self.leaning[start]:
            start -= 1
            if index - start > MAX_ANTECEDENTS:
                return None
        if start < index and not self.complete[start]:
            return None
        return list(range(start, index + 1))

    def fits(self, unit: list[int]) -> bool:
        size = sum(len(self.sentences[i].text) for i in self.chosen | set(unit))
        return len(self.anchors) < self.budget and size <= self.chars

    def redundancy(self, index: int) -> float:
        return max((float(self.vectors[index] @ self.vectors[j]) for j in self.chosen), default=0.0)

    def novelty(self, index: int) -> float:
        """0..1: how much of what the sentence names and says the summary does not have yet."""
        text = self.sentences[index].text
        words, names = set(content_words(text)), set(names_in(text))
        new_words = len(words - self.words) / len(words) if words else 0.0
        return (new_words + len(names - self.names) / max(1, len(names))) / 2

    def add(self, unit: list[int]) -> None:
        self.anchors.append(unit[-1])
        self.chosen.update(unit)
        for i in unit:
            self.words.update(content_words(self.sentences[i].text))
            self.names.update(names_in(self.sentences[i].text))


def _pick(selection: _Selection, candidates: list[int], salience: np.ndarray) -> list[int] | None:
    """The best unit anchored at one of `candidates`, or None when none fits."""
    best, best_score = None, -math.inf
    for i in candidates:
        if i in selection.chosen:
            continue
        unit = selection.unit(i)
        if unit is None or not selection.fits(unit):
            continue
        redundancy = selection.redundancy(i)
        if redundancy >= DUPLICATE_SIMILARITY:
            continue
        extra = sum(1 for j in unit if j not in selection.chosen) - 1
        score = float(salience[i]) - REDUNDANCY_WEIGHT * redundancy + NOVELTY_WEIGHT * selection.novelty(i) - ANTECEDENT_COST * extra
        if score > best_score:
            best, best_score = unit, score
    return best


def select_sentences(sentences: list[ArticleSentence], vectors: np.ndarray, length: str) -> list[int]:
    """Indexes of the sentences a summary of this length quotes, in article order."""
    eligible = [i for i, s in enumerate(sentences) if len(s.text.split()) >= MIN_SENTENCE_WORDS and is_complete(s.text)]
    eligible = eligible or list(range(len(sentences)))
    budget = summary_budget(length, len(eligible))
    selection = _Selection(sentences, vectors, budget, SUMMARY_CHARS[length])
    information = np.array([informativeness(s.text) for s in sentences])
    centrality = vectors @ _unit(vectors[eligible].mean(axis=0))

    # Sections: runs of consecutive paragraphs holding eligible sentences.
    paragraphs = sorted({sentences[i].paragraph for i in eligible})
    per_paragraph = [sum(1 for i in eligible if sentences[i].paragraph == p) for p in paragraphs]
    count = min(len(paragraphs), max(1, math.ceil(SECTIONS_PER_SENTENCE * budget)))
    section_of = {p: n for n, section in enumerate(sections_of(paragraphs, per_paragraph, count)) for p in section}
    members = [[i for i in eligible if section_of[sentences[i].paragraph] == n] for n in range(count)]

    salience = centrality + INFORMATION_WEIGHT * information
    for group in members:
        salience[group] += vectors[group] @ _unit(vectors[group].mean(axis=0))
    contrasts = [
        i > 0 and sentences[i - 1].paragraph == s.paragraph and bool(_CONTRAST.match(plain_sentence(s.text)))
        for i, s in enumerate(sentences)
    ]
    for i in eligible:
        if contrasts[i]:
            salience[i] += CONTRAST_WEIGHT
        elif i + 1 < len(sentences) and contrasts[i + 1]:
            continue  # conceded by the sentence after it: not the paragraph's point
        if i == 0 or sentences[i - 1].paragraph != sentences[i].paragraph:
            salience[i] += OPENING_WEIGHT
        if i + 1 < len(sentences) and sentences[i + 1].paragraph == sentences[i].paragraph and selection.leaning[i + 1]:
            salience[i] += ELABORATED_WEIGHT  # the next sentence builds on it

    # The thesis: in the lead, the sentence most like the whole article.
    lead: list[int] = []
    for group in members:
        lead += group
        if len(lead) >= max(2, LEAD_SHARE * len(eligible)):
            break
    thesis_score = {
        i: float(centrality[i] + INFORMATION_WEIGHT * information[i] - LEAD_POSITION_WEIGHT * n / len(lead)) for n, i in enumerate(lead)
    }
    for i in sorted(lead, key=thesis_score.__getitem__, reverse=True):
        unit = selection.unit(i)
        if unit is not None and selection.fits(unit):
            selection.add(unit)
            # Nothing before the thesis: it opens the summary.
            members = [[j for j in group if j > i] for group in members]
            break

    def drawn(n: int) -> int:
        return sum(1 for i in selection.anchors if section_of[sentences[i].paragraph] == n)

    # One sentence for each section not yet drawn on, in reading order.
    for n, group in enumerate(members):
        if not drawn(n):
            unit = _pick(selection, group, salience)
            if unit:
                selection.add(unit)
    # The rest of the budget: to the sections least represented for their size.
    share = budget / len(eligible)
    open_sections = set(range(count))
    while len(selection.anchors) < budget and open_sections:
        n = max(open_sections, key=lambda n: (share * len(members[n]) - drawn(n), -n))
        unit = _pick(selection, members[n], salience)
        if unit:
            selection.add(unit)
        else:
            open_sections.discard(n)
    return sorted(selection.chosen)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


def summarize_text(article_id: str, title: str, url: str, text: str, embedder: Embedder, length: str = "medium") -> Answer:
    """An extractive summary of one article; consecutive sentences of a paragraph share a citation."""
    if length not in SUMMARY_SENTENCES:
        raise ValueError(f"length must be one of {', '.join(SUMMARY_SENTENCES)}, not {length!r}")
    started = time.perf_counter()
    sentences = [s for s in article_sentences(text) if has_words(s.text)]
    if not sentences:
        return Answer(f"summary of {title}", "This article has no text to summarise.", True)
    vectors = embedder.embed([plain_sentence(s.text) for s in sentences])
    picked = select_sentences(sentences, vectors, length)
    groups: list[list[int]] = []
    for i in picked:
        if groups and groups[-1][-1] == i - 1 and sentences[i - 1].paragraph == sentences[i].paragraph:
            groups[-1].append(i)
        else:
            groups.append([i])
    citations, parts = [], []
    for n, group in enumerate(groups, start=1):
        first, last = sentences[group[0]], sentences[group[-1]]
        citations.append(Citation(n, article_id, title, url, first.paragraph, text[first.start : last.end], first.start, last.end, 1.0))
        parts.append(" ".join(plain_sentence(sentences[i].text) for i in group) + f" [{n}]")
    elapsed = (time.perf_counter() - started) * 1000
    return Answer(f"summary of {title}", " ".join(parts), False, tuple(citations), timings_ms={"answer": elapsed, "total": elapsed})
