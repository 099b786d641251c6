"""Cited answers from retrieved passages: the extractive default, abstention, and follow-ups.

The extractive answerer scores the sentences of the retrieved passages (not just the passages)
against the question, keeps the best one to four, puts them in reading order and cites the
passage each came from. When no sentence is close enough it abstains with one fixed phrase.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from index.answering.about import (  # noqa: I001 (kept apart: the answer paths other than passages)
    AboutQuestion,
    about_question,
    article_in_question,
    byline_span,
    describe_missing,
    metadata_answer,
    metadata_citation,
)
from index.answering.constraints import (
    NamedArticles,
    NameMatcher,
    QuestionFacts,
    name_phrases,
    named_articles,
    question_facts,
    unmet,
)
from index.answering.engine import ABSTAIN_PHRASE
from index.answering.follow_ups import contextual_query
from index.answering.summary import summarize_text
from index.indexing.chunking import Span, paragraph_spans
from index.indexing.embedding import Embedder
from index.indexing.sentences import chunk_sentences, context_key
from index.retrieval.keywords import TermWeights, keyword_tokens
from index.retrieval.retriever import Retriever
from index.text import (
    content_words,
    has_words,
    leans_back,
    plain_sentence,
)
from index.types import Answer, AnswerTrace, ArticleInfo, Citation, Hit, Turn

# An answer is 1 to 4 sentences, lead-ins ("North Korea's military power has grown." before "It has…") included.
MAX_ANSWER_SENTENCES = 4
# Picks within this score of the best are a tie for opening the answer.
OPENING_TIE = 0.02


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
    abstain_below: float = 0.35
    # Further sentences join the answer while they score within this margin of the best one.
    keep_within: float = 0.10
    # Closest passages shown as related reading after an abstention.
    related_above: float = 0.30
    duplicate_above: float = 0.90
    weight_sentence: float = 0.60
    weight_overlap: float = 0.25
    weight_passage: float = 0.15
    # The answering sentence must meet the question's years, numbers, names and speakers (constraints.py).
    check_constraints: bool = True
    # Two names whose embeddings are this close mean the same actor ("Beijing" and "China").
    same_name_above: float = 0.6
    # Names in the question must appear (or an alias) around the answering sentence; off by measurement.
    require_names: bool = False


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
    vector: np.ndarray = field(repr=False, compare=False)
    # The article paragraph the sentence is in, counted as the chunker counts; 0 when unknown.
    paragraph: int = 0
    # Where the sentence before it ends in the article, across paragraphs and passages; -1 when unknown.
    lead_end: int = -1


class ExtractiveEngine:
    """Answers questions from one index: retrieve, pick sentences, cite, or abstain (an AnswerEngine)."""

    def __init__(self, retriever: Retriever, embedder: Embedder, config: AnswerConfig = AnswerConfig()):
        self.retriever = retriever
        self.embedder = embedder
        self.config = config
        # Members ask about the same articles again and again: a sentence (or question) is embedded once, then reused.
        self._sentence_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.same_name = NameMatcher(self.embedder.embed, config.same_name_above)
        self._article_names: tuple[int, tuple[tuple[ArticleInfo, tuple[str, ...]], ...]] | None = None

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of the texts (a question, sentences): from memory, else as the index stored them, else embedded now."""
        with self._cache_lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._sentence_cache))
        # Sentences were embedded when the index was built; only the question is new.
        keys = {t: context_key(t) for t in missing}
        stored = self.retriever.store.sentence_vectors(list(keys.values())) if missing else {}
        known = {t: stored[key] for t, key in keys.items() if key in stored}
        fresh = [t for t in missing if t not in known]
        if fresh:
            known.update(zip(fresh, self.embedder.embed(fresh)))
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

    def retrieve(self, query: str, timings: dict[str, float], facts: QuestionFacts | None = None) -> list[Hit]:
        """The passages for a query, timing the embedding and the search; the query's vector is
        kept so that scoring the sentences does not embed it again.

        A question that names an article's speaker ("China's 2024 speech") is answered from
        those articles only; one that names a country or person some title carries prefers
        their passages, interleaved with the best of the whole library.
        """
        started = time.perf_counter()
        vector = self._vectors([query])
        embedded = time.perf_counter()
        passages = self.config.passages
        hits = self.retriever.search_many([query], passages, query_vectors=vector)[0]
        if facts is None and self.config.check_constraints:
            facts = self.question_facts(query)
        named = self.named_articles(facts) if facts is not None else NamedArticles()
        if named.article_ids:
            preferred = self.retriever.search_within(query, vector[0], named.article_ids, passages)
            hits = preferred if named.only else _interleave(preferred, hits)
        timings["embed"] = (embedded - started) * 1000
        timings["search"] = (time.perf_counter() - embedded) * 1000
        return hits

    def question_facts(self, question: str) -> QuestionFacts:
        """What the question pins down (constraints.py), read against this index's names and titles."""
        keywords = self.retriever.keyword_index()
        facts = question_facts(question, keywords.names, keywords.weights, self.same_name, self.speakers_known(), self.config.require_names)
        if facts.strangers and self.named_articles(facts).article_ids:
            # The question names an article too ("Australia's pledge, per Penny Wong"): the stranger is its speaker.
            facts = replace(facts, checked_names=tuple(n for n in facts.checked_names if n not in facts.strangers))
        return facts

    def named_articles(self, facts: QuestionFacts) -> NamedArticles:
        """The articles the question points at by a name in their title or author (constraints.py)."""
        return named_articles(facts, self.article_names(), self.same_name.similarities)

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
        about = about_question(question)
        if about is not None:
            answered = self.answer_about(question, about, history)
            if answered is not None:
                total = (time.perf_counter() - started) * 1000
                return AnswerTrace(replace(answered, timings_ms={**answered.timings_ms, "total": total}), (), 1.0)
        query = contextual_query(question, history)
        timings: dict[str, float] = {}
        # A follow-up retrieves with the previous question, but its own words say what it asks now.
        facts = self.question_facts(question if query != question else query) if self.config.check_constraints else None
        hits = self.retrieve(query, timings, facts)
        answer_started = time.perf_counter()
        answer, best = self._answer(question, query, hits, facts)
        timings["answer"] = (time.perf_counter() - answer_started) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return AnswerTrace(replace(answer, timings_ms=timings), tuple(hits), best)

    def answer_from_hits(self, question: str, query: str, hits: Sequence[Hit]) -> Answer:
        """The extractive answer to `question` from passages retrieved for `query` (the question read in context)."""
        return self._answer(question, query, hits)[0]

    def _answer(self, question: str, query: str, hits: Sequence[Hit], facts: QuestionFacts | None = None) -> tuple[Answer, float]:
        # A follow-up retrieves with the previous question, but its own words say what it asks now.
        focus = question if query != question else None
        candidates = self.score_sentences(query, hits, focus=focus)
        if self.config.check_constraints and candidates:
            facts = facts or self.question_facts(focus or query)
            candidates = [cand for cand in candidates if not self.unmet(facts, cand)]
        best = max((cand.score for cand in candidates), default=0.0)
        if not candidates:
            return self.abstain(question, hits), best
        return self.compose(question, hits, candidates), best

    def unmet(self, facts: QuestionFacts, cand: Candidate) -> str:
        """Why a candidate sentence does not meet the question's constraints, or '' when it does."""
        chunk = cand.hit.chunk
        # The sentence read with the one before it: "It has tested…" names its actor there.
        window = chunk.text[max(0, cand.start - chunk.start - 300) : cand.end - chunk.start]
        names = self.retriever.keyword_index().names
        return unmet(facts, cand.text, window, chunk.title, names, self.same_name)

    def article_names(self) -> tuple[tuple[ArticleInfo, tuple[str, ...]], ...]:
        """Each article with the name phrases its title and author carry, read once per index generation."""
        store = self.retriever.store
        cached = self._article_names
        if cached is None or cached[0] != store.generation:
            named = tuple((info, tuple(name_phrases(f"{info.title}. {info.author}"))) for info in store.articles())
            cached = self._article_names = (store.generation, named)
        return cached[1]

    def speakers_known(self) -> tuple[str, ...]:
        """The name phrases that articles' titles and authors carry: the speakers a question can be checked against."""
        return tuple(dict.fromkeys(p for _, phrases in self.article_names() for p in phrases))

    def answer_about(self, question: str, about: AboutQuestion, history: Sequence[Turn]) -> Answer | None:
        """An answer to a question about an article itself (author, source, title, date, gist), or None."""
        store = self.retriever.store
        articles = store.articles()
        if about.kind == "list":
            return self.list_articles(question, about)
        info = article_in_question(about, history, articles) or self.article_named_in(question, about)
        if info is None:
            return None
        text = store.article_text(info.article_id) or ""
        if about.kind == "summary":
            length = "medium" if re.search(r"summari[sz]e|summary", question, re.I) else "short"
            return replace(self.summarize(info.article_id, info.title, info.url, text, length), question=question)
        said = metadata_answer(about.kind, info)
        span = byline_span(text, info.author) if about.kind == "author" else None
        citation = metadata_citation(info, text, span)
        if said is None:
            return Answer(question, f"{ABSTAIN_PHRASE}: {describe_missing(about.kind, info)}", True, (), (citation,))
        return Answer(question, f"{said} [1]", False, (citation,))

    def article_named_in(self, question: str, about: AboutQuestion) -> ArticleInfo | None:
        """The article a question names by an alias or a year ("the UK's 2023 speech"), or the one of several
        named that best matches the rest of its words ("the Kenya speech about the Nairobi declaration")."""
        named = self.named_articles(self.question_facts(question)).article_ids
        if len(named) > 1 and about.topic_words:
            best = self.retriever.search_within(question, self._vectors([question])[0], named, 1)
            named = tuple(h.chunk.article_id for h in best)
        infos = {info.article_id: info for info, _ in self.article_names()}
        return infos.get(named[0]) if len(named) == 1 else None

    def list_articles(self, question: str, about: AboutQuestion) -> Answer:
        """The articles whose passages best match what the member asks to see ("what do you have on X?")."""
        topic = " ".join(about.topic_words) or question
        wanted = set(about.topic_words)
        hits = [
            h
            for h in self.retriever.search(topic, 30)
            if h.score >= self.config.related_above or wanted & set(keyword_tokens(f"{h.chunk.title} {h.chunk.text}"))
        ]
        best: dict[str, Hit] = {}
        for hit in hits:
            best.setdefault(hit.chunk.article_id, hit)
        picked = list(best.values())[:5]
        if not picked:
            return Answer(question, f"{ABSTAIN_PHRASE} anything about that: no article matches it.", True)
        citations = tuple(
            Citation(
                n, h.chunk.article_id, h.chunk.title, h.chunk.url, h.chunk.paragraph, h.chunk.text, h.chunk.start, h.chunk.end, h.score
            )
            for n, h in enumerate(picked, start=1)
        )
        listed = "; ".join(f"“{c.title}” [{c.n}]" for c in citations)
        return Answer(question, f"{len(citations)} article(s) match: {listed}.", False, citations)

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
        located: list[tuple[Hit, int, int, str, str, int, int]] = []  # hit, start, end, sentence, in context, paragraph, lead end
        articles: dict[str, tuple[str, list[Span]]] = {}
        for hit in hits:
            chunk = hit.chunk
            article_text, paragraphs = self._article(chunk.article_id, articles)
            for sentence in chunk_sentences(chunk.text, chunk.start, chunk.paragraph, article_text, paragraphs):
                key = (chunk.article_id, sentence.start)
                if key in seen:
                    continue
                seen.add(key)
                located.append((hit, sentence.start, sentence.end, sentence.text, sentence.context, sentence.paragraph, sentence.lead_end))
        if not located:
            return []
        # Embedding sentences is most of an answer's time: read them in passage-rank order, up to a budget.
        located = located[: self.config.sentence_budget]
        vectors = self._vectors([query, *(context for *_, context, _, _ in located)])
        cosines = vectors[1:] @ vectors[0]
        question_words = set(content_words(focus or "")) or set(content_words(query))
        weights = self.term_weights()
        c = self.config
        candidates = []
        for (hit, start, end, text, context, number, lead_end), cosine, vector in zip(located, cosines, vectors[1:]):
            overlap = weights.overlap(question_words, context)
            # The answer-type and unknown-name penalties that stood here made no difference on the dev sets;
            # what they tried to catch is now a hard check on the question's constraints (constraints.py).
            score = c.weight_sentence * float(cosine) + c.weight_overlap * overlap + c.weight_passage * hit.score
            candidates.append(Candidate(hit, start, end, text, float(cosine), overlap, score, vector, number, lead_end))
        return candidates

    def paragraph_at(self, article_id: str, offset: int, default: int) -> int:
        """The number of the article paragraph holding `offset`, as the chunker counts; `default` without the text."""
        text = self.retriever.store.article_text(article_id)
        numbered = enumerate(paragraph_spans(text) if text else [], start=1)
        return next((number for number, p in numbered if offset < p.end), default)

    def _article(self, article_id: str, articles: dict[str, tuple[str, list[Span]]]) -> tuple[str, list[Span]]:
        """An article's text and paragraph spans, read once per answer (kept in `articles`)."""
        if article_id not in articles:
            text = self.retriever.store.article_text(article_id) or ""
            articles[article_id] = (text, paragraph_spans(text))
        return articles[article_id]

    def compose(self, question: str, hits: Sequence[Hit], candidates: Sequence[Candidate]) -> Answer:
        """Pick the answering sentences, order them for reading, and number their citations."""
        c = self.config
        # A sentence that leans on one the passages do not hold ("Yet, …" after a passage not
        # retrieved) can never be quoted: the answer would start from a dangling reference.
        ranked = sorted((cand for cand in candidates if not self._dangles(cand, candidates)), key=lambda cand: -cand.score)
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
        article_rank: dict[str, int] = {}
        for hit in hits:
            article_rank.setdefault(hit.chunk.article_id, len(article_rank))
        # The best sentence (with the lead-in it needs) opens the answer; what it adds follows in reading order.
        # Of two picks scoring all but the same, the one that reads on its own opens: a lead-in answers nothing.
        opener = next((p for p in picks if p.score >= ranked[0].score - OPENING_TIE and not leans_back(p.text)), ranked[0])
        opening = {(cand.hit.chunk.article_id, cand.start) for cand in self._with_leading_context([opener], candidates)}
        chosen.sort(
            key=lambda cand: (
                (cand.hit.chunk.article_id, cand.start) not in opening,
                article_rank[cand.hit.chunk.article_id],
                cand.start,
            )
        )
        return self._cited_answer(question, chosen)

    def _dangles(self, cand: Candidate, candidates: Sequence[Candidate]) -> bool:
        """True when the sentence, or a lead-in it needs, leans back on a sentence that is not a candidate."""
        by_end = {(other.hit.chunk.article_id, other.end): other for other in candidates}
        seen = set()
        while leans_back(cand.text) and cand.start not in seen:
            seen.add(cand.start)
            previous = by_end.get((cand.hit.chunk.article_id, cand.lead_end))
            if previous is None:
                return True
            cand = previous
        return False

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
            # The previous sentence ends just before this one, separated only by whitespace (a
            # paragraph break too: "However, …" opening a paragraph leans on the one before).
            previous = by_end.get((cand.hit.chunk.article_id, cand.lead_end))
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
                    paragraph=min(members, key=lambda m: m.start).paragraph or chunk.paragraph,
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
            elif following.start < cand.start or self._text_between(cand, following).strip():
                # The quote runs through sentences the answer leaves out: say so, as a quotation would.
                parts[-1] += " …"
        return Answer(question, " ".join(parts), False, tuple(citations))

    @staticmethod
    def _text_between(first: Candidate, second: Candidate) -> str:
        """The chunk's text between two of its sentences."""
        chunk = first.hit.chunk
        return chunk.text[first.end - chunk.start : second.start - chunk.start]

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


def _interleave(preferred: Sequence[Hit], general: Sequence[Hit]) -> list[Hit]:
    """The two rankings merged turn about, preferred first, each passage once."""
    merged: dict[int, Hit] = {}
    for pair in zip(preferred, general):
        for hit in pair:
            merged.setdefault(hit.chunk.chunk_id, hit)
    for hit in [*preferred[len(general) :], *general[len(preferred) :]]:
        merged.setdefault(hit.chunk.chunk_id, hit)
    return list(merged.values())
