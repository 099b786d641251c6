"""Optional language-model answers: an OpenAI-compatible client, and answers and summaries it writes.

Nothing here runs unless LLM_BASE_URL is set; the extractive ExtractiveEngine stays the default.
The model only ever rewrites the retrieved passages: every sentence it returns is checked
against the passage it cites (see `check_support`), sentences that fail are removed, and when
nothing checkable is left, or the endpoint fails in any way, the member gets the extractive
answer with a short note instead. No exception from the model reaches the user.

The client (client.py) is built once by the composition root and passed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from index.answering.about import about_question
from index.answering.extractive import ExtractiveEngine
from index.answering.follow_ups import contextual_query
from index.answering.llm.claims import is_abstention, verify_reply
from index.answering.llm.client import LLMClient, LLMError
from index.answering.llm.config import LLMConfig
from index.answering.llm.messages import (
    answer_messages,
    article_passages,
    passages_from_hits,
    summary_messages,
)
from index.answering.llm.prompts import DROPPED_NOTE, NOTES, SUMMARY_NOTES
from index.answering.summary import SUMMARY_SENTENCES, summarize_text
from index.indexing.embedding import Embedder
from index.retrieval.retriever import Retriever
from index.text import has_words
from index.types import Answer, Hit, Turn

logger = logging.getLogger("policybot." + __name__)


def _dropped_note(count: int) -> str:
    if count <= 0:
        return ""
    return DROPPED_NOTE[min(count, 2)].format(count=count)


class LLMEngine:
    """Answers like ExtractiveEngine.ask, but has a language model write the answer from the same passages.

    Retrieval, follow-up handling, abstention's related reading and every fallback are the
    wrapped ExtractiveEngine's: the model sees the passages the extractive answer would use, and
    when it fails or cannot be verified the member gets exactly that extractive answer.
    """

    def __init__(self, engine: ExtractiveEngine, client: LLMClient, config: LLMConfig = LLMConfig()):
        self.engine = engine
        self.client = client
        self.config = config

    @property
    def retriever(self) -> Retriever:
        """The wrapped engine's retriever."""
        return self.engine.retriever

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """A cited answer written by the model and checked against the passages, or the extractive one."""
        # Questions about an article itself are answered from its metadata, not written by the model.
        if not has_words(question) or about_question(question) is not None:
            return self.engine.ask(question, history)
        started = time.perf_counter()
        query = contextual_query(question, history)
        timings: dict[str, float] = {}
        hits = self.engine.retrieve(query, timings)
        if not hits:
            return self._extractive(question, query, hits, timings, started, "")
        passages = passages_from_hits(hits)
        llm_started = time.perf_counter()
        try:
            reply = self.client.chat(answer_messages(question, passages, history, self.config), max_tokens=self.config.max_tokens)
        except LLMError as exc:
            timings["llm"] = (time.perf_counter() - llm_started) * 1000
            logger.warning("language model failed (%s): %s; answering extractively", exc.kind, exc)
            return self._extractive(question, query, hits, timings, started, exc.note())
        except Exception:  # a member gets an answer whatever went wrong; the log keeps the traceback
            timings["llm"] = (time.perf_counter() - llm_started) * 1000
            logger.exception("language model call failed unexpectedly; answering extractively")
            return self._extractive(question, query, hits, timings, started, NOTES["error"])
        timings["llm"] = (time.perf_counter() - llm_started) * 1000
        checked = time.perf_counter()
        if is_abstention(reply):
            answer = self.engine.abstain(question, hits)
            timings["answer"] = (time.perf_counter() - checked) * 1000
            timings["total"] = (time.perf_counter() - started) * 1000
            return Answer(question, answer.text, True, (), answer.related, timings)
        verified = verify_reply(reply, passages, self.engine.embedder, self.config)
        if verified.invalid_numbers or verified.dropped:
            logger.info(
                "language model answer: %d sentence(s) kept, %d dropped, %d citation(s) to missing passages",
                verified.kept,
                verified.dropped,
                verified.invalid_numbers,
            )
        if not verified.citations:
            logger.warning("language model answer had no supported citation; answering extractively")
            return self._extractive(question, query, hits, timings, started, NOTES["unverified"])
        # A passage may start a paragraph or two before the quote (a heading joins the text after it).
        citations = tuple(replace(c, paragraph=self.engine.paragraph_at(c.article_id, c.start, c.paragraph)) for c in verified.citations)
        timings["answer"] = (time.perf_counter() - checked) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(question, verified.text, False, citations, (), timings, _dropped_note(verified.dropped))

    def summarize(self, article_id: str, title: str, url: str, text: str, length: str = "medium") -> Answer:
        """A summary written by the model, each sentence cited and checked; the extractive one when that fails."""
        return llm_summarize(self.client, article_id, title, url, text, self.engine.embedder, length, self.config)

    def _extractive(self, question: str, query: str, hits: Sequence[Hit], timings: dict[str, float], started: float, note: str) -> Answer:
        answer_started = time.perf_counter()
        answer = self.engine.answer_from_hits(question, query, hits)
        timings["answer"] = (time.perf_counter() - answer_started) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(question, answer.text, answer.abstained, answer.citations, answer.related, timings, note)


def llm_summarize(
    client: LLMClient,
    article_id: str,
    title: str,
    url: str,
    text: str,
    embedder: Embedder,
    length: str = "medium",
    config: LLMConfig = LLMConfig(),
) -> Answer:
    """A summary of one article written by the model from its passages, each sentence cited and checked.

    Same arguments as index.answering.summary.summarize_text plus the client; falls back to that
    extractive summary, with a note, when the model fails or nothing it wrote checks out.
    """
    if length not in SUMMARY_SENTENCES:
        raise ValueError(f"length must be one of {', '.join(SUMMARY_SENTENCES)}, not {length!r}")
    started = time.perf_counter()
    passages = article_passages(article_id, title, url, text, config)

    def fallback(note: str) -> Answer:
        summary = summarize_text(article_id, title, url, text, embedder, length)
        total = (time.perf_counter() - started) * 1000
        return Answer(
            summary.question,
            summary.text,
            summary.abstained,
            summary.citations,
            summary.related,
            {**summary.timings_ms, "total": total},
            note,
        )

    if not passages:
        return fallback("")
    try:
        reply = client.chat(summary_messages(title, passages, SUMMARY_SENTENCES[length]), max_tokens=config.summary_max_tokens)
    except LLMError as exc:
        logger.warning("language model failed (%s): %s; summarising extractively", exc.kind, exc)
        return fallback(exc.note(SUMMARY_NOTES))
    except Exception:  # a member gets a summary whatever went wrong; the log keeps the traceback
        logger.exception("language model call failed unexpectedly; summarising extractively")
        return fallback(SUMMARY_NOTES["error"])
    llm_ms = (time.perf_counter() - started) * 1000
    verified = verify_reply(reply, passages, embedder, config) if not is_abstention(reply) else None
    if verified is None or not verified.citations:
        logger.warning("language model summary had no supported citation; summarising extractively")
        return fallback(SUMMARY_NOTES["unverified"])
    total = (time.perf_counter() - started) * 1000
    note = _dropped_note(verified.dropped).replace("answer", "summary")
    return Answer(
        f"summary of {title}", verified.text, False, verified.citations, (), {"llm": llm_ms, "answer": total - llm_ms, "total": total}, note
    )
