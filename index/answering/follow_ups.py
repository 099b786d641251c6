"""Reading a question with the conversation before it, when it is a follow-up."""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.text import content_words
from index.types import Turn

_FOLLOW_UP_START = re.compile(r"^(?:and|but|so|also|what about|how about|and what|what else|why|how so|then)\b", re.I)
_REFERRING = re.compile(r"\b(?:it|its|they|them|their|that|this|those|these|he|she|his|her|there|then)\b", re.I)


def is_follow_up(question: str) -> bool:
    """Heuristic: a question that leans on the previous turn ("and what about China?")."""
    words = question.split()
    if _FOLLOW_UP_START.match(question.strip()):
        return True
    return len(words) <= 12 and (bool(_REFERRING.search(question)) or len(content_words(question)) <= 2)


def contextual_query(question: str, history: Sequence[Turn]) -> str:
    """The text to retrieve with: a follow-up is read together with the previous question."""
    if history and is_follow_up(question):
        return f"{history[-1].question} {question}"
    return question
