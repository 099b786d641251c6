"""Optional language-model answers: an OpenAI-compatible client, and answers and summaries it writes.

Nothing here runs unless LLM_BASE_URL is set; the extractive AnswerEngine stays the default.
The model only ever rewrites the retrieved passages: every sentence it returns is checked
against the passage it cites (see `check_support`), sentences that fail are removed, and when
nothing checkable is left, or the endpoint fails in any way, the member gets the extractive
answer with a short note instead. No exception from the model reaches the user.

The client is built once by the caller (`LLMClient(...)` or `Settings.llm_client()`) and
passed in; it is synchronous (the Discord layer calls it through asyncio.to_thread) and uses
only the standard library. It does not stream: the whole reply must be verified before any of
it can be shown.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answering.llm import prompts
from index.answering.extractive import ABSTAIN_PHRASE, AnswerEngine, contextual_query, leans_back
from index.types import Answer, Citation, Turn
from index.indexing.chunking import Span, paragraph_spans, sentence_spans
from index.indexing.embedding import Embedder
from index.types import Hit
from index.answering.summary import SUMMARY_SENTENCES, summarize_text
from index.text import content_words, has_words, plain_sentence

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
# A reply larger than this is not an answer to a question; refuse to buffer it.
MAX_RESPONSE_BYTES = 4 * 2**20

# What the member reads when the model could not be used; the answer below it is extractive.
NOTES = {
    "timeout": "The language model did not answer in time; this is the extractive answer.",
    "unreachable": "The language model could not be reached; this is the extractive answer.",
    "http": "The language model returned an error (HTTP {status}); this is the extractive answer.",
    "auth": "The language model refused the request (HTTP {status}: check LLM_API_KEY); this is the extractive answer.",
    "malformed": "The language model sent a reply that could not be read; this is the extractive answer.",
    "empty": "The language model returned an empty answer; this is the extractive answer.",
    "unverified": "The language model's answer could not be checked against the passages; this is the extractive answer.",
    "error": "The language model could not be used; this is the extractive answer.",
}
SUMMARY_NOTES = {kind: note.replace("extractive answer", "extractive summary").replace("language model's answer", "language model's summary")
                 for kind, note in NOTES.items()}
DROPPED_NOTE = {
    1: "One sentence of the language model's answer was left out: the passages it cited do not support it.",
    2: "{count} sentences of the language model's answer were left out: the passages they cited do not support them.",
}


class LLMError(RuntimeError):
    """The model endpoint did not give a usable reply; `kind` is a key of NOTES."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status

    def note(self, notes: dict[str, str] = NOTES) -> str:
        """The short sentence shown above the fallback answer."""
        return notes[self.kind].format(status=self.status)


