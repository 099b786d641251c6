"""Sentence-aware chunking: exact offsets, whole sentences, unicode, long sentences, token limits."""

from __future__ import annotations

import random
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.indexing.chunking import (
    MIN_CHUNK_TOKENS,
    Span,
    chunk_text,
    lines_are_paragraphs,
    paragraph_spans,
    sentence_spans,
    split_long_sentence,
    whitespace_token_counter,
)
from index.indexing.corpus import read_article

ROOT = Path(__file__).resolve().parents[3]
count = whitespace_token_counter


def sentence_texts(text: str) -> list[str]:
    return [text[s.start : s.end] for p in paragraph_spans(text) for s in sentence_spans(text, p)]


def all_sentences(text: str) -> list[tuple[int, Span]]:
    """(paragraph number, sentence span) for every sentence of the text."""
    return [(n, s) for n, p in enumerate(paragraph_spans(text), start=1) for s in sentence_spans(text, p)]


def check_invariants(text: str, chunks, count_tokens, max_tokens: int) -> None:
    """What every chunking of every text must satisfy."""
    # Offsets are exact str indices.
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal
        assert chunk.text == text[chunk.start : chunk.end]
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert not chunk.text[0].isspace() and not chunk.text[-1].isspace()
        assert chunk.token_count <= max_tokens
    if chunks:
        assert max(count_tokens([c.text for c in chunks])) <= max_tokens
    # Never truncated: every non-whitespace character lies in some chunk.
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    lost = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not lost, f"text lost from chunks at {lost[:5]}: {text[lost[0] : lost[0] + 20]!r}"
    # No cut sentences: a sentence within the limit is wholly inside a chunk and no chunk edge falls inside it.
    sentences = all_sentences(text)
    counts = count_tokens([text[s.start : s.end] for _, s in sentences]) if sentences else []
    for (_, sentence), n in zip(sentences, counts):
        if n > max_tokens:
            continue
        assert any(c.start <= sentence.start and sentence.end <= c.end for c in chunks), text[sentence.start : sentence.end]
        for c in chunks:
            assert not sentence.start < c.start < sentence.end, "a chunk starts inside a sentence"
            assert not sentence.start < c.end < sentence.end, "a chunk ends inside a sentence"
    # Chunks come in text order.
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


def words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocab = "policy sanctions regime summit nuclear talks treaty border trade tariff vote council".split()
    return " ".join(rng.choice(vocab) for _ in range(n))


def paragraph(sentences: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(words(rng.randint(6, 14), seed * 100 + i).capitalize() + "." for i in range(sentences))


# ---- sentences -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "The U.S. government agreed. Mr. Smith said so, e.g. on taxes. Growth was 3.5 percent. Next!",
            ["The U.S. government agreed.", "Mr. Smith said so, e.g. on taxes.", "Growth was 3.5 percent.", "Next!"],
        ),
        ("Dr. Kim met Gen. Lee in Jan. 2019. They spoke.", ["Dr. Kim met Gen. Lee in Jan. 2019.", "They spoke."]),
        ("J. R. R. Tolkien wrote it. No. 5 is here.", ["J. R. R. Tolkien wrote it.", "No. 5 is here."]),
        ("Costs rose 2.75% to $1.5 billion. Then fell.", ["Costs rose 2.75% to $1.5 billion.", "Then fell."]),
        ('He said "Stop." Then he left. (It was late.) Fine?', ['He said "Stop."', "Then he left.", "(It was late.)", "Fine?"]),
        ("Ask the U.K. and the U.N. about it. Done.", ["Ask the U.K. and the U.N. about it.", "Done."]),
        ("See i.e. the annex. See fig. 3 too.", ["See i.e. the annex.", "See fig. 3 too."]),
        ("Wait... what? Yes!", ["Wait... what?", "Yes!"]),
        ("Items:\n- one\n- two\n1. three", ["Items:", "- one", "- two", "1. three"]),
    ],
)
def test_sentence_boundaries(text, expected):
    assert sentence_texts(text) == expected


def test_cjk_sentences_split_without_spaces():
    text = "日本は島国です。東京は首都です！「大阪は大きい。」次の文？"
    assert sentence_texts(text) == ["日本は島国です。", "東京は首都です！", "「大阪は大きい。」", "次の文？"]


