"""What every answer engine offers: the extractive default and the optional LLM engine alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from index.types import Answer, Turn

if TYPE_CHECKING:
    from index.retrieval.retriever import Retriever

# The fixed phrase every abstention starts with (paper-qa style): callers and evaluations match on it.
ABSTAIN_PHRASE = "The indexed articles don't say"
SUMMARY_LENGTHS = ("short", "medium", "long")


class AnswerEngine(Protocol):
    """Answers questions and summarises articles from one loaded index."""

    @property
    def retriever(self) -> Retriever:
        """The retriever over the index this engine answers from."""
        ...

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """A cited answer to one question (earlier turns give follow-ups context), or an abstention."""
        ...

    def summarize(self, article_id: str, title: str, url: str, text: str, length: str = "medium") -> Answer:
        """A cited summary of one article's text."""
        ...
