"""Questions about the articles themselves: who wrote it, where it is from, what it is called, what it says.

These are answered from the article's metadata (front matter and byline) and, for "what is
it about?", from its summary — not by searching passages, where no sentence says "the author
is…". A question names its article ("the Kenya speech", "the north korea piece"), or leans on
the conversation ("who wrote it?"), or there is only one article.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.retrieval.keywords import keyword_tokens
from index.types import ArticleInfo, Citation, Turn

# What a question about an article asks for, in the order they are tried: the first match wins.
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "list",
        re.compile(
            r"\bwhat (?:articles? )?(?:do you|have you|can you)\b.*\b(?:have|got|know)\b.*\b(?:on|about)\b"
            r"|\b(?:any|which|what|list(?: the)?) (?:articles?|pieces?|speeches?|documents?)\b.*\b(?:on|about|mention)\b"
            r"|\bwhat(?:'s| is) in (?:the|your) library\b"
        ),
    ),
    (
        "author",
        re.compile(
            r"\bwho(?:'s| is|s)? (?:wrote|writes|authored|the author|behind)\b"
            # "the author" asked about, not "what did the author say about China" (a question about the content)
            r"|\bauthor\b(?!'?s? (?:say|says|said|think|thinks|argue|argues|mean|means|claim|claims|write about|wrote about|view))"
            r"|\bwhose (?:summary|article|piece|writing|work|take)\b|\bwritten by\b|\bby whom\b"
        ),
    ),
    (
        "source",
        re.compile(
            r"\b(?:which|what) (?:magazine|outlet|publication|paper|newspaper|journal|site|website|source|news ?site)\b"
            r"|\bwhere (?:is|was|does) (?:this|it|the (?:article|piece|original)) (?:from|published|come from|appear)\b"
            r"|\boriginal reporting\b|\bwho published\b|\bsummary of (?:something|what)\b|\bwhat (?:is|was) (?:it|this) based on\b"
            r"|\b(?:link|url)\b.*\b(?:original|article|piece|source|it|this)\b|\b(?:original|article's|source) (?:link|url)\b"
        ),
    ),
    (
        "title",
        re.compile(
            r"\bwhat(?:'s| is|s) (?:this|it|the (?:article|piece|speech))(?: one)? (?:called|titled|named)\b"
            r"|\b(?:title|headline) of\b|\bwhat(?:'s| is|s) the (?:title|headline)\b"
        ),
    ),
    (
        "date",
        re.compile(
            # "the article", "the kenya speech", "the speech about the nairobi declaration"
            r"\bwhen (?:was|is) (?:this|it|the (?:[\w'-]+ ){0,3}(?:article|piece|speech|original)\b.*?) "
            r"(?:published|written|from|given|delivered)\b"
            r"|\b(?:which|what) (?:year|date) (?:is|was) (?:this|it|the (?:[\w'-]+ ){0,3}(?:article|piece|speech)\b.*?) ?"
            r"(?:from|published|given)\b"
            r"|\bpublication date\b"
        ),
    ),
    (
        "summary",
        re.compile(
            r"\bsummari[sz]e\b|\bsummary\b|\btl;? ?dr\b|\bgist\b"
            r"|\b(?:main|core|central|overall|one[- ]line) (?:point|idea|argument|message)s?\b"
            r"|\bkey (?:points|takeaways)\b|\bwhat(?:'s| is|s) (?:this|it|the (?:article|piece|speech|text))(?: \w+)? about\b"
            r"|\bwhat(?:'s| is|s) (?:this|that) one about\b|\bgive me (?:an )?overview\b|\bin (?:a )?nutshell\b"
            r"|\bwhat(?:'s| is|s) the [\w\s'’-]{0,40}?(?:article|piece|speech|text|essay|report)(?: \w+)? about\b"
        ),
    ),
)
# Words of a question that say which article is meant, not what is asked about it.
_ARTICLE_WORDS = frozenset(
    keyword_tokens(
        "article piece speech text summary author wrote written magazine outlet publication source title headline called "
        "published date year main point idea argument message key takeaway gist overview tldr library original reporting "
        "un united nations general debate statement address session one this it"
    )
)


@dataclass(frozen=True)
class AboutQuestion:
    """A question about an article: what it asks ("author", "source", "title", "date", "summary", "list")."""

    kind: str
    topic_words: tuple[str, ...]


def about_question(question: str) -> AboutQuestion | None:
    """What a question asks about an article itself, or None for a question about the articles' content."""
    folded = " ".join(question.casefold().replace("’", "'").split())
    for kind, pattern in _KINDS:
        if pattern.search(folded):
            topic = tuple(t for t in keyword_tokens(folded) if t not in _ARTICLE_WORDS)
            return AboutQuestion(kind, topic)
    return None