def test_rtl_sentences():
    text = "مرحبا بالعالم. هذا اختبار! هل هو جيد؟ نعم."
    assert sentence_texts(text) == ["مرحبا بالعالم.", "هذا اختبار!", "هل هو جيد؟", "نعم."]


def test_paragraph_spans_skip_blank_and_whitespace_lines():
    text = "\n\n  First para.\n\n\n   \n\t\n\nSecond para.\nSame para.\n \n\n\n\nThird.\n\n   "
    spans = paragraph_spans(text)
    assert [text[s.start : s.end] for s in spans] == ["First para.", "Second para.\nSame para.", "Third."]


# ---- chunks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\n\n", "  \n\t\n \r\n  \n", "\u3000\u00a0\n\n"])
def test_empty_and_whitespace_only_text_gives_no_chunks(text):
    assert chunk_text("a", text, count) == []


def test_real_article_offsets_and_invariants():
    article = read_article(ROOT / "corpus" / "north-korea-foreign-affairs.md", ROOT / "corpus")
    chunks = chunk_text(article.article_id, article.text, count, target_tokens=64, max_tokens=100)
    assert len(chunks) >= 4
    assert {c.article_id for c in chunks} == {article.article_id}
    check_invariants(article.text, chunks, count, 100)
    # The seed is written one paragraph a line: eight lines, eight paragraphs, each cited by its number.
    lines = article.text.split("\n")
    assert len(lines) == 8 and [article.text[s.start : s.end] for s in paragraph_spans(article.text)] == lines
    assert sorted({c.paragraph for c in chunks}) == list(range(1, 9))
    assert next(c.paragraph for c in chunks if "50 nuclear warheads" in c.text) == 4


# Paragraphs one a line, each a few long sentences, as in the seed and the 2015-2023 UN speeches.
LINE_PARAGRAPHS = [
    "The port authority cut its fees for container ships by a tenth this spring. It hopes to win back the "
    "traffic it lost to rival harbours, which have undercut it for three years running.",
    "Shipping lines welcomed the cut but said the harbour still charges more than its neighbours for pilots "
    "and berths. Two of them announced new weekly calls from the autumn.",
    "Mr. President,",
    "The city council will review the fees again once the first figures for the summer season are known, "
    "and the treasurer expects the harbour's income to recover by the end of next year.",
]


def test_text_written_one_paragraph_a_line_has_a_paragraph_per_line():
    text = "\n".join(LINE_PARAGRAPHS)
    assert lines_are_paragraphs(text)
    assert [text[s.start : s.end] for s in paragraph_spans(text)] == LINE_PARAGRAPHS
    chunks = chunk_text("a", text, count, target_tokens=60, max_tokens=100)
    assert next(c.paragraph for c in chunks if c.text.startswith("Shipping lines")) == 2
    # A short line (a salutation, like a heading) joins the paragraph after it.
    assert next(c for c in chunks if "city council" in c.text).text.startswith("Mr. President,\nThe city council")
    check_invariants(text, chunks, count, 100)


@pytest.mark.parametrize("width", [40, 60, 72, 100])
def test_hard_wrapped_text_still_joins_its_lines(width):
    wrapped = [textwrap.fill(p, width) for p in LINE_PARAGRAPHS]
    text = "\n\n".join(wrapped)
    assert not lines_are_paragraphs(text)
    assert [text[s.start : s.end] for s in paragraph_spans(text)] == wrapped
    # Wrapped without blank lines at all: one paragraph, as before.
    assert not lines_are_paragraphs("\n".join(wrapped)) and len(paragraph_spans("\n".join(wrapped))) == 1


