"""Reading a question with the conversation before it, when it is a follow-up.

`is_follow_up` is a lexical rule (no model, a few microseconds), written for the way members type:
lowercase, sloppy, often without a question mark. A question is a follow-up when it

1. starts with a connective, after any "ok"/"hmm": "and beijing", "what about moscow",
   "so they'd keep their nukes", "but why";
2. is an ellipsis: no content words at all ("why?", "how so", "what happened"), or at most two
   and no verb ("which month", "how many warheads", "the hostages?");
3. leans on something it does not name itself:
   - a pronoun or possessive before the question has named anything ("why did it fall apart",
     "are their soldiers fighting", "will that last", "what has he said");
   - an object pronoun, "there" or a final "then" with nothing named in its clause ("what would
     the north get out of it", "what happened there");
   - "this/these/those" pointing back ("what did kim say about this decision");
   - "else" or a final "too"/"instead" ("who else might they talk to", "did china help too").

A question that names its own subject stays self-contained, lowercase too: "has beijing warmed up
to kim's regime", "why is russia important here" ("here" and "now" never make a follow-up), "where
does germany say it ranks" (the pronoun has its antecedent in the question), "why does china back
the north these days" (a demonstrative of time), "what's the main point of this article" (the
article itself is the subject).

Measured on bench/questions/conversations_*.jsonl and ungdc_conversations.jsonl with
`python -m bench.follow_up_decision` (figures in docs/answers.md, "Follow-ups").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.text import STOPWORDS
from index.types import Turn

# Fillers a member types before the question proper: "ok and china?", "hmm what about moscow".
_FILLER = re.compile(r"^(?:(?:ok|okay|k|right|alright|hmm+|hm|oh|ah|cool|great|thanks|thx|ty|well|yeah|yes|no)\b[\s,.!]*)+")
_US = re.compile(r"\bU\.?S\.?A?\b(?!['’]?[a-z])")
_THE_US = re.compile(r"(?<=\bthe )us\b", re.I)
_CONNECTIVE = re.compile(r"^(?:and|but|so|also|then|or|plus|same|what about|how about|what of|what else|how so|how come)\b")

_AUX = frozenset(
    "is are was were be been being am do does did has have had will would can could should shall may might must "
    "isn aren wasn weren don doesn didn hasn haven hadn won wouldn cannot couldn shouldn mustn wont dont doesnt "
    "didnt isnt arent wasnt cant".split()
)
_BE = frozenset("is are was were be been being am 's".split())
# Past forms a fragment does not have: "who wrote this", "what happened in hanoi" are whole questions.
_IRREGULAR_PAST = frozenset(
    "wrote said went came took gave made met sent got began fell won lost told sold bought fought brought thought "
    "led left held kept saw knew became ran spoke chose paid meant built broke rose grew drew flew shot struck "
    "stood understood hit put set cut let sought taught caught sat spent fled withdrew overtook undertook".split()
)
# Words that never name what a question is about, so they neither count as its subject nor as content.
_GENERIC = STOPWORDS | frozenset(
    "many much else long exactly actually really here now still again instead happen happened happens happening "
    "mean means meant think thing things way kind sort get gets got go goes going gone make makes made let like "
    "just even maybe ever yet already though anyway why please pls thanks ok okay one ones well really too "
    "either yes no".split()
)
_TIME_NOUNS = frozenset(
    "day days year years week weeks month months time times point moment moments morning century decade decades "
    "era summer winter spring autumn season".split()
)
# "this article", "who wrote this": the document itself is the subject, not an earlier turn.
_DOCUMENT_NOUNS = frozenset(
    "article articles piece essay story report text document page author authors writer speech speeches analysis "
    "op ed site source post paper magazine outlet publication interview address".split()
)
# Requests in the imperative are whole questions: "summarise this piece", "explain the carbon dividend".
_IMPERATIVES = frozenset("summarise summarize explain describe list give compare define outline tell show name recap sum".split())
_AUTHORSHIP = frozenset("wrote write writes written writing author authors published publish publishes".split())
_PREPOSITIONS = frozenset(
    "about of for with after before on in from to by at into over under against like than without during "
    "since until behind beyond through toward towards upon out".split()
)
# Words that start a new clause: a pronoun after one may refer to a name before it.
_CLAUSE_BREAK = frozenset("and but or , that if when because since while whether so".split())
_SUBJECT_PRONOUNS = frozenset("it they he she".split())
_OBJECT_PRONOUNS = frozenset("them him".split())
_POSSESSIVES = frozenset("its their theirs his".split())
_DEMONSTRATIVES = frozenset("this these those that".split())
# "is it true that…", "how long does it take…": "it" that stands for nothing.
_EXPLETIVE_AFTER_IT = frozenset(
    "true possible likely unlikely hard harder easy easier clear important necessary worth safe fair legal wise "
    "fine enough take takes took seem seems seemed appear appears appeared matter matters".split()
)
_ADDITIVE_END = frozenset("too instead either".split())


def _tokens(question: str) -> list[str]:
    """Lower-cased words with contractions split off ("they'd" → they, 'd; "kim's" → kim, 's); "," kept."""
    # "US" and "the us" name a country; "us" alone is a stopword.
    text = _THE_US.sub("usa", _US.sub("usa", question)).lower().replace("’", "'").replace("‘", "'")
    out: list[str] = []
    for piece in re.findall(r"[a-z0-9]+(?:'[a-z]+)?|,", text):
        base, _, suffix = piece.partition("'")
        out.append(base)
        if suffix:
            out.append("'" + suffix)
    return out


def _is_content(token: str) -> bool:
    """A word that says what the question is about ("article" too, a stopword for retrieval)."""
    if token in _DOCUMENT_NOUNS:
        return True
    return token not in _GENERIC and not token.startswith("'") and token != "," and (len(token) > 1 or token.isdigit())


def _has_verb(tokens: Sequence[str]) -> bool:
    for i, tok in enumerate(tokens):
        if (i == 0 and tok in _IMPERATIVES) or tok in _AUX or tok in _IRREGULAR_PAST or (len(tok) > 4 and tok.endswith("ed")):
            return True
        # 's after a question word or pronoun is "is" ("what's", "it's"); after a name it is a possessive.
        if tok in ("'re", "'m", "'ve", "'d", "'ll", "'t") or (tok == "'s" and i and tokens[i - 1] in _GENERIC):
            return True
    return False


def _leans_back(tokens: Sequence[str]) -> bool:
    """True when a word of the question points at something the question itself does not name."""
    named = False  # something named earlier in the question
    named_in_clause = False  # ... in the current clause
    last = len(tokens) - 1
    for i, tok in enumerate(tokens):
        after = tokens[i + 1] if i < last else ""
        before = tokens[i - 1] if i else ""
        near = set(tokens[max(0, i - 3) : i + 3])
        if tok == "else" or (i == last and i > 0 and tok in _ADDITIVE_END):
            return True
        if tok in _DEMONSTRATIVES:
            if after in _TIME_NOUNS or after in ("who", "which"):
                continue  # "these days", "those who"
            if after in _DOCUMENT_NOUNS or near & _AUTHORSHIP:
                named = named_in_clause = True  # "this article", "who wrote this"
                continue
            if tok == "that" and named and i < last and before not in _PREPOSITIONS:
                named_in_clause = False  # a relative or "say that…": "the deal that failed"
                continue
            return True
        if tok in _CLAUSE_BREAK:
            named_in_clause = False
            continue
        if tok == "it" and (after in _EXPLETIVE_AFTER_IT or near & _AUTHORSHIP):
            continue
        if tok == "her":  # possessive before a noun, object otherwise
            tok = "his" if after and _is_content(after) else "him"
        if tok in _SUBJECT_PRONOUNS or tok in _POSSESSIVES:
            # "it" closing the question is an object: "what would the north get out of it".
            is_object = tok == "it" and i == last and before not in _AUX and before not in _BE
            if not named or (is_object and named_in_clause):
                return True
            continue
        if tok in _OBJECT_PRONOUNS or (tok in ("there", "then") and i == last and i > 0 and before not in _BE):
            # An object or a place/time nobody named: "did russia pay for them", "what happened there".
            if not named or named_in_clause:
                return True
            continue
        if _is_content(tok):
            named = named_in_clause = True
    return False


def is_follow_up(question: str, history: Sequence[Turn] | None = None) -> bool:
    """True when the question leans on the previous turn ("and what about China?", "why did it fail?").

    With `history` given and empty there is no previous turn, so nothing is a follow-up.
    """
    if history is not None and not history:
        return False
    text = _FILLER.sub("", " ".join(question.lower().replace("’", "'").split())).lstrip(" ,.!?")
    if _CONNECTIVE.match(text):
        return True
    tokens = _tokens(text)
    content = [tok for tok in tokens if _is_content(tok)]
    if not content or (len(content) <= 2 and not _has_verb(tokens)):
        return True  # an ellipsis: "why?", "which month", "how many warheads"
    return _leans_back(tokens)


def context_words(question: str, history: Sequence[Turn], turns: int = 3) -> list[str]:
    """Content words of the turns a follow-up leans on, as written, minus words it already has.

    The previous question, and when that was itself a follow-up the one before it too (at most
    `turns` questions back): "and russia?" after "and beijing?" after "what is moscow buying".
    """
    own = {tok for tok in _tokens(question) if _is_content(tok)}
    words: list[str] = []
    seen = set(own)
    for turn in reversed(history[-turns:]):
        for word in re.findall(r"[\w'’-]+", turn.question):
            word = re.sub(r"['’]s$", "", word)
            key = word.lower()
            if "'" not in key and "’" not in key and _is_content(key) and key not in seen:
                seen.add(key)
                words.append(word)
        if not is_follow_up(turn.question):
            break  # a self-contained question holds the whole context
    return words


def contextual_query(question: str, history: Sequence[Turn], turns: int = 3) -> str:
    """The text to retrieve with: a follow-up is read together with the previous question.

    Only a follow-up (`is_follow_up`) is changed: the previous question's content words are
    appended after it, so its own words come first and carry the query ("and what about China?
    Russia buy North Korea"). A self-contained question is returned as it is.
    """
    if not history or not is_follow_up(question, history):
        return question
    extra = context_words(question, history, turns)
    return f"{question} {' '.join(extra)}" if extra else question
