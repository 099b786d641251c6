"""Cited answers from retrieved passages: the extractive default, abstention, and follow-ups.

The extractive answerer scores the sentences of the retrieved passages (not just the passages)
against the question, keeps the best one to four, puts them in reading order and cites the
passage each came from. When no sentence is close enough it abstains with one fixed phrase.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from index.answering.engine import ABSTAIN_PHRASE
from index.answering.follow_ups import contextual_query
from index.answering.summary import summarize_text
from index.indexing.chunking import Span, sentence_spans
from index.indexing.embedding import Embedder
from index.retrieval.keywords import TermWeights
from index.retrieval.retriever import Retriever
from index.text import (
    content_words,
    expected_answer_type,
    has_answer_type,
    has_words,
    leans_back,
    plain_sentence,
    proper_nouns,
)
from index.types import Answer, AnswerTrace, Citation, Hit, Turn

# An answer is 1 to 4 sentences, lead-ins ("North Korea's military power has grown." before "It has…") included.
MAX_ANSWER_SENTENCES = 4


@dataclass(frozen=True)
class AnswerConfig:
    """Weights and thresholds of the extractive answerer; calibrated in docs/answers.md."""

    passages: int = 6
    # At most this many sentences of those passages are scored (in passage-rank order), for latency.
    sentence_budget: int = 24
    # Sentence vectors kept between questions (384 floats each: 20,000 is about 30 MB).
    sentence_cache_size: int = 20_000
    max_sentences: int = 3
    # A sentence scoring below this means the corpus does not answer: abstain.
    abstain_below: float = 0.40
    # Further sentences join the answer while they score within this margin of the best one.
    keep_within: float = 0.10
    # Closest passages shown as related reading after an abstention.
    related_above: float = 0.30
    duplicate_above: float = 0.90
    weight_sentence: float = 0.60
    weight_overlap: float = 0.25
    weight_passage: float = 0.15
    # "How many…?" wants a number, "When…?" a date: reward sentences that have one, mark down those without.
    answer_type_bonus: float = 0.05
    answer_type_penalty: float = 0.10
    # Each name in the question that no indexed passage mentions ("Japan" in a corpus without it).
    unknown_name_penalty: float = 0.10


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, with its absolute offsets and its score."""

    hit: Hit
    start: int
    end: int
    text: str
    cosine: float
    overlap: float
    score: float
    vector: np.ndarray = field(repr=False, compare=False, default=None)


