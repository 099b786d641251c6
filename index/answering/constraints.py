"""What a question pins down — a year, a number, a named actor, a speaker, the kind of answer — and whether a
sentence meets it.

A question on the right topic can still ask something no article holds ("at the 2025 debate",
"Taiwan's president", "how much did Germany pledge"). The best sentence then scores well but
does not answer; these checks turn such near misses into abstentions. Names are matched
through aliases learnt from the model's embeddings ("Beijing" ↔ "China"), never a word list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.retrieval.keywords import NameLexicon, TermWeights
from index.text import has_answer_type

_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_MONTH_WORDS = "january february march april may june july august september october november december".split()
_ASKS_MONTH = re.compile(r"\b(?:what|which) month\b|\bwhat day\b|\bexact date\b", re.I)
_HAS_MONTH = re.compile(r"\b(?:" + "|".join(_MONTH_WORDS) + r")\b", re.I)
_ASKS_NUMBER = re.compile(r"\bhow (?:many|much)\b|\b(?:what|which) (?:number|percentage|share|amount|figure)\b|\bdollar figure\b", re.I)
_ASKS_YEAR = re.compile(r"\b(?:what|which) year\b|\bwhen did\b|\bwhen was\b|\bwhen will\b", re.I)
# "X's president", "X's speech", "did X say": the question is about what X said, so X must be the speaker.
_SPEAKER = re.compile(
    r"\b([\w'’.-]+(?: [\w'’.-]+)?)(?:'s|’s|s')? (?:president|prime minister|pm|premier|chancellor|king|queen|emir|leader|"
    r"foreign minister|minister|delegation|delegate|representative|ambassador|speech|statement|address|remarks)\b",
    re.I,
)
# A name in more than this share of the passages tells nothing apart ("Korea" in a library about Korea).
COMMON_NAME_SHARE = 0.3


# Returns True when two names mean the same actor (exactly, or by embedding similarity).
SameName = Callable[[str, Sequence[str]], bool]


@dataclass(frozen=True)
class QuestionFacts:
    """What a question requires of its answer."""

    years: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    # The names the answer must come from, or name: the question's speakers, names some article's
    # title carries, or every name with `require_names` (decided once per question).
    checked_names: tuple[str, ...] = ()
    wants_number: bool = False
    wants_year: bool = False
    wants_month: bool = False


def question_facts(
    question: str,
    lexicon: NameLexicon,
    weights: TermWeights,
    same_name: SameName | None = None,
    speakers_known: Sequence[str] = (),
    require_names: bool = False,
) -> QuestionFacts:
    """The years, numbers, discriminating names, speakers and answer kind a question asks about.

    `speakers_known` are the names that articles' titles and authors carry ("Japan", "United
    Kingdom"): when a question names one of them ("what did the UK say…", "Germany's pledge"),
    the answer must come from that speaker's article or name it. A name no title carries
    ("Lula", who speaks for Brazil) cannot be checked that way and is left alone, as are other
    names unless `require_names`: on the dev sets that check cost more right answers than it
    saved abstentions (docs/answers.md).
    """
    years = tuple(dict.fromkeys(_YEAR.findall(question)))
    numbers = tuple(n for n in dict.fromkeys(_NUMBER.findall(question)) if n not in years)
    names = tuple(name for name in lexicon.names_in(question) if not _common(name, weights))
    speakers: list[str] = []
    for match in _SPEAKER.finditer(question):
        words = lexicon.names_in(match.group(1))
        speakers.extend(w for w in words if w in names and w not in speakers)
    checked = tuple(
        name for name in names if require_names or name in speakers or (same_name is not None and same_name(name, speakers_known))
    )
    return QuestionFacts(
        years=years,
        numbers=numbers,
        names=names,
        speakers=tuple(speakers),
        checked_names=checked,
        wants_number=bool(_ASKS_NUMBER.search(question)),
        wants_year=bool(_ASKS_YEAR.search(question)) and not years,
        wants_month=bool(_ASKS_MONTH.search(question)),
    )


def _common(name: str, weights: TermWeights) -> bool:
    return weights.passages > 3 and weights.document_share(name) > COMMON_NAME_SHARE


_PHRASE = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:of\s+|the\s+|and\s+)*[A-Z][\w'’.-]*)*")


def name_phrases(text: str) -> list[str]:
    """The capitalised phrases of a text ("United Kingdom", "Republic of Korea"), lower-cased, possessives dropped."""
    found = []
    for match in _PHRASE.finditer(text):
        phrase = " ".join(match.group(0).split()).casefold().removesuffix("'s").removesuffix("’s")
        if len(phrase) > 1 and phrase not in found:
            found.append(phrase)
    return found


def unmet(
    facts: QuestionFacts,
    sentence: str,
    context: str,
    article: str,
    lexicon: NameLexicon,
    same_name: SameName,
) -> str:
    """Why a sentence (read with its context and its article's title) does not answer, or ''."""
    folded = f"{context} {article}".casefold()
    for year in facts.years:
        if year not in folded:
            return f"no {year}"
    for number in facts.numbers:
        if number not in context:
            return f"no {number}"
    if facts.wants_month and not _HAS_MONTH.search(sentence):
        return "no month"
    if facts.wants_year and not _YEAR.search(sentence):
        return "no year"
    if facts.wants_number and not has_answer_type(sentence, "number"):
        return "no number"
    around = name_phrases(article) + lexicon.names_in(context)
    for name in facts.checked_names:
        if not same_name(name, around):
            return f"no {name}"
    return ""


class NameMatcher:
    """Decides whether a question's name and a passage's names mean the same actor, caching name vectors."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], threshold: float):
        self.embed = embed
        self.threshold = threshold
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, name: str, candidates: Sequence[str]) -> bool:
        if name in candidates:
            return True
        if not candidates:
            return False
        missing = [n for n in {name, *candidates} if n not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self.embed(missing)))
            if len(self._vectors) > 50_000:  # names repeat; a bound keeps a long-running bot's memory flat
                self._vectors = dict(list(self._vectors.items())[-25_000:])
        wanted = self._vectors[name]
        return max(float(wanted @ self._vectors[c]) for c in candidates) >= self.threshold
