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
from index.text import STOPWORDS, has_answer_type, without_possessive
from index.types import ArticleInfo

_DETERMINERS = frozenset("the a an this that these those his her their its our your my".split())
_QUESTION_WORD = re.compile(r"[\w'’.-]+")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_MONTH_WORDS = "january february march april may june july august september october november december".split()
_ASKS_MONTH = re.compile(r"\b(?:what|which) month\b|\bwhat day\b|\bexact date\b", re.I)
_HAS_MONTH = re.compile(r"\b(?:" + "|".join(_MONTH_WORDS) + r")\b", re.I)
_ASKS_NUMBER = re.compile(r"\bhow (?:many|much)\b|\b(?:what|which) (?:number|percentage|share|amount|figure)\b|\bdollar figure\b", re.I)
_ASKS_YEAR = re.compile(r"\b(?:what|which) year\b|\bwhen did\b|\bwhen was\b|\bwhen will\b", re.I)
# "X's president", "X's speech": the question is about what X said, so X must be the speaker.
_ROLES = (
    "president|prime minister|pm|premier|chancellor|king|queen|emir|leader|foreign minister|minister|delegation|"
    "delegate|representative|rep|ambassador|government|administration|team|policy|position|stance|speech|statement|address|"
    "remarks"
)
_SPEAKER = re.compile(
    r"\b([\w'’.-]+(?: [\w'’.-]+)?)(?:'s|’s|s')? (?:(?:1[89]|20)\d\d )?(?:un |general debate )?(?:" + _ROLES + r")\b", re.I
)
_ROLE_WORDS = frozenset(_ROLES.replace("|", " ").split())
# "X's 2023 speech", "did X say", "according to X": X names the source, so only X's articles can answer.
_SOURCE = re.compile(
    r"\b([\w'’.-]+(?: [\w'’.-]+)?)(?:'s|’s|s')? (?:(?:1[89]|20)\d\d )?(?:un |general debate )?"
    r"(?:speech|statement|address|remarks|delegation|government)\b"
    r"|\bdid ([\w'’.-]+(?: [\w'’.-]+){0,2}) (?:say|tell|claim|call|announce|ask|want|warn|pledge|propose|promise|demand|"
    r"accuse|mention|blame|praise|thank|urge|describe|argue|complain|offer|critici[sz]e)\b"
    r"|\b(?:according to|per) ([\w'’.-]+(?: [\w'’.-]+)?)",
    re.I,
)
# A name in more than this share of the passages tells nothing apart ("Korea" in a library about Korea).
COMMON_NAME_SHARE = 0.3


# Returns True when two names mean the same actor (exactly, or by embedding similarity).
SameName = Callable[[str, Sequence[str]], bool]
# The candidates close enough to a name to be its aliases, with their similarity.
Similarities = Callable[[str, Sequence[str]], dict[str, float]]


@dataclass(frozen=True)
class QuestionFacts:
    """What a question requires of its answer."""

    years: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    # Runs of adjacent names as the question writes them ("south korea"): what titles are matched against.
    phrases: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    # Names the question gives as its source ("did China say"): when a title carries one, only its articles answer.
    sources: tuple[str, ...] = ()
    # Speakers or sources the passages never mention ("did Kim Jong Un say"): checked like names.
    strangers: tuple[str, ...] = ()
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
    # The names titles carry count as names too: a speech never names its own country mid-sentence.
    title_words = {w for phrase in speakers_known for w in phrase.split() if w not in STOPWORDS and w not in lexicon.common_words}
    found = lexicon.names_in(question) + [w for w in _words(question) if w in title_words]
    names = tuple(name for name in dict.fromkeys(found) if not _common(name, weights))
    speakers: list[str] = []
    for match in _SPEAKER.finditer(question):
        words = lexicon.names_in(match.group(1))
        speakers.extend(w for w in words if w in names and w not in speakers)
    sources = [w for match in _SOURCE.finditer(question) for w in lexicon.names_in(next(g for g in match.groups() if g)) if w in names]
    checked = tuple(
        name for name in names if require_names or name in speakers or (same_name is not None and same_name(name, speakers_known))
    )
    # "What did Kim Jong Un say", "Biden's administration": someone the passages never mention at all
    # cannot be the source of any sentence, so nothing meets the question.
    strangers = tuple(dict.fromkeys(w for w in _strangers(question, weights) if w not in names))
    checked += strangers
    return QuestionFacts(
        years=years,
        numbers=numbers,
        names=names + strangers,
        strangers=strangers,
        phrases=_name_runs(question, names),
        speakers=tuple(speakers),
        sources=tuple(dict.fromkeys(sources)),
        checked_names=checked,
        wants_number=bool(_ASKS_NUMBER.search(question)),
        wants_year=bool(_ASKS_YEAR.search(question)) and not years,
        wants_month=bool(_ASKS_MONTH.search(question)),
    )


def _strangers(question: str, weights: TermWeights) -> list[str]:
    """The words of a speaker or source the question names ("did Kim Jong Un say") that no passage uses.

    A description ("the author", "his team") does not count; a typo ("pyonyang's") is rare
    next to a name the library simply does not cover.
    """
    found: list[str] = []
    for pattern in (_SPEAKER, _SOURCE):
        for match in pattern.finditer(question):
            for group in (g for g in match.groups() if g):
                words = _words(group)
                content = [w for w in words if w not in STOPWORDS]
                if not content or words[0] in _DETERMINERS or not weights.passages:
                    continue
                found.extend(w for w in content if w.isalpha() and len(w) > 2 and w not in _ROLE_WORDS and not weights.knows(w))
    return found