def named_article(topic_words: Sequence[str], articles: Sequence[ArticleInfo]) -> ArticleInfo | None:
    """The one article whose title, author, source or date the question's words name best, if one stands out."""
    if not topic_words or not articles:
        return None
    wanted = set(topic_words)
    scored = []
    for info in articles:
        described = set(keyword_tokens(f"{info.title} {info.author} {info.source} {info.published} {info.article_id}"))
        scored.append((len(wanted & described), info))
    scored.sort(key=lambda pair: -pair[0])
    best = scored[0][0]
    if best == 0 or (len(scored) > 1 and scored[1][0] == best):
        return None
    return scored[0][1]


def article_in_question(about: AboutQuestion, history: Sequence[Turn], articles: Sequence[ArticleInfo]) -> ArticleInfo | None:
    """The article a question about an article means: named in it, named earlier in the conversation, or the only one."""
    found = named_article(about.topic_words, articles)
    if found is None and history:
        earlier = tuple(t for t in keyword_tokens(history[-1].question) if t not in _ARTICLE_WORDS)
        found = named_article(earlier, articles)
    if found is None and len(articles) == 1:
        found = articles[0]
    return found


def byline_span(text: str, author: str) -> tuple[int, int] | None:
    """Where the article's text names its author ("By Jane Doe"), if it does."""
    if not author:
        return None
    at = text.rfind(author)
    return (at, at + len(author)) if at >= 0 else None


def first_sentence_span(text: str) -> tuple[int, int]:
    """The article's opening sentence (or its first 300 characters), as the passage a metadata answer cites."""
    stripped = len(text) - len(text.lstrip())
    end = re.search(r"[.!?](?=\s|$)", text[stripped:])
    stop = stripped + end.end() if end else min(len(text), stripped + 300)
    return stripped, min(stop, stripped + 300)


def metadata_citation(info: ArticleInfo, text: str, span: tuple[int, int] | None = None) -> Citation:
    """Citation [1] pointing at the article: the byline or the opening sentence, quoted exactly."""
    start, end = span or first_sentence_span(text)
    return Citation(1, info.article_id, info.title, info.url, 1, text[start:end], start, end, 1.0)


def metadata_answer(kind: str, info: ArticleInfo) -> str | None:
    """The sentence that answers an author, source, title or date question, or None when the metadata lacks it."""
    title = f"“{info.title}”"
    if kind == "author":
        return f"{title} is by {info.author}." if info.author else None
    if kind == "source":
        if info.source:
            return f"The source of {title}: {info.source.rstrip('.')}" + (f", at {info.url}." if info.url else ".")
        return f"{title} was read from {info.url}." if info.url else None
    if kind == "title":
        return f"The article is {title}" + (f", by {info.author}." if info.author else ".")
    if kind == "date":
        if info.published:
            return f"{title} was published {info.published}."
        # No date in the metadata, but a speech's or report's title often carries its year.
        year = re.search(r"\b(?:1[89]|20)\d\d\b", info.title)
        return f"{title} gives no publication date; its title places it in {year.group(0)}." if year else None
    return None


def describe_missing(kind: str, info: ArticleInfo) -> str:
    """What to say when an article's metadata does not hold what was asked."""
    what = {"author": "who wrote it", "source": "where it was published", "date": "when it was published"}.get(kind, "that")
    return f"“{info.title}” does not say {what}."