def test_blank_line_paragraphs_keep_lists_and_line_breaks_inside():
    text = "Fees fell.\n\n- Pilots asked for a pay rise.\n- Tug crews asked for new boats.\n\nThe council met.\nIt agreed.\n\nDone."
    assert not lines_are_paragraphs(text)
    assert [text[s.start : s.end] for s in paragraph_spans(text)] == [
        "Fees fell.",
        "- Pilots asked for a pay rise.\n- Tug crews asked for new boats.",
        "The council met.\nIt agreed.",
        "Done.",
    ]
    # Hard-wrapped paragraphs where a line happens to end a sentence: blank lines still separate them.
    meals = (
        "The education department will fund free lunches for all primary school pupils from September.\n"
        "Kitchens must serve fresh vegetables daily and limit sugar in desserts.\n\n"
        "Head teachers report that hungry children concentrate poorly in afternoon lessons, and the\n"
        "programme aims to improve attendance as well as nutrition."
    )
    assert not lines_are_paragraphs(meals) and len(paragraph_spans(meals)) == 2


def test_paragraph_numbers_ignore_blank_line_runs():
    paras = [paragraph(4, seed) for seed in range(3)]
    text = paras[0] + "\n\n\n\n   \n\n" + paras[1] + "\n \n\t\n" + paras[2]
    chunks = chunk_text("a", text, count, target_tokens=200, max_tokens=250, overlap_sentences=0)
    assert [c.paragraph for c in chunks] == [1, 2, 3]
    assert [c.text for c in chunks] == paras
    check_invariants(text, chunks, count, 250)


def test_chunks_stay_inside_paragraph_and_short_heading_joins_next():
    body = paragraph(12, 7)
    text = "# A short heading\n\n" + body + "\n\n" + paragraph(12, 8)
    chunks = chunk_text("a", text, count, target_tokens=60, max_tokens=100)
    first = chunks[0]
    assert first.paragraph == 1 and first.text.startswith("# A short heading\n\n")
    assert first.end > text.index(body)  # the heading did not become a chunk of its own
    for chunk in chunks[1:]:
        # Apart from the heading, no chunk crosses a paragraph break.
        assert "\n\n" not in chunk.text
    check_invariants(text, chunks, count, 100)


def test_chunks_are_near_target_size():
    text = "\n\n".join(paragraph(40, seed) for seed in range(3))
    chunks = chunk_text("a", text, count, target_tokens=60, max_tokens=100, overlap_sentences=0)
    assert all(c.token_count <= 60 for c in chunks)
    # Only the last chunk of each paragraph may be small.
    last_of_paragraph = {max(i for i, c in enumerate(chunks) if c.paragraph == p) for p in {c.paragraph for c in chunks}}
    assert all(c.token_count >= 40 for i, c in enumerate(chunks) if i not in last_of_paragraph)


def test_no_overlap_when_overlap_is_zero():
    text = paragraph(40, 3)
    chunks = chunk_text("a", text, count, target_tokens=40, max_tokens=80, overlap_sentences=0)
    assert len(chunks) > 3
    for before, after in zip(chunks, chunks[1:]):
        assert after.start > before.end


@pytest.mark.parametrize("overlap", [1, 2])
def test_overlap_repeats_the_last_sentences_within_a_paragraph(overlap):
    text = paragraph(40, 4) + "\n\n" + paragraph(40, 5)
    chunks = chunk_text("a", text, count, target_tokens=60, max_tokens=100, overlap_sentences=overlap)
    same_paragraph = [(a, b) for a, b in zip(chunks, chunks[1:]) if a.paragraph == b.paragraph]
    assert len(same_paragraph) >= 4
    for before, after in same_paragraph:
        shared = text[after.start : before.end]
        assert after.start < before.end, "consecutive chunks of a paragraph share text"
        assert 1 <= len(sentence_texts(shared)) <= overlap
        assert before.text.endswith(shared) and after.text.startswith(shared)
    # Nothing is carried over a paragraph break.
    for before, after in zip(chunks, chunks[1:]):
        if before.paragraph != after.paragraph:
            assert after.start > before.end
    check_invariants(text, chunks, count, 100)


def test_target_above_max_is_refused():
    with pytest.raises(ValueError):
        chunk_text("a", "Some text.", count, target_tokens=300, max_tokens=250)


def test_long_sentence_is_split_at_clause_boundaries():
    clauses = [words(8, seed) for seed in range(30)]
    text = "Opening sentence here. " + ", ".join(clauses) + ". Closing sentence here."
    chunks = chunk_text("a", text, count, target_tokens=30, max_tokens=40)
    long_start = text.index(clauses[0])
    inside = [c for c in chunks if c.start >= long_start and c.end < text.index("Closing")]
    assert len(inside) >= 3
    for chunk in inside:
        assert chunk.text.endswith(","), f"piece does not end at a clause boundary: {chunk.text[-20:]!r}"
    check_invariants(text, chunks, count, 40)


