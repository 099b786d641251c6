"""Small text helpers shared by answers, summaries and the chat layers."""

from __future__ import annotations

import re

_MARKDOWN_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+\u2022]\s+|>\s*|\d+[.)]\s+)")
_WORD = re.compile(r"\w+", re.UNICODE)
# A sentence that starts like this leans on the one before it; quote that one too.
_LEANS_BACK = re.compile(r"^(?:It|Its|This|That|These|Those|They|Their|He|She|Such|However|But|Yet|So|Still|Even so|For these reasons)\b")
STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my of on or our she so than that the their them then there these they this those to us was we were what "
    "when where which while who whom whose why will with would you your he him his her about also any all more "
    "most some such not no nor only own same too very just should now after before over under again further once "
    "tell say says said according article articles".split()
)


def clean_question(raw: str, limit: int) -> str:
    """Whitespace collapsed; ValueError saying why when it is empty or longer than `limit` characters."""
    question = " ".join(raw.split())
    if undecodable(question):
        raise ValueError("the question is not valid UTF-8 text")
    if not question:
        raise ValueError("the question is empty")
    if len(question) > limit:
        raise ValueError(f"the question is {len(question):,} characters long; the limit is {limit:,}")
    return question


def undecodable(text: str) -> bool:
    """True when text read with errors="surrogateescape" held bytes that are not UTF-8 (they became lone surrogates)."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def printable(text: str) -> str:
    """The text with bytes that were not UTF-8 shown as U+FFFD, safe to print or put in JSON."""
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text) if undecodable(text) else text


def plain_sentence(text: str) -> str:
    """A sentence without a leading Markdown heading, bullet or quote marker, on one line."""
    return " ".join(_MARKDOWN_PREFIX.sub("", text).split())


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stopwords, no one-letter words)."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def has_words(text: str) -> bool:
    """True when the text has at least one letter or digit (not only emoji or punctuation)."""
    return bool(_WORD.search(text))


# Not "one": far more often a pronoun ("one that could", "one of the") than an amount.
_NUMBER_WORDS = (
    "two three four five six seven eight nine ten eleven twelve dozen dozens hundred hundreds thousand "
    "thousands million millions billion billions trillion half quarter percent"
).split()
_MONTHS = "january february march april may june july august september october november december".split()
_HAS_NUMBER = re.compile(r"\d|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.I)
_YEAR_ONLY = re.compile(r"(?<![\d.,$€£])\b(?:1[5-9]\d\d|20\d\d)s?\b(?![.,]\d)")
_HAS_DATE = re.compile(r"\b(?:1[5-9]\d\d|20\d\d)s?\b|\b(?:" + "|".join(_MONTHS) + r")\b|\bcentury\b", re.I)


def has_answer_type(text: str, kind: str | None) -> bool:
    """Whether the text holds the kind of answer a question asks for (always True for no kind)."""
    if kind == "date":
        return bool(_HAS_DATE.search(text))
    if kind == "number":
        # "In 2024" answers no "how many": a year is not an amount.
        return bool(_HAS_NUMBER.search(_YEAR_ONLY.sub(" ", text)))
    return True


def leans_back(sentence: str) -> bool:
    """True when a sentence starts with a word that refers to the sentence before it."""
    return bool(_LEANS_BACK.match(plain_sentence(sentence)))


def without_possessive(word: str) -> str:
    """A lower-cased word without its possessive ending ("japan's" -> "japan")."""
    return word.removesuffix("'s").removesuffix("’s")
