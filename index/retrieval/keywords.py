"""Keyword statistics over the index's passages: BM25 ranking and the word weights answers use.

Both come from one tokenisation (lower-cased, stemmed, the one stopword list in index.text)
and one pass over the passages, so "policies" matches "policy" in ranking and in scoring
sentences alike.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from index.text import STOPWORDS, without_possessive

# Lucene's (and Elasticsearch's) BM25 parameters; bm25s defaults to k1=1.5.
BM25_K1 = 1.2
BM25_B = 0.75

_TOKEN = re.compile(r"\w+", re.UNICODE)


def _english_stemmer() -> Callable[[list[str]], list[str]]:
    """Snowball's English stemmer (PyStemmer, C); without it, words are matched unstemmed."""
    try:
        import Stemmer
    except ImportError:
        return lambda words: words
    stemmer = Stemmer.Stemmer("english")
    return lambda words: list(stemmer.stemWords(words))


_stem_words = _english_stemmer()


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without stopwords ("policies" matches "policy")."""
    return _stem_words([t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS and (len(t) > 1 or t.isdigit())])


class TermWeights:
    """Inverse document frequency of (stemmed) words over the index's passages.

    A word found in most passages ("North Korea" in a corpus about North Korea) says little
    about which sentence answers; a rare one ("warheads") says a lot.
    """

    def __init__(self, texts: Sequence[str] = (), *, tokenized: Sequence[Sequence[str]] | None = None):
        documents = tokenized if tokenized is not None else [keyword_tokens(t) for t in texts]
        self.passages = len(documents)
        counts: dict[str, int] = {}
        for tokens in documents:
            for token in set(tokens):
                counts[token] = counts.get(token, 0) + 1
        self._counts = counts

    def knows(self, word: str) -> bool:
        """Whether any passage contains the word (or another form of it)."""
        tokens = keyword_tokens(word)
        return bool(tokens) and all(t in self._counts for t in tokens)

    def document_share(self, word: str) -> float:
        """The share of passages that contain the word (in any form); 0 for an empty index."""
        tokens = keyword_tokens(word)
        if not tokens or not self.passages:
            return 0.0
        return min(self._counts.get(t, 0) for t in tokens) / self.passages

    def idf(self, word: str) -> float:
        """log((N + 1) / (df + 0.5)): high for rare words, near zero for words in every passage."""
        tokens = keyword_tokens(word) or [word]
        return max(self._idf(t) for t in tokens)

    def _idf(self, token: str) -> float:
        return math.log((self.passages + 1) / (self._counts.get(token, 0) + 0.5))

    def overlap(self, question_words: set[str], sentence: str) -> float:
        """IDF-weighted share of the question's words that the sentence contains (in any form)."""
        wanted = {t for word in question_words for t in keyword_tokens(word)}
        total = sum(self._idf(t) for t in wanted)
        if total <= 0:
            return 0.0
        found = wanted & set(keyword_tokens(sentence))
        return sum(self._idf(t) for t in found) / total


_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
# A word at a sentence start: first in the text, or after one of these marks and at most two
# spaces (the three characters before it end in a mark and spaces). Its capital says nothing.
_SENTENCE_START_WORD = re.compile(r"(?:\A|[.!?:;\"“”(\[\n]\s{0,2})(" + _WORD.pattern + ")")


class NameLexicon:
    """Words the passages write capitalised mid-sentence ("Japan", "Pyongyang"): names, learnt from the corpus.

    Members type in lower case, so a question's names are found by looking its words up here
    rather than by their capitals.
    """

    def __init__(self, texts: Sequence[str], min_count: int = 1, min_share: float = 0.8):
        # Counted by written form first, then folded into words: the regular expressions and Counter
        # do the per-word work in C (a third of the time of a Python loop over every word, which
        # made this most of the keyword index's build).
        forms: Counter[str] = Counter()
        at_starts: Counter[str] = Counter()
        for text in texts:
            forms.update(_WORD.findall(text))
            at_starts.update(_SENTENCE_START_WORD.findall(text))
        capitalised: dict[str, int] = {}
        seen: dict[str, int] = {}
        for form, count in forms.items():
            count -= at_starts.get(form, 0)  # a capital after a full stop says nothing
            word = form.rstrip("'’-")
            if count <= 0 or len(word) < 2:
                continue
            key = without_possessive(word.casefold())
            seen[key] = seen.get(key, 0) + count
            if word[0].isupper():
                capitalised[key] = capitalised.get(key, 0) + count
        self.names = frozenset(
            word for word, count in capitalised.items() if count >= min_count and count / seen[word] >= min_share and word not in STOPWORDS
        )
        # Words the passages mostly write in lower case ("tax"): never names, even in a title.
        self.common_words = frozenset(word for word, count in seen.items() if capitalised.get(word, 0) / count < min_share)

    def names_in(self, text: str) -> list[str]:
        """The words of a text (any case) that the corpus writes as names, lower-cased, in order."""
        found = []
        for match in _WORD.finditer(text):
            word = without_possessive(match.group(0).rstrip("'’-").casefold())
            if word in self.names and word not in found:
                found.append(word)
        return found


class KeywordIndex:
    """BM25 over the store's chunks, built in memory (bm25s, sparse matrices), and their word weights.

    `texts` are what BM25 reads for each chunk: the chunk text, and the article title when the
    retriever supplies it, so a question that names the article's subject finds its passages.
    """

    def __init__(self, chunk_ids: np.ndarray, texts: Sequence[str]):
        import bm25s

        # bm25s sets its own logger to DEBUG when imported: its "Building index from tokens" would
        # pass any handler a host configured (LOG_LEVEL=warning included). Its warnings still show.
        bm25s.logger.setLevel(logging.WARNING)

        self.chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        self._order = np.argsort(self.chunk_ids, kind="stable")
        self._bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        self._vocabulary: dict[str, Any] = {}
        tokenized = [keyword_tokens(t) for t in texts]
        self.weights = TermWeights(tokenized=tokenized)
        self.names = NameLexicon(texts)
        if len(texts):
            self._bm25.index(tokenized, show_progress=False)
            self._vocabulary = self._bm25.vocab_dict

    def scores(self, question: str) -> np.ndarray | None:
        """BM25 score of every chunk (aligned with `chunk_ids`); None when no query word is indexed."""
        tokens = [t for t in keyword_tokens(question) if t in self._vocabulary]
        if not tokens or not len(self.chunk_ids):
            return None
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def scores_of(self, scores: np.ndarray | None, chunk_ids: Sequence[int]) -> np.ndarray:
        """The entries of a `scores` array for these chunk ids (0 for unknown ids or no scores)."""
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        if scores is None or not len(wanted):
            return np.zeros(len(wanted), dtype=np.float32)
        sorted_ids = self.chunk_ids[self._order]
        slots = np.clip(np.searchsorted(sorted_ids, wanted), 0, len(sorted_ids) - 1)
        found = sorted_ids[slots] == wanted
        return np.where(found, scores[self._order[slots]], 0.0).astype(np.float32)

    def top(self, scores: np.ndarray | None, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) pairs with a positive score."""
        if scores is None or k < 1:
            return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in top if scores[i] > 0]

    def search(self, question: str, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) pairs; empty when no query word is in the corpus."""
        return self.top(self.scores(question), k)