def test_long_sentence_without_clauses_is_split_at_words():
    text = words(300, 9) + "."
    chunks = chunk_text("a", text, count, target_tokens=30, max_tokens=40)
    assert len(chunks) >= 8
    for chunk in chunks:
        assert chunk.start == 0 or text[chunk.start - 1] == " "
        assert chunk.end == len(text) or text[chunk.end] == " "
    check_invariants(text, chunks, count, 40)


def test_giant_token_is_split_by_characters_and_kept_whole():
    giant = "a-" * 400  # one whitespace-free "word" of 800 tokens
    text = f"Before it. {giant} after it. The end."
    chunks = chunk_text("a", text, count, target_tokens=30, max_tokens=40)
    start = text.index(giant)
    pieces = [c for c in chunks if start <= c.start and c.end <= start + len(giant)]
    assert len(pieces) >= 800 // 40 - 1
    # The pieces follow each other without gaps or overlaps: nothing cut out, nothing repeated.
    assert "".join(c.text for c in pieces) == text[pieces[0].start : pieces[-1].end]
    check_invariants(text, chunks, count, 40)


def test_split_long_sentence_pieces_cover_the_sentence():
    text = "x " + "; ".join(words(12, s) for s in range(20)) + " " + "#" * 120 + " tail"
    span = Span(0, len(text))
    pieces = split_long_sentence(text, span, count, 25)
    assert all(n <= 25 for _, n in pieces)
    assert all(count([text[p.start : p.end]])[0] == n for p, n in pieces)
    joined = "".join(text[p.start : p.end] for p, _ in pieces)
    assert re.sub(r"\s+", "", joined) == re.sub(r"\s+", "", text)
    assert all(a.end <= b.start for (a, _), (b, _) in zip(pieces, pieces[1:]))


def test_unicode_offsets_are_str_indices():
    text = (
        "👨‍👩‍👧 Family first! Café résumé naïve — e\u0301e\u0301 combining. "
        "مرحبا بالعالم. 日本は島国です。東京は首都です。\n\n"
        "🇰🇷🇰🇵 Second paragraph about Korea. It has 😀 emoji."
    )
    chunks = chunk_text("a", text, count, target_tokens=8, max_tokens=12, overlap_sentences=0)
    check_invariants(text, chunks, count, 12)
    second = next(c for c in chunks if c.paragraph == 2)
    assert second.start == text.index("🇰🇷🇰🇵")
    assert chunks[0].start == 0 and chunks[-1].end == len(text)  # str indices, not byte offsets


def test_character_split_never_separates_accents_or_joined_emoji():
    text = "e\u0301" * 120 + " " + "👨‍👩‍👧" * 60

    def per_codepoint(texts):
        return [len(t) for t in texts]

    chunks = chunk_text("a", text, per_codepoint, target_tokens=10, max_tokens=15)
    for chunk in chunks:
        assert chunk.text[0] not in ("\u0301", "\u200d"), "a piece starts with a combining accent or joiner"
        assert chunk.text[-1] != "\u200d"
    check_invariants(text, chunks, per_codepoint, 15)


def test_cjk_text_without_spaces_is_chunked_at_sentence_ends():
    text = "".join(f"これは{i}番目の文です。" for i in range(60))

    def per_char(texts):
        return [len(t) for t in texts]

    chunks = chunk_text("a", text, per_char, target_tokens=40, max_tokens=60, overlap_sentences=0)
    assert len(chunks) > 5
    assert all(c.text.endswith("。") for c in chunks)
    check_invariants(text, chunks, per_char, 60)


def test_min_chunk_constant_is_what_the_heading_rule_uses():
    # A paragraph of exactly MIN_CHUNK_TOKENS tokens stands alone; a shorter one joins the next.
    short = " ".join(["word"] * (MIN_CHUNK_TOKENS - 2)) + "."
    exact = " ".join(["word"] * (MIN_CHUNK_TOKENS - 1)) + "."
    follow = paragraph(3, 1)
    assert len(chunk_text("a", short + "\n\n" + follow, count, overlap_sentences=0)) == 1
    assert len(chunk_text("a", exact + "\n\n" + follow, count, overlap_sentences=0)) == 2


