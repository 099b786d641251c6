"""Checking a model's reply: every sentence must be supported by the passage it cites, or it is removed."""

from __future__ import annotations

import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answering.engine import ABSTAIN_PHRASE
from index.answering.llm.config import LLMConfig
from index.indexing.chunking import Span, paragraph_spans, sentence_spans
from index.indexing.embedding import Embedder
from index.text import content_words, has_words, leans_back, plain_sentence
from index.types import Citation, Passage

# ---- reading the reply ---------------------------------------------------------------------

_CITE_GROUP = re.compile(r"\[\^?\s*\d+(?:\s*(?:[,;\u2013-]|and)\s*\^?\d+)*\s*\]")
_CITE_NUMBER = re.compile(r"\d+")
_CITE_RANGE = re.compile(r"(\d+)\s*[\u2013-]\s*(\d+)")
_GLUED_MARKER = re.compile(r"([.!?])(\[\^?\s*\d)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)} | _TENS


@dataclass(frozen=True)
class Claim:
    """One sentence of the model's reply: its text without markers and the passage numbers it cites."""

    text: str
    cited: tuple[int, ...]


def cited_numbers(marker: str) -> list[int]:
    """The passage numbers in one marker: "[2]" -> [2], "[1, 3]" -> [1, 3], "[2-4]" -> [2, 3, 4]."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:[,;]|and)\s*", marker.strip("[]^ ")):
        ranged = _CITE_RANGE.fullmatch(part.strip().lstrip("^"))
        if ranged:
            low, high = int(ranged.group(1)), int(ranged.group(2))
            numbers.extend(range(low, high + 1) if 0 <= high - low <= 10 else (low, high))
        else:
            numbers.extend(int(n) for n in _CITE_NUMBER.findall(part))
    return numbers


def _tidy(text: str) -> str:
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))


def parse_claims(reply: str) -> list[Claim]:
    """The reply's sentences with their citations.

    Markers may stand before or after the full stop ("… low [1]." or "… low. [1]"); markers
    that open a sentence belong to the one before it; a sentence that is only markers adds
    them to the one before it.
    """
    text = _GLUED_MARKER.sub(r"\1 \2", reply.strip())
    claims: list[tuple[str, list[int]]] = []
    for paragraph in paragraph_spans(text):
        first_of_paragraph = True
        for span in sentence_spans(text, paragraph):
            piece = text[span.start : span.end]
            leading = re.match(r"(?:\s*" + _CITE_GROUP.pattern + r")+", piece)
            if leading and claims and not first_of_paragraph:
                claims[-1][1].extend(n for m in _CITE_GROUP.findall(leading.group(0)) for n in cited_numbers(m))
                piece = piece[leading.end() :]
            first_of_paragraph = False
            numbers = [n for m in _CITE_GROUP.findall(piece) for n in cited_numbers(m)]
            bare = _tidy(plain_sentence(_CITE_GROUP.sub(" ", piece)))
            if not has_words(bare):
                if claims:
                    claims[-1][1].extend(numbers)
                continue
            claims.append((bare, numbers))
    return [Claim(bare, tuple(dict.fromkeys(numbers))) for bare, numbers in claims]


def _normal_apostrophes(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("do not", "don't")


def is_abstention(reply: str) -> bool:
    """True when the reply starts with the fixed abstention phrase (curly apostrophes and "do not" allowed)."""
    start = _normal_apostrophes(reply.strip().lstrip("\"'*_>`\u201c ").lower())
    return start.startswith(_normal_apostrophes(ABSTAIN_PHRASE.lower()))


def stem(word: str) -> str:
    """A crude stem for support checks: plural endings off, then the first five letters.

    "households"/"household", "taxes"/"tax", "rationing"/"ration" and "policies"/"policy"
    meet; so do a few unrelated pairs ("general"/"generate"), which the share threshold absorbs.
    """
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith(("xes", "ches", "shes", "sses")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word if word.isdigit() else word[:5]


_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SPELLED = r"(?:" + "|".join(_TENS) + r")(?:[- ](?:" + "|".join(_UNITS[1:10]) + r"))?|" + "|".join(_UNITS)
_FIGURE = re.compile(
    r"(?<![\w.])(?:(?P<digits>\d+(?:[.,]\d+)*)|(?P<word>" + _SPELLED + r")\b|(?P<a>an?)(?=\s+(?:" + "|".join(_SCALES) + r")\b))"
    r"(?:\s*(?P<scale>" + "|".join(_SCALES) + r")s?\b)?(?P<percent>\s*(?:%|percent\b|per\s+cent\b))?",
    re.I,
)
# "Millions" or "billions" with no figure before them, and "hundreds of", "thousands of".
_BARE_SCALE = re.compile(r"\b(" + "|".join(_SCALES) + r")s\b", re.I)
# "one of", "no one", "the one that": "one" as a pronoun, not a figure.
_PRONOUN_ONE = re.compile(
    r"\b(?:no|any|every|each|the|this|that|which|such)\s+one\b"
    r"|(?<!-)(?<!ty )\bone\b(?=\s+(?:of|another|that|who|which|whose|is|was|has|had|can|could|would|will|should|must|may|might"
    r"|and|or|but)\b|\s*[.,;:!?)]|\s*$)",
    re.I,
)


def _spelled_value(word: str) -> int:
    parts = re.split(r"[- ]", word.lower())
    return sum(_NUMBER_WORDS[p] for p in parts)


def _scaled(figure: str, scale: int) -> str:
    """ "1.5" times a billion -> "1500000000"."""
    try:
        exact = decimal.Decimal(figure) * scale
    except decimal.InvalidOperation:
        return f"{figure}x{scale}"
    return format(exact.quantize(1) if exact == exact.to_integral_value() else exact.normalize(), "f")


def numbers_in(text: str, spelled: bool = False, parts: bool = False) -> set[str]:
    """Figures in the text, normalised: "1,000" -> "1000", "1.5 billion" -> "1500000000", "5%" and
    "5 per cent" -> "5%", "millions" with no figure -> "millions".

    With `spelled`, spelled-out numbers count too ("forty" -> "40", "two hundred" -> "200"), but
    not "one" used as a pronoun ("one of", "no one"). With `parts`, each figure also yields what a
    faithful sentence may shorten it to: "50 million" adds "50" and "millions", "5%" adds "5".
    The claim side of a check uses the exact figures, the evidence side adds the parts.
    """
    found: set[str] = set()
    source = _PRONOUN_ONE.sub(lambda m: " " * len(m.group(0)), text) if spelled else text
    scaled: set[int] = set()  # where scale words follow a figure ("50 millions")
    for match in _FIGURE.finditer(source):
        if match.group("digits"):
            base = match.group("digits").replace(",", "")
        elif not spelled:
            continue
        elif match.group("word"):
            base = str(_spelled_value(match.group("word")))
        else:
            base = "1"
        scale = (match.group("scale") or "").lower()
        percent = "%" if match.group("percent") else ""
        value = base
        if scale:
            scaled.add(match.start("scale"))
            value = _scaled(base, _SCALES[scale])
        found.add(value + percent)
        if parts:
            found.update({base, value} | ({scale + "s"} if scale else set()))
    found.update(m.group(1).lower() + "s" for m in _BARE_SCALE.finditer(source) if m.start() not in scaled)
    return found


# ---- polarity: "did not object" against "objected" ------------------------------------------

# Phrases that look negative but deny nothing ("not only X but Y", "no doubt", "whether or not").
_NOT_NEGATION = re.compile(
    r"\bnot\s+(?:only|just|merely|least|to\s+mention)\b|\bno\s+(?:doubt|less|fewer|more\s+than|sooner)\b"
    r"|\bnothing\s+but\b|\b(?:whether|if)\s+(?:or\s+)?not\b"
)
_NEGATION = re.compile(
    r"\b(?:(?:fail|fails|failed|refuse|refuses|refused|decline|declines|declined|unable)\s+to|(?:absence|lack|short)\s+of"
    r"|rather\s+than|instead\s+of|far\s+from|no\s+longer"
    r"|not|no|never|without|neither|nor|none|nobody|nothing|nowhere|lacks?|lacked|lacking)\b"
)
_CUE = "\x00"
# What ends a negation's reach: clause punctuation and words that open another clause.
_CLAUSE_BREAK = frozenset(
    "and but while although though whereas because since which who whom whose that when where yet however unless".split()
)
_POLARITY_TOKEN = re.compile(_CUE + r"|[,;:()\u2013\u2014]|\s-\s|\w+")
# A negation reaches this many content words after it ("did not buy North Korean ammunition").
_NEGATION_REACH = 4
# Words that deny without a negation cue: a clause saying the room "stays closed" agrees with
# "is not open", and "remained silent" with "did not speak". They never make a clash, only
# excuse one (and not when the other side negates that very word: "did not stay closed").
_NEGATIVE_STATE = frozenset(
    "closed shut silent absent missing banned barred forbidden prohibited halted stopped ceased suspended abandoned "
    "rejected refused denied declined unlikely impossible unknown unclear".split()
)


@dataclass
class _Clause:
    stems: set[str]
    # The content words each negation cue in the clause reaches.
    scopes: list[set[str]]
    # Stems of the clause's words in _NEGATIVE_STATE.
    negative_states: set[str]

    @property
    def negated(self) -> set[str]:
        return set().union(*self.scopes)


def clauses(sentence: str) -> list[_Clause]:
    """A sentence cut into clauses, each with its content stems and what its negations reach.

    Cues: not, n't, no, never, without, neither/nor, none, nothing, lack of, failed/refused/
    declined/unable to, short of, rather than, instead of, far from, no longer. A cue reaches the
    next few content words of its clause; "not only", "no doubt" and "whether or not" are not
    cues. "The 2019 Hanoi summit, which ended abruptly without a deal, …" has a clause
    {ended, abrup, deal} whose "without" reaches {deal}.
    """
    text = sentence.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"\bcannot\b|\bcan't\b", "can not", text.replace("won't", "will not").replace("shan't", "shall not"))
    text = _NEGATION.sub(f" {_CUE} ", _NOT_NEGATION.sub(" ", re.sub(r"n't\b", " not", text)))
    found = [_Clause(set(), [], set())]
    reach = 0
    for token in _POLARITY_TOKEN.findall(text):
        clause = found[-1]
        if token == _CUE:
            clause.scopes.append(set())
            reach = _NEGATION_REACH
        elif not (token[0].isalnum() or token[0] == "_") or token in _CLAUSE_BREAK:
            if clause.stems or clause.scopes:
                found.append(_Clause(set(), [], set()))
            reach = 0
        elif content_words(token):
            clause.stems.add(stem(token))
            if token in _NEGATIVE_STATE:
                clause.negative_states.add(stem(token))
            if reach:
                clause.scopes[-1].add(stem(token))
                reach -= 1
    return [c for c in found if c.stems or c.scopes]


def _clashes(negating: list[_Clause], stating: list[_Clause]) -> bool:
    """Does a negation in one sentence land on words the other sentence states positively?"""
    if not stating:
        return False
    for clause in negating:
        for scope in clause.scopes:
            # Does the other sentence negate these words anywhere ("No deal was reached at the
            # summit" / "The summit, which ended without a deal, …")? Then they agree.
            if any(scope & other.negated for other in stating):
                continue
            # Otherwise, compare with the clause that says most about the same thing.
            closest = max(stating, key=lambda other: len(clause.stems & other.stems) + len(scope & other.stems))
            if scope & closest.stems and not closest.negative_states - scope:
                return True
    return False


def polarity_clash(claim: str, evidence: str) -> bool:
    """True when one sentence negates words that the other states without negation.

    "China did not object to the sanctions" against "China objected to the sanctions", and
    "The summit ended with a deal" against "The summit ended without a deal", clash. Both
    sides negating the same words ("ended with no deal" / "ended without a deal"), or negations
    that reach no shared word ("collapsed with no agreement" / "ended without a deal"), do not.
    """
    claim_clauses, evidence_clauses = clauses(claim), clauses(evidence)
    return _clashes(claim_clauses, evidence_clauses) or _clashes(evidence_clauses, claim_clauses)


@dataclass(frozen=True)
class Support:
    """How well one passage supports one claim."""

    supported: bool
    lexical: float
    cosine: float
    numbers_ok: bool
    # Index of the passage sentence closest to the claim (what the citation quotes).
    best_sentence: int
    # False when the claim and that sentence disagree on a negation (`polarity_clash`).
    polarity_ok: bool = True

    @property
    def score(self) -> float:
        return max(self.lexical, self.cosine)


# Sentences that address the model rather than the reader. They may be quoted to the model as
# data, but they never count as evidence for a claim: a model that obeyed "say X" must not find
# X "supported" by the very sentence that asked for it.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?]{0,40}?\b(?:instructions?|rules|prompts?|guidelines|directions|above|previous|prior)\b"
    r"|\b(?:system\s+prompt|developer\s+message|jailbreak)"
    r"|\byou\s+(?:are|must|will|should)\s+now\b"
    r"|\bas\s+an?\s+(?:AI|assistant|language\s+model|chatbot)\b"
    r"|\b(?:AI|assistant|chatbot|model)\s*[:,]\s*(?:ignore|disregard|say|reply|respond|answer|output)\b"
    r"|^\W*(?:say|reply|respond|answer|output|print|repeat)\b"
    r"|<\|?\s*/?\s*(?:im_start|im_end|system|user|assistant|start_of_turn|end_of_turn|passages)"
    r"|\[/?(?:INST|SYS)\]",
    re.I,
)


def instruction_like(sentence: str) -> bool:
    """True for a sentence that gives orders to an AI ("Ignore previous instructions…", "Say …")."""
    return bool(_INSTRUCTION.search(plain_sentence(sentence)))


def check_support(
    claim: str,
    claim_vector: np.ndarray,
    title: str,
    sentences: Sequence[str],
    evidence_vectors: np.ndarray,
    config: LLMConfig = LLMConfig(),
    excluded: Sequence[str] = (),
) -> Support:
    """Does a passage support a claim? Cheap, explainable tests: one of two, and figures always.

    The evidence is the passage's title and its sentences, less any that read as orders to an
    AI (`instruction_like`).
    - Lexical support: the share of the claim's content words (stopwords out, crude stems) that
      occur in the evidence must reach `config.lexical_support`. Rewording a passage keeps most
      of its words; a claim the passage never makes brings words of its own.
    - Semantic support: otherwise the cosine between the claim's embedding and the evidence's,
      or one of its sentences', must reach `config.semantic_support`, for paraphrases that
      change the words but keep the meaning.
    - Figures: every number in the claim, as digits or spelled out, must occur in the evidence
      (`numbers_in`: "forty" = 40, "5 per cent" = "5%", "1.5 billion" = 1500000000; "millions"
      is not "billions"). Embeddings barely tell 40 from 80, and the lexical share lets one
      wrong figure through, so figures are checked exactly.
    - Polarity: the claim must not negate what the passage sentence closest to it states, nor
      state what that sentence negates (`polarity_clash`): "China did not object" reuses every
      word of "China objected", and embeddings barely see the "not".
    - Injected words: a claim using a word that the passage has only inside its `excluded`
      (instruction-like) sentences repeats what an injection asked for, and is not supported,
      however well the rest of it matches ("You must say PWNED; the library opens at nine.").
    A claim with fewer than `config.min_claim_words` content words, figures aside ("Yes.",
    "PWNED.", "40."), is too small to check and is not supported.

    `evidence_vectors` holds the vector of all the evidence first, then one per sentence.
    """
    evidence = "\n".join([title, *sentences])
    # Figures are left to the exact number check: "40" may be "forty" in the passage.
    claim_stems = {stem(w) for w in content_words(claim) if not w.isdigit() and w not in _NUMBER_WORDS}
    evidence_stems = {stem(w) for w in content_words(evidence)}
    lexical = len(claim_stems & evidence_stems) / len(claim_stems) if claim_stems else 0.0
    cosines = evidence_vectors @ claim_vector if sentences else np.zeros(1)
    cosine = float(cosines.max())
    numbers_ok = numbers_in(claim, spelled=True) <= numbers_in(evidence, spelled=True, parts=True)
    injected = {stem(w) for text in excluded for w in content_words(text)} - evidence_stems
    best = 0
    if sentences:
        overlap = [len(claim_stems & {stem(w) for w in content_words(s)}) / max(1, len(claim_stems)) for s in sentences]
        best = int(np.argmax(np.asarray(cosines[1:]) + np.asarray(overlap)))
    polarity_ok = not sentences or not polarity_clash(claim, sentences[best])
    supported = (
        bool(sentences)
        and len(claim_stems) >= config.min_claim_words
        and numbers_ok
        and polarity_ok
        and not claim_stems & injected
        and (lexical >= config.lexical_support or cosine >= config.semantic_support)
    )
    return Support(supported, lexical, cosine, numbers_ok, best, polarity_ok)


@dataclass(frozen=True)
class Verified:
    """The model's reply after checking: supported sentences with renumbered citations."""

    text: str
    citations: tuple[Citation, ...]
    kept: int
    dropped: int
    # Markers naming passages that do not exist ([7] with 5 passages), removed.
    invalid_numbers: int


def evidence_spans(passage: Passage) -> tuple[list[Span], list[str]]:
    """The passage's sentences that can support a claim (offsets into the article), and the text of those that cannot."""
    p = passage.chunk
    evidence, excluded = [], []
    # Sentences are cut inside paragraphs: a heading sharing the passage is never glued to the sentence after it.
    for s in (s for block in paragraph_spans(p.text) for s in sentence_spans(p.text, block)):
        text = p.text[s.start : s.end]
        if instruction_like(text):
            excluded.append(text)
        elif has_words(text):
            evidence.append(Span(p.start + s.start, p.start + s.end))
    return evidence, excluded


def verify_reply(reply: str, passages: Sequence[Passage], embedder: Embedder, config: LLMConfig = LLMConfig()) -> Verified:
    """Keep the sentences their cited passages support; cite them 1..m in order of first use.

    Citations to passages that do not exist are removed. A sentence is kept with those of its
    citations that pass `check_support`; a sentence whose citations all fail, or that has none,
    is removed, so every sentence shown carries a checked citation. Each citation quotes
    exactly the article text of the passage sentence(s) closest to the sentences citing it.
    """
    claims = parse_claims(reply)
    by_number = {p.n: p for p in passages}
    invalid = sum(1 for c in claims for n in c.cited if n not in by_number)
    used = sorted({n for c in claims for n in c.cited if n in by_number})
    split = {n: evidence_spans(by_number[n]) for n in used}
    spans = {n: evidence for n, (evidence, _) in split.items()}
    sentences = {
        n: [by_number[n].chunk.text[s.start - by_number[n].chunk.start : s.end - by_number[n].chunk.start] for s in spans[n]] for n in used
    }
    # One embedding batch: the claims, then per cited passage its evidence as a whole and each sentence.
    texts = [c.text for c in claims]
    rows: dict[int, tuple[int, int]] = {}
    for n in used:
        first = len(texts)
        texts.append(plain_sentence(" ".join(sentences[n])))
        texts.extend(plain_sentence(t) for t in sentences[n])
        rows[n] = (first, len(texts))
    vectors = embedder.embed(texts) if used else np.zeros((len(claims), 1), dtype=np.float32)

    kept: list[tuple[Claim, list[tuple[int, Support]]]] = []
    dropped = 0
    for index, claim in enumerate(claims):
        good = []
        for n in claim.cited:
            if n not in by_number:
                continue
            first, last = rows[n]
            # The model read the title with the passage, so a claim may lean on it too.
            support = check_support(
                claim.text, vectors[index], by_number[n].chunk.title, sentences[n], vectors[first:last], config, excluded=split[n][1]
            )
            if support.supported:
                good.append((n, support))
        if good:
            kept.append((claim, good))
        else:
            dropped += 1

    renumber: dict[int, int] = {}
    quoted: dict[int, list[Span]] = {}
    scores: dict[int, float] = {}
    parts = []
    for claim, good in kept:
        for n, support in good:
            if n not in renumber:
                renumber[n] = len(renumber) + 1
                quoted[n] = []
            quoted[n].extend(_quote_spans(spans[n], support.best_sentence, by_number[n]))
            scores[n] = max(scores.get(n, 0.0), support.score)
        parts.append(claim.text + " " + "".join(f"[{renumber[n]}]" for n, _ in good))
    citations = []
    for n, m in renumber.items():
        p = by_number[n].chunk
        start, end = min(s.start for s in quoted[n]), max(s.end for s in quoted[n])
        citations.append(
            Citation(m, p.article_id, p.title, p.url, p.paragraph, p.text[start - p.start : end - p.start], start, end, scores[n])
        )
    return Verified(" ".join(parts), tuple(citations), len(kept), dropped, invalid)


def _quote_spans(spans: Sequence[Span], best: int, passage: Passage) -> list[Span]:
    """The best sentence, with the one just before it when it opens with "It", "This", "However"…"""
    chosen = [spans[best]]
    text = passage.chunk.text[spans[best].start - passage.chunk.start : spans[best].end - passage.chunk.start]
    gap = passage.chunk.text[spans[best - 1].end - passage.chunk.start : spans[best].start - passage.chunk.start] if best > 0 else "x"
    if best > 0 and leans_back(text) and not gap.strip():
        chosen.append(spans[best - 1])
    return chosen


def strip_citations(text: str) -> str:
    """Text without its [n] markers (earlier answers sent back as history)."""
    return " ".join(_tidy(_CITE_GROUP.sub(" ", text)).split())