class ExtractiveEngine:
    """Answers questions from one index: retrieve, pick sentences, cite, or abstain (an AnswerEngine)."""

    def __init__(self, retriever: Retriever, embedder: Embedder, config: AnswerConfig = AnswerConfig()):
        self.retriever = retriever
        self.embedder = embedder
        self.config = config
        # Members ask about the same articles again and again: a sentence (or question) is embedded once, then reused.
        self._sentence_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of the texts (a question, sentences), embedding only those not seen before."""
        with self._cache_lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._sentence_cache))
        known = dict(zip(missing, self.embedder.embed(missing))) if missing else {}
        with self._cache_lock:
            for text in texts:
                if text not in known and text in self._sentence_cache:
                    known[text] = self._sentence_cache[text]
                if text in known:
                    self._sentence_cache[text] = known[text]
                    self._sentence_cache.move_to_end(text)
            while len(self._sentence_cache) > self.config.sentence_cache_size:
                self._sentence_cache.popitem(last=False)
        late = [t for t in dict.fromkeys(texts) if t not in known]  # evicted by another thread meanwhile
        if late:
            known.update(zip(late, self.embedder.embed(late)))
        return np.vstack([known[t] for t in texts])

    def retrieve(self, query: str, timings: dict[str, float]) -> list[Hit]:
        """The passages for a query, timing the embedding and the search; the query's vector is
        kept so that scoring the sentences does not embed it again."""
        started = time.perf_counter()
        vector = self._vectors([query])
        embedded = time.perf_counter()
        hits = self.retriever.search_many([query], self.config.passages, query_vectors=vector)[0]
        timings["embed"] = (embedded - started) * 1000
        timings["search"] = (time.perf_counter() - embedded) * 1000
        return hits

    def term_weights(self) -> TermWeights:
        """Word weights over the index's passages (from the keyword index: one pass builds both)."""
        return self.retriever.keyword_index().weights

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """A cited answer to one question, reading follow-ups with the conversation so far."""
        return self.trace(question, history).answer

    def trace(self, question: str, history: Sequence[Turn] = ()) -> AnswerTrace:
        """The answer with what led to it: the retrieved passages and the best sentence score."""
        started = time.perf_counter()
        if not has_words(question):
            answer = Answer(
                question,
                f"{ABSTAIN_PHRASE} anything about that: ask a question in words.",
                True,
                timings_ms={"embed": 0.0, "search": 0.0, "answer": 0.0, "total": 0.0},
            )
            return AnswerTrace(answer, (), 0.0)
        query = contextual_query(question, history)
        timings: dict[str, float] = {}
        hits = self.retrieve(query, timings)
        answer_started = time.perf_counter()
        answer, best = self._answer(question, query, hits)
        timings["answer"] = (time.perf_counter() - answer_started) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return AnswerTrace(replace(answer, timings_ms=timings), tuple(hits), best)

    def answer_from_hits(self, question: str, query: str, hits: Sequence[Hit]) -> Answer:
        """The extractive answer to `question` from passages retrieved for `query` (the question read in context)."""
        return self._answer(question, query, hits)[0]

    def _answer(self, question: str, query: str, hits: Sequence[Hit]) -> tuple[Answer, float]:
        # A follow-up retrieves with the previous question, but its own words say what it asks now.
        candidates = self.score_sentences(query, hits, focus=question if query != question else None)
        best = max((cand.score for cand in candidates), default=0.0)
        return self.compose(question, hits, candidates), best

    def summarize(self, article_id: str, title: str, url: str, text: str, length: str = "medium") -> Answer:
        """A cited extractive summary of one article: its most central sentences, in reading order."""
        return summarize_text(article_id, title, url, text, self.embedder, length)

    def score_sentences(self, query: str, hits: Sequence[Hit], focus: str | None = None) -> list[Candidate]:
        """Every distinct sentence of the retrieved passages, scored against the query.

        `focus` is a follow-up's own question ("and what about China?"): when it has content words,
        word overlap and the expected answer type come from it, so the answer is about what is asked
        now rather than a repeat of the previous answer.
        """
        seen: set[tuple[str, int]] = set()
        located: list[tuple[Hit, int, int, str, str]] = []  # hit, start, end, sentence, sentence in context
        for hit in hits:
            chunk = hit.chunk
            anchor: int | None = None  # start of the last sentence that stands on its own
            for span in sentence_spans(chunk.text, Span(0, len(chunk.text))):
                text = chunk.text[span.start : span.end]
                lean = leans_back(text)
                # A sentence that leans on the one before it ("It has tested…") is read with it.
                context_start = anchor if lean and anchor is not None else span.start
                if not lean:
                    anchor = span.start
                key = (chunk.article_id, chunk.start + span.start)
                if key in seen or not has_words(text):
                    continue
                seen.add(key)
                context = plain_sentence(chunk.text[context_start : span.end])
                located.append((hit, chunk.start + span.start, chunk.start + span.end, text, context))
        if not located:
            return []
        # Embedding sentences is most of an answer's time: read them in passage-rank order, up to a budget.
        located = located[: self.config.sentence_budget]
        vectors = self._vectors([query, *(context for *_, context in located)])
        cosines = vectors[1:] @ vectors[0]
        question_words = set(content_words(focus or "")) or set(content_words(query))
        weights = self.term_weights()
        c = self.config
        kind = expected_answer_type(focus or query)
        unknown_names = {name for name in proper_nouns(query) if not weights.knows(name)}
        penalty = c.unknown_name_penalty * min(2, len(unknown_names))
        candidates = []
        for (hit, start, end, text, context), cosine, vector in zip(located, cosines, vectors[1:]):
            overlap = weights.overlap(question_words, context)
            score = c.weight_sentence * float(cosine) + c.weight_overlap * overlap + c.weight_passage * hit.score - penalty
            if kind is not None:
                score += c.answer_type_bonus if has_answer_type(text, kind) else -c.answer_type_penalty
            candidates.append(Candidate(hit, start, end, text, float(cosine), overlap, score, vector))
        return candidates

    def compose(self, question: str, hits: Sequence[Hit], candidates: Sequence[Candidate]) -> Answer:
        """Pick the answering sentences, order them for reading, and number their citations."""
        c = self.config
        ranked = sorted(candidates, key=lambda cand: -cand.score)
        if not ranked or ranked[0].score < c.abstain_below:
            return self.abstain(question, hits)
        picks = [ranked[0]]
        chosen = self._with_leading_context(picks, candidates)
        for cand in ranked[1:]:
            if len(picks) >= c.max_sentences or cand.score < ranked[0].score - c.keep_within:
                break
            if self._duplicate(cand, picks):
                continue
            # Lead-in sentences count toward the limit: an answer never runs past MAX_ANSWER_SENTENCES.
            extended = self._with_leading_context([*picks, cand], candidates)
            if len(extended) > MAX_ANSWER_SENTENCES:
                continue
            picks.append(cand)
            chosen = extended
        article_rank = {}
        for hit in hits:
            article_rank.setdefault(hit.chunk.article_id, len(article_rank))
        chosen.sort(key=lambda cand: (article_rank[cand.hit.chunk.article_id], cand.start))
        return self._cited_answer(question, chosen)

    def _duplicate(self, cand: Candidate, chosen: Sequence[Candidate]) -> bool:
        return any(float(cand.vector @ other.vector) > self.config.duplicate_above for other in chosen)

    def _with_leading_context(self, chosen: list[Candidate], candidates: Sequence[Candidate]) -> list[Candidate]:
        """Add the sentence before one that starts with "It", "This", "However"… so it reads on its own.

        Repeated while the added sentence leans back too ("North Korea's … It has tested … For these
        reasons …"), so no answer starts from a dangling "It".
        """
        by_end = {(cand.hit.chunk.article_id, cand.end): cand for cand in candidates}
        result = list(chosen)
        pending = list(chosen)
        while pending:
            cand = pending.pop()
            if not leans_back(cand.text):
                continue
            text = cand.hit.chunk.text
            gap_start = cand.start - cand.hit.chunk.start
            # The previous sentence ends just before this one, separated only by whitespace.
            probe = gap_start
            while probe > 0 and text[probe - 1].isspace():
                probe -= 1
            previous = by_end.get((cand.hit.chunk.article_id, cand.hit.chunk.start + probe))
            if previous is not None and all(
                previous.start != r.start or previous.hit.chunk.article_id != r.hit.chunk.article_id for r in result
            ):
                result.append(previous)
                pending.append(previous)
        return result

    def _cited_answer(self, question: str, chosen: Sequence[Candidate]) -> Answer:
        numbers: dict[int, int] = {}
        groups: dict[int, list[Candidate]] = {}
        for cand in chosen:
            key = cand.hit.chunk.chunk_id
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                groups[key] = []
            groups[key].append(cand)
        citations = []
        for key, members in groups.items():
            chunk = members[0].hit.chunk
            start, end = min(m.start for m in members), max(m.end for m in members)
            citations.append(
                Citation(
                    n=numbers[key],
                    article_id=chunk.article_id,
                    title=chunk.title,
                    url=chunk.url,
                    paragraph=chunk.paragraph,
                    quote=chunk.text[start - chunk.start : end - chunk.start],
                    start=start,
                    end=end,
                    score=max(m.score for m in members),
                )
            )
        parts: list[str] = []
        for position, cand in enumerate(chosen):
            parts.append(plain_sentence(cand.text))
            following = chosen[position + 1] if position + 1 < len(chosen) else None
            if following is None or following.hit.chunk.chunk_id != cand.hit.chunk.chunk_id:
                parts[-1] += f" [{numbers[cand.hit.chunk.chunk_id]}]"
        return Answer(question, " ".join(parts), False, tuple(citations))

    def abstain(self, question: str, hits: Sequence[Hit]) -> Answer:
        """The fixed "don't say" answer, with the closest passages as related reading when close."""
        related = tuple(
            Citation(
                n=i,
                article_id=h.chunk.article_id,
                title=h.chunk.title,
                url=h.chunk.url,
                paragraph=h.chunk.paragraph,
                quote=h.chunk.text,
                start=h.chunk.start,
                end=h.chunk.end,
                score=h.score,
            )
            for i, h in enumerate([h for h in hits if h.score >= self.config.related_above][:3], start=1)
        )
        text = f"{ABSTAIN_PHRASE} anything that answers this question."
        if related:
            text += " The closest passages are listed as related reading."
        return Answer(question, text, True, (), related)