def _words(question: str) -> list[str]:
    """The question's words, lower-cased, possessives dropped."""
    return [_word(match) for match in _QUESTION_WORD.finditer(question)]


def _word(match: re.Match[str]) -> str:
    return without_possessive(match.group(0).rstrip("'’.-").casefold())


def _name_runs(question: str, names: Sequence[str]) -> tuple[str, ...]:
    """The question's names joined where they stand side by side ("south korea", "united states")."""
    runs: list[list[str]] = []
    previous_end: int | None = None  # where the last word ended, when that word was a name
    for match in _QUESTION_WORD.finditer(question):
        word = _word(match)
        if word not in names:
            previous_end = None
            continue
        if runs and previous_end is not None and not question[previous_end : match.start()].strip(" -"):
            runs[-1].append(word)
        else:
            runs.append([word])
        previous_end = match.end()
    return tuple(dict.fromkeys(" ".join(run) for run in runs))


def _common(name: str, weights: TermWeights) -> bool:
    return weights.passages > 3 and weights.document_share(name) > COMMON_NAME_SHARE


_PHRASE = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:of\s+|the\s+|and\s+)*[A-Z][\w'’.-]*)*")


def name_phrases(text: str) -> list[str]:
    """The capitalised phrases of a text ("United Kingdom", "Republic of Korea"), lower-cased, possessives dropped."""
    found: list[str] = []
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


# A question pointing at more articles than this names a topic, not a source: retrieval is left alone.
MAX_NAMED_ARTICLES = 100
# A title's name stands for a question's name at this similarity: "beijing" ↔ "china" (0.76), "uk" ↔
# "united kingdom" (0.79); not "taiwan" ↔ "china" (0.73) nor "afghanistan" ↔ "tajikistan" (0.67).
ALIAS_ABOVE = 0.75
# Aliases this close to the best one are as good (a tie).
ALIAS_TIE = 0.03


@dataclass(frozen=True)
class NamedArticles:
    """The articles a question points at by a name their title or author carries, and whether it insists."""

    article_ids: tuple[str, ...] = ()
    # "China's 2024 speech", "what did Kenya's president say": only those articles can answer.
    # A bare name ("what about China?") may be the topic of another article: those are preferred, not required.
    only: bool = False


def named_articles(facts: QuestionFacts, carried: Sequence[tuple[ArticleInfo, Sequence[str]]], similarities: Similarities) -> NamedArticles:
    """The articles whose title or author carries a name the question checks, narrowed to the question's years.

    `carried` pairs each article with the name phrases of its title and author. A question's
    phrase ("south korea") matches a title's phrase exactly, else by its words ("korea" in
    "north korea" and "south korea"), else through its closest embedding aliases ("beijing" ↔
    "china"). A phrase that most articles carry ("un general debate") tells nothing apart.
    """
    checked = [p for p in facts.phrases if any(word in facts.checked_names for word in p.split())]
    if not checked:
        return NamedArticles()
    known = {phrase for _, phrases in carried for phrase in phrases}
    picked: list[ArticleInfo] = []
    for phrase in checked:
        aliases = {phrase} if phrase in known else {k for k in known if f" {phrase} " in f" {k} "}
        aliases = aliases or _closest(phrase, known, similarities)
        matching = [info for info, phrases in carried if aliases.intersection(phrases)]
        if len(matching) <= min(MAX_NAMED_ARTICLES, len(carried) // 2 or 1):
            picked.extend(matching)
    if facts.years:
        dated = [info for info in picked if any(year in f"{info.title} {info.published}" for year in facts.years)]
        picked = dated or picked
    ids = tuple(dict.fromkeys(info.article_id for info in picked))
    if not ids:
        return NamedArticles()
    return NamedArticles(ids, only=any(name in facts.sources for name in facts.checked_names))


def _closest(phrase: str, known: set[str], similarities: Similarities) -> set[str]:
    """The known phrases that alias `phrase` by embedding: the closest one, and any as close (a tie)."""
    ranked = {k: score for k, score in similarities(phrase, sorted(known)).items() if score >= ALIAS_ABOVE}
    best = max(ranked.values(), default=0.0)
    return {k for k, score in ranked.items() if score >= best - ALIAS_TIE}


class NameMatcher:
    """Decides whether a question's name and a passage's names mean the same actor, caching name vectors."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], threshold: float):
        self.embed = embed
        self.threshold = threshold
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, name: str, candidates: Sequence[str]) -> bool:
        if name in candidates:
            return True
        return max(self.similarities(name, candidates).values(), default=0.0) >= self.threshold

    def similarities(self, name: str, candidates: Sequence[str]) -> dict[str, float]:
        """The candidates at or above the threshold, with their similarity to `name`."""
        if not candidates:
            return {}
        missing = [n for n in {name, *candidates} if n not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self.embed(missing)))
            if len(self._vectors) > 50_000:  # names repeat; a bound keeps a long-running bot's memory flat
                self._vectors = dict(list(self._vectors.items())[-25_000:])
        wanted = self._vectors[name]
        scores = {c: float(wanted @ self._vectors[c]) for c in candidates}
        return {c: score for c, score in scores.items() if score >= self.threshold}