# ---- properties ------------------------------------------------------------------------------

_VOCAB = [
    "policy",
    "U.S.",
    "Mr.",
    "e.g.",
    "3.5",
    "$1.2bn",
    "café",
    "naïve",
    "e\u0301",
    "日本",
    "東京です。",
    "مرحبا",
    "😀",
    "👨‍👩‍👧",
    "🇰🇷",
    "—",
    "(note)",
    '"quoted."',
    "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p",
    "x" * 60,
    "#",
    "-",
    "1.",
    "and,",
    "so;",
    "then:",
    "end.",
    "Why?",
    "Yes!",
    "etc.",
]
_word = st.sampled_from(_VOCAB)
_sentence = st.lists(_word, min_size=1, max_size=40).map(lambda ws: " ".join(ws))
_gap = st.sampled_from([" ", "  ", "\n", "\n\n", "\n\n\n  \n", " \t\n \n", "\n- ", "\n1. "])


@st.composite
def _documents(draw):
    parts = draw(st.lists(st.tuples(_sentence, _gap), min_size=0, max_size=25))
    lead = draw(st.sampled_from(["", " ", "\n\n"]))
    return lead + "".join(s + g for s, g in parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_documents(),
    max_tokens=st.integers(min_value=4, max_value=80),
    target_ratio=st.floats(min_value=0.2, max_value=1.0),
    overlap=st.integers(min_value=0, max_value=3),
)
def test_property_structured_text(text, max_tokens, target_ratio, overlap):
    target = max(1, int(max_tokens * target_ratio))
    chunks = chunk_text("a", text, count, target_tokens=target, overlap_sentences=overlap, max_tokens=max_tokens)
    check_invariants(text, chunks, count, max_tokens)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=400), max_tokens=st.integers(min_value=1, max_value=30), overlap=st.integers(0, 2))
def test_property_arbitrary_text(text, max_tokens, overlap):
    chunks = chunk_text("a", text, count, target_tokens=max_tokens, overlap_sentences=overlap, max_tokens=max_tokens)
    check_invariants(text, chunks, count, max_tokens)
    if text.strip():
        assert chunks


# ---- the real tokenizer ----------------------------------------------------------------------


@pytest.mark.slow
def test_real_tokenizer_never_exceeds_the_limit(embedder):
    rng = random.Random(3)
    vocab = (
        "policy sanctions négociation 北朝鮮 Pyongyang denuclearization U.S. e.g. 3.5% café naïve 👨‍👩‍👧 مرحبا "
        "résumé über-long-hyphenated-compound http://example.org/a/b?c=d Mr. (1994) 'quoted' — ;"
    ).split()
    parts = []
    for p in range(40):
        kind = p % 5
        if kind == 0:
            parts.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 30))) + ".")
        elif kind == 1:  # one sentence far over the limit, with clauses
            parts.append(", ".join(" ".join(rng.choice(vocab) for _ in range(6)) for _ in range(60)) + ".")
        elif kind == 2:  # CJK without spaces
            parts.append("".join(rng.choice("漢字かなカナ。、") for _ in range(600)))
        elif kind == 3:  # a single giant token the tokenizer splits into hundreds of pieces
            parts.append("-".join(rng.choice(["ab", "x1", "é", "Zz", ".", "😀"]) for _ in range(500)))
        else:
            parts.append(" ".join(" ".join(rng.choice(vocab) for _ in range(rng.randint(3, 12))).capitalize() + "." for _ in range(30)))
    text = "\n\n".join(parts)
    limit = min(250, embedder.max_tokens)
    chunks = chunk_text("a", text, embedder.count_tokens, max_tokens=limit)
    assert len(chunks) > 40
    real = embedder.count_tokens([c.text for c in chunks])
    assert max(real) <= limit
    assert all(c.token_count <= limit for c in chunks)
    check_invariants(text, chunks, embedder.count_tokens, limit)
