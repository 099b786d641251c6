"""Limits and verification thresholds of the language-model answerer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LLMConfig:
    """Limits and verification thresholds of the language-model answerer (see docs/answers.md)."""

    max_tokens: int = 400
    summary_max_tokens: int = 700
    max_sentences: int = 4
    # Earlier turns sent along for follow-ups, and how much of each earlier answer.
    history_turns: int = 3
    history_chars: int = 600
    # A cited sentence is supported when its content words are this much present in the passage...
    lexical_support: float = 0.75
    # ...or its embedding is this close to the passage or one of its sentences; numbers must match either way.
    semantic_support: float = 0.72
    # A claim needs this many content words to be checkable at all.
    min_claim_words: int = 2
    # Summaries: paragraphs longer than this are split at sentences; at most this many passages.
    # About 2,500 tokens of passages at most, so prompt and reply fit a 4,096-token context.
    summary_passage_chars: int = 900
    summary_passages: int = 10