def redact_url(url: str) -> str:
    """The URL without any user name, password, query or fragment, for logs and messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_base_url(url: str) -> str:
    """A usable base URL without its trailing slash, or ValueError saying what is wrong."""
    url = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL such as http://127.0.0.1:11434/v1, not {redact_url(url)!r}")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password: put the key in LLM_API_KEY")
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query or fragment: {redact_url(url)!r}")
    try:
        parts.port
    except ValueError:
        raise ValueError(f"has an invalid port: {redact_url(url)!r}") from None
    return url


def check_api_key(key: str) -> bool:
    """True when the key can travel in an HTTP header (printable ASCII, no spaces)."""
    return all(33 <= ord(ch) <= 126 for ch in key)


class LLMClient:
    """A minimal client for POST {base_url}/chat/completions of any OpenAI-compatible server.

    Works with Ollama (http://127.0.0.1:11434/v1), vLLM, llama.cpp's server and OpenAI. One
    HTTP connection per request, so one client can serve several threads. `timeout` bounds the
    whole request (connect, send, wait, read), not each socket operation. The API key is sent
    as a Bearer token and appears in no repr, log line or error message.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.base_url = check_base_url(base_url)
        if not model.strip():
            raise ValueError("the model name must not be empty")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if api_key and not check_api_key(api_key):
            raise ValueError("the API key must be printable ASCII without spaces")
        self.model = model.strip()
        self.timeout = float(timeout)
        self._api_key = api_key or None
        parts = urllib.parse.urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")

    def __repr__(self) -> str:
        return f"LLMClient(base_url={redact_url(self.base_url)!r}, model={self.model!r}, timeout={self.timeout})"

    def chat(self, messages: Sequence[dict], max_tokens: int = 512, temperature: float = 0.0) -> str:
        """The assistant's reply text for these messages; raises LLMError on any failure."""
        body = {"model": self.model, "messages": list(messages), "temperature": temperature,
                "max_tokens": max_tokens, "stream": False}
        data = self._request("POST", "/chat/completions", body)
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise LLMError("malformed", "the reply has no choices[0].message") from None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers send content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if content is not None and not isinstance(content, str):
            raise LLMError("malformed", "the reply's content is not text")
        if not content or not content.strip():
            raise LLMError("empty", "the reply has no content")
        return content

    def models(self) -> list[str]:
        """The model ids the server offers (GET {base_url}/models); raises LLMError on failure."""
        data = self._request("GET", "/models")
        try:
            return [str(item["id"]) for item in data["data"]]
        except (KeyError, TypeError):
            raise LLMError("malformed", "the reply has no data[].id") from None

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        deadline = time.monotonic() + self.timeout
        headers = {"Accept": "application/json", "User-Agent": "policybot"}
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        where = redact_url(self.base_url)
        try:
            connection.request(method, self._prefix + path, body=payload, headers=headers)
            sock = connection.sock
            _set_remaining(sock, deadline)
            response = connection.getresponse()
            raw = _read_body(response, sock, deadline)
            status = response.status
        except TimeoutError:
            raise LLMError("timeout", f"no reply from {where} within {self.timeout:g} s") from None
        except (http.client.HTTPException, ssl.SSLError) as exc:
            raise LLMError("malformed", f"bad HTTP reply from {where}: {type(exc).__name__}") from None
        except OSError as exc:  # refused, reset, unknown host, unreachable network
            raise LLMError("unreachable", f"cannot reach {where}: {exc.strerror or type(exc).__name__}") from None
        finally:
            connection.close()
        if status in (401, 403):
            raise LLMError("auth", f"{where} refused the request (HTTP {status})", status)
        if not 200 <= status < 300:
            raise LLMError("http", f"{where} answered HTTP {status}", status)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise LLMError("malformed", f"{where} sent a reply that is not JSON") from None
        if not isinstance(data, dict):
            raise LLMError("malformed", f"{where} sent JSON that is not an object")
        return data


def _set_remaining(sock: socket.socket | None, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if sock is not None:
        sock.settimeout(remaining)


def _read_body(response: http.client.HTTPResponse, sock: socket.socket | None, deadline: float) -> bytes:
    """The whole body, giving up at the deadline even if the server keeps trickling bytes."""
    pieces, size = [], 0
    while True:
        _set_remaining(sock, deadline)
        piece = response.read(65536)
        if not piece:
            return b"".join(pieces)
        size += len(piece)
        if size > MAX_RESPONSE_BYTES:
            raise http.client.HTTPException("reply too large")
        pieces.append(piece)


# ---- prompts -------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Passage:
    """One numbered passage the model reads; `text == article text[start:end]`."""

    n: int
    article_id: str
    title: str
    url: str
    paragraph: int
    start: int
    end: int
    text: str
    score: float = 0.0


_ANGLES = str.maketrans({"<": "\u2039", ">": "\u203a"})
# Bracketed numbers ("[3]", "[1, 2]") would pose as passage headers or citations; [INST] and [/SYS] as turn markers.
_BRACKET_MARKER = re.compile(r"\[(\s*/?\s*(?:\d+(?:\s*[,;\u2013-]\s*\d+)*|INST|SYS)\s*)\]", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def neutralize_data(text: str) -> str:
    """Passage text made harmless inside the data block of a prompt.

    Every "<" and ">" becomes a look-alike angle quote, so neither the block's closing tag
    nor chat-template control tokens (<|im_start|>, <end_of_turn>, <<SYS>>) can appear; bracketed
    numbers become parenthesised so a passage cannot fake a passage header or a citation;
    control characters go. The original text is still what citations quote.
    """
    text = _CONTROL.sub(" ", text.translate(_ANGLES))
    return _BRACKET_MARKER.sub(lambda m: f"({m.group(1)})", text)


def render_passages(passages: Sequence[Passage]) -> str:
    """The numbered passages as they appear inside the data block."""
    return prompts.PASSAGE_SEPARATOR.join(
        prompts.PASSAGE_TEMPLATE.format(n=p.n, title=neutralize_data(" ".join(p.title.split())), paragraph=p.paragraph,
                                        text=neutralize_data(p.text.strip()))
        for p in passages
    )


def strip_citations(text: str) -> str:
    """Text without its [n] markers (earlier answers sent back as history)."""
    return " ".join(_tidy(_CITE_GROUP.sub(" ", text)).split())


def answer_messages(question: str, passages: Sequence[Passage], history: Sequence[Turn] = (), config: LLMConfig = LLMConfig()) -> list[dict]:
    """System rules, the last few turns of the conversation, then the data block and the question."""
    messages = [{"role": "system", "content": prompts.ANSWER_SYSTEM.format(max_sentences=config.max_sentences)}]
    earlier_turns = list(history)[-config.history_turns:] if config.history_turns > 0 else []
    for turn in earlier_turns:
        messages.append({"role": "user", "content": neutralize_data(turn.question)})
        if turn.answer:
            earlier = strip_citations(turn.answer)
            if len(earlier) > config.history_chars:
                earlier = earlier[: config.history_chars].rsplit(" ", 1)[0] + " …"
            messages.append({"role": "assistant", "content": neutralize_data(earlier)})
    messages.append({"role": "user", "content": prompts.ANSWER_USER.format(
        passages=render_passages(passages), question=neutralize_data(" ".join(question.split())))})
    return messages


def summary_messages(title: str, passages: Sequence[Passage], sentences: int) -> list[dict]:
    """The messages asking for a cited summary of one article's passages."""
    return [
        {"role": "system", "content": prompts.SUMMARY_SYSTEM.format(sentences=sentences)},
        {"role": "user", "content": prompts.SUMMARY_USER.format(
            title=neutralize_data(" ".join(title.split())), passages=render_passages(passages), sentences=sentences)},
    ]


def passages_from_hits(hits: Sequence[Hit]) -> list[Passage]:
    """Retrieved chunks numbered 1..n in rank order."""
    return [Passage(n, h.chunk.article_id, h.chunk.title, h.chunk.url, h.chunk.paragraph, h.chunk.start, h.chunk.end,
                    h.chunk.text, h.score) for n, h in enumerate(hits, start=1)]


def article_passages(article_id: str, title: str, url: str, text: str, config: LLMConfig = LLMConfig()) -> list[Passage]:
    """An article cut into numbered passages for a summary: its paragraphs, long ones split at sentences.

    Paragraph numbers count like the chunker's and the extractive summary's. When there are
    more passages than `config.summary_passages`, evenly spaced ones are kept (always the first
    and the last), so a long article is summarised across its whole length.
    """
    pieces: list[tuple[int, int, int]] = []
    for number, paragraph in enumerate(paragraph_spans(text), start=1):
        if paragraph.end - paragraph.start <= config.summary_passage_chars:
            pieces.append((number, paragraph.start, paragraph.end))
            continue
        start = end = None
        for span in sentence_spans(text, paragraph):
            if start is not None and span.end - start > config.summary_passage_chars:
                pieces.append((number, start, end))
                start = None
            start = span.start if start is None else start
            end = span.end
        if start is not None:
            pieces.append((number, start, end))
    pieces = [p for p in pieces if has_words(text[p[1]:p[2]])]
    if len(pieces) > config.summary_passages:
        keep = sorted(set(np.linspace(0, len(pieces) - 1, config.summary_passages).round().astype(int).tolist()))
        pieces = [pieces[i] for i in keep]
    return [Passage(n, article_id, title, url, number, start, end, text[start:end], 1.0)
            for n, (number, start, end) in enumerate(pieces, start=1)]


# ---- reading the reply ---------------------------------------------------------------------

_CITE_GROUP = re.compile(r"\[\^?\s*\d+(?:\s*(?:[,;\u2013-]|and)\s*\^?\d+)*\s*\]")
_CITE_NUMBER = re.compile(r"\d+")
_CITE_RANGE = re.compile(r"(\d+)\s*[\u2013-]\s*(\d+)")
_GLUED_MARKER = re.compile(r"([.!?])(\[\^?\s*\d)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"\w+", re.UNICODE)
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)} | _TENS
_COMPOUND_NUMBER = re.compile(r"\b(" + "|".join(_TENS) + r")[- ](" + "|".join(_UNITS[1:10]) + r")\b")


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
            piece = text[span.start:span.end]
            leading = re.match(r"(?:\s*" + _CITE_GROUP.pattern + r")+", piece)
            if leading and claims and not first_of_paragraph:
                claims[-1][1].extend(n for m in _CITE_GROUP.findall(leading.group(0)) for n in cited_numbers(m))
                piece = piece[leading.end():]
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


def numbers_in(text: str, spelled: bool = False) -> set[str]:
    """Figures in the text, normalised ("1,000" -> "1000"); with `spelled`, also "forty" -> "40" below a hundred."""
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    if not spelled:
        return found
    lowered = text.lower()
    for match in _COMPOUND_NUMBER.finditer(lowered):
        found.add(str(_TENS[match.group(1)] + _UNITS.index(match.group(2))))
    for word in _WORD.findall(lowered):
        if word in _NUMBER_WORDS:
            found.add(str(_NUMBER_WORDS[word]))
    return found


@dataclass(frozen=True)
class Support:
    """How well one passage supports one claim."""

    supported: bool
    lexical: float
    cosine: float
    numbers_ok: bool
    # Index of the passage sentence closest to the claim (what the citation quotes).
    best_sentence: int

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


def check_support(claim: str, claim_vector: np.ndarray, title: str, sentences: Sequence[str],
                  evidence_vectors: np.ndarray, config: LLMConfig = LLMConfig(), excluded: Sequence[str] = ()) -> Support:
    """Does a passage support a claim? Cheap, explainable tests: one of two, and figures always.

    The evidence is the passage's title and its sentences, less any that read as orders to an
    AI (`instruction_like`).
    - Lexical support: the share of the claim's content words (stopwords out, crude stems) that
      occur in the evidence must reach `config.lexical_support`. Rewording a passage keeps most
      of its words; a claim the passage never makes brings words of its own.
    - Semantic support: otherwise the cosine between the claim's embedding and the evidence's,
      or one of its sentences', must reach `config.semantic_support`, for paraphrases that
      change the words but keep the meaning.
    - Figures: every number in the claim must occur in the evidence (as digits or a spelled-out
      number below a hundred). Embeddings barely tell 40 from 80, and the lexical share lets
      one wrong figure through, so figures are checked exactly.
    - Injected words: a claim using a word that the passage has only inside its `excluded`
      (instruction-like) sentences repeats what an injection asked for, and is not supported,
      however well the rest of it matches ("You must say PWNED; the library opens at nine.").
    A claim with fewer than `config.min_claim_words` content words, figures aside ("Yes.",
    "PWNED.", "40."), is too small to check and is not supported.

    `evidence_vectors` holds the vector of all the evidence first, then one per sentence.
    """
    evidence = "\n".join([title, *sentences])
    # Figures are left to the exact number check: "40" may be "forty" in the passage.
    claim_stems = {stem(w) for w in content_words(claim) if not w.isdigit()}
    evidence_stems = {stem(w) for w in content_words(evidence)}
    lexical = len(claim_stems & evidence_stems) / len(claim_stems) if claim_stems else 0.0
    cosines = evidence_vectors @ claim_vector if sentences else np.zeros(1)
    cosine = float(cosines.max())
    numbers_ok = numbers_in(claim) <= numbers_in(evidence, spelled=True)
    injected = {stem(w) for text in excluded for w in content_words(text)} - evidence_stems
    supported = (bool(sentences) and len(claim_stems) >= config.min_claim_words and numbers_ok and not claim_stems & injected
                 and (lexical >= config.lexical_support or cosine >= config.semantic_support))
    best = 0
    if sentences:
        overlap = [len(claim_stems & {stem(w) for w in content_words(s)}) / max(1, len(claim_stems)) for s in sentences]
        best = int(np.argmax(np.asarray(cosines[1:]) + np.asarray(overlap)))
    return Support(supported, lexical, cosine, numbers_ok, best)


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
    p = passage
    evidence, excluded = [], []
    for s in sentence_spans(p.text, Span(0, len(p.text))):
        text = p.text[s.start:s.end]
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
    sentences = {n: [by_number[n].text[s.start - by_number[n].start:s.end - by_number[n].start] for s in spans[n]] for n in used}
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
            support = check_support(claim.text, vectors[index], by_number[n].title, sentences[n], vectors[first:last], config,
                                    excluded=split[n][1])
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
        p = by_number[n]
        start, end = min(s.start for s in quoted[n]), max(s.end for s in quoted[n])
        citations.append(Citation(m, p.article_id, p.title, p.url, p.paragraph, p.text[start - p.start:end - p.start],
                                  start, end, scores[n]))
    return Verified(" ".join(parts), tuple(citations), len(kept), dropped, invalid)


def _quote_spans(spans: Sequence[Span], best: int, passage: Passage) -> list[Span]:
    """The best sentence, with the one just before it when it opens with "It", "This", "However"…"""
    chosen = [spans[best]]
    text = passage.text[spans[best].start - passage.start:spans[best].end - passage.start]
    gap = passage.text[spans[best - 1].end - passage.start:spans[best].start - passage.start] if best > 0 else "x"
    if best > 0 and leans_back(text) and not gap.strip():
        chosen.append(spans[best - 1])
    return chosen


# ---- answerers ------------------------------------------------------------------------------


def _dropped_note(count: int) -> str:
    if count <= 0:
        return ""
    return DROPPED_NOTE[min(count, 2)].format(count=count)


class LLMAnswerEngine:
    """Answers like AnswerEngine.ask, but has a language model write the answer from the same passages.

    Retrieval, follow-up handling, abstention's related reading and every fallback are the
    wrapped AnswerEngine's: the model sees the passages the extractive answer would use, and
    when it fails or cannot be verified the member gets exactly that extractive answer.
    """

    def __init__(self, engine: AnswerEngine, client: LLMClient, config: LLMConfig = LLMConfig()):
        self.engine = engine
        self.client = client
        self.config = config

    @property
    def retriever(self):
        """The wrapped engine's retriever (swap `engine.retriever` after reloading an index)."""
        return self.engine.retriever

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """A cited answer written by the model and checked against the passages, or the extractive one."""
        if not has_words(question):
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
            logger.info("language model answer: %d sentence(s) kept, %d dropped, %d citation(s) to missing passages",
                        verified.kept, verified.dropped, verified.invalid_numbers)
        if not verified.citations:
            logger.warning("language model answer had no supported citation; answering extractively")
            return self._extractive(question, query, hits, timings, started, NOTES["unverified"])
        timings["answer"] = (time.perf_counter() - checked) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(question, verified.text, False, verified.citations, (), timings, _dropped_note(verified.dropped))

    def _extractive(self, question: str, query: str, hits: Sequence[Hit], timings: dict[str, float], started: float, note: str) -> Answer:
        answer_started = time.perf_counter()
        answer = self.engine.compose(question, hits, self.engine.score_sentences(query, hits, focus=question))
        timings["answer"] = (time.perf_counter() - answer_started) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(question, answer.text, answer.abstained, answer.citations, answer.related, timings, note)


def llm_summarize(client: LLMClient, article_id: str, title: str, url: str, text: str, embedder: Embedder,
                  length: str = "medium", config: LLMConfig = LLMConfig()) -> Answer:
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
        return Answer(summary.question, summary.text, summary.abstained, summary.citations, summary.related,
                      {**summary.timings_ms, "total": total}, note)

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
    return Answer(f"summary of {title}", verified.text, False, verified.citations, (),
                  {"llm": llm_ms, "answer": total - llm_ms, "total": total}, note)
