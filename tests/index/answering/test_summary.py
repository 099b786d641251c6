"""Extractive summaries: thesis first, the article's parts in order, exact quotes, lengths."""

from __future__ import annotations

import re

import pytest

from index.answering.summary import (
    SUMMARY_CHARS,
    SUMMARY_SENTENCES,
    article_sentences,
    informativeness,
    is_complete,
    refers_back,
    sections_of,
    summarize_text,
    summary_budget,
)
from index.indexing.chunking import paragraph_spans
from index.indexing.corpus import read_article
from index.indexing.indexer import IndexOptions, chunk_article
from index.text import leans_back
from tests.conftest import SMALL_CORPUS, FakeEmbedder, write_article

MARKER = re.compile(r"\[(\d+)\]")

# The seed article as shipped (one paragraph a line, then the byline), kept here so tests need no shared files.
SEED_TEXT = (
    "In a fresh article, Foreign Affairs offers a detailed examination of the often-overlooked North "
    "Korea agenda amid the geopolitical whirlwind that has consumed the early months of the Trump "
    "administration’s return to power. While President Donald Trump has remained publicly silent on "
    "Pyongyang compared to his vocal stances on Ukraine or the Middle East, the article reveals that "
    "North Korea remains a key, if quietly pursued, priority—one that could define Trump’s foreign policy "
    "legacy if successful.\n"
    "The piece starts by recounting Trump’s initial attempts at diplomacy with North Korea during his "
    "first presidency. The 2019 Hanoi summit, which ended abruptly without a deal, showcased the "
    "challenges of negotiating with a regime seeking to preserve its nuclear capabilities while escaping "
    "the tightening grip of international sanctions. The “small deal” on the table would have required "
    "North Korea to dismantle key nuclear facilities in exchange for relief from UN sanctions—a "
    "compromise short of full denuclearization but one with potential for incremental progress.\n"
    "However, Pyongyang emerged from the failed talks emboldened rather than weakened. Geopolitical "
    "shifts have greatly altered North Korea’s position since then. China, once a wary neighbor, has "
    "softened its stance, increasingly viewing North Korea as a strategic buffer against U.S. influence "
    "in the region. Moscow, pressed by its war in Ukraine, unexpectedly became a lucrative partner by "
    "purchasing North Korean ammunition, funneling billions into the isolated regime. A formal military "
    "alliance between Russia and North Korea in 2024, coupled with North Korean troops fighting in "
    "Ukraine, has further entrenched Pyongyang’s newfound leverage.\n"
    "North Korea’s military capabilities have also expanded, with new long-range missiles capable of "
    "reaching the continental United States and an estimated arsenal of about 50 nuclear warheads. In "
    "this context, Foreign Affairs points out that Washington’s bargaining power has diminished, meaning "
    "any revived deal would likely require larger concessions to Pyongyang.\n"
    "Yet, despite its growing strength, North Korea is reportedly signaling readiness to re-engage in "
    "talks—a notable development highlighted in the article. This willingness aligns with a practical "
    "understanding that the current economic relationship with Russia is unsustainable post-conflict and "
    "that overdependence on China carries its own risks. Pyongyang’s leaders appear motivated to "
    "diversify economic ties and gain relief from sanctions, with possible incentives including renewed "
    "dialogue with South Korea’s new government and even Japan.\n"
    "Foreign Affairs cautions, however, that any revived “small deal” will be imperfect. It would likely "
    "preserve North Korea’s nuclear deterrent and rely on Pyongyang’s willingness to partially comply—a "
    "gamble that risks continued secrecy and potential cheating. Nonetheless, such an agreement could "
    "halt or slow further nuclear development by dismantling key infrastructure, thereby limiting North "
    "Korea’s ability to rapidly expand its arsenal.\n"
    "The article also underscores North Korean skepticism toward enduring agreements with democracies, "
    "informed by past U.S. policy reversals like the abrogation of the Iran nuclear deal. Still, the "
    "current geopolitical realities—with China and Russia favoring the status quo—make a rollback of "
    "sanctions unlikely even under future U.S. administrations, thereby strengthening Pyongyang’s "
    "incentive to seize a deal with Trump’s team.\n"
    "Ultimately, Foreign Affairs depicts a North Korea that has learned to leverage shifting global "
    "dynamics to its advantage. The Trump administration’s second opportunity to negotiate may involve "
    "accepting a tougher, more costly deal than before, but for Pyongyang, it might represent the best "
    "chance to gain economic autonomy and security guarantees in an uncertain region.\n"
    "By Vugar Khalilov"
)

# The eight points a medium summary of the seed must make (issue 10), each by any of its key phrases.
SEED_POINTS = {
    "the quiet priority": ("quietly pursued", "priority"),
    "Hanoi and the small deal": ("hanoi", "small deal"),
    "China as a buffer": ("strategic buffer",),
    "Russia's money and alliance": ("moscow", "lucrative", "alliance"),
    "about 50 warheads": ("50 nuclear warheads",),
    "readiness to talk": ("re-engage in talks",),
    "why a new deal would be imperfect": ("imperfect",),
    "sanctions unlikely to be rolled back": ("rollback of sanctions unlikely",),
}

# Twelve paragraphs on distinct subjects, two sentences each, every sentence long enough to be eligible.
TOPICS = [
    ("harbour", "ferries", "cranes"),
    ("orchard", "apples", "frost"),
    ("library", "books", "readers"),
    ("railway", "signals", "tracks"),
    ("hospital", "nurses", "wards"),
    ("airport", "runways", "noise"),
    ("forest", "wildfires", "rangers"),
    ("museum", "paintings", "visitors"),
    ("bakery", "bread", "ovens"),
    ("stadium", "tickets", "supporters"),
    ("vineyard", "grapes", "harvest"),
    ("observatory", "telescopes", "comets"),
]
LONG_TEXT = "\n\n".join(
    f"The {place} council reviewed {a} budgets and {b} schedules for the coming season. "
    f"Local {a} groups asked for more {b} near the {place} before the winter."
    for place, a, b in TOPICS
)


def speech_like_text() -> str:
    """About 3,000 words shaped like a UN General Debate statement: one paragraph a line, a
    salutation first, some lines broken mid-sentence, leaning sentences, 40 paragraphs."""
    lines = ["Mr. President, allow me to congratulate you on your election to preside over this session of the Assembly."]
    for n in range(40):
        place, a, b = TOPICS[n % len(TOPICS)]
        lines.append(
            f"Our delegation raises the question of the {place} in region {n + 1}, where {a} and {b} shape daily life. "
            f"It affects millions of families who depend on the {place} for work and for food. "
            f"However, the international community has pledged {n + 3} billion dollars to rebuild the {place} networks. "
            f"We call on every Member State to honour commitment {n + 1} on the {a} before the next session. "
            f"The United Nations must lead the work on {b} with transparency, patience and resolve."
        )
        if n % 10 == 4:  # a sentence broken across two lines, as in the transcripts
            lines.append(f"We must also ensure that the {b} programme reaches")
            lines.append(f"every village in region {n + 1} by the end of the decade.")
    lines.append("In conclusion, my country remains committed to the principles of the Charter of the United Nations.")
    return "\n".join(lines)


def summary_sentences(summary, text: str):
    """The article sentences a summary quotes, in order."""
    spans = [(c.start, c.end) for c in summary.citations]
    return [s for s in article_sentences(text) if any(start <= s.start and s.end <= end for start, end in spans)]


def assert_cited_summary(summary, text: str, article_id: str) -> None:
    assert not summary.abstained and summary.citations
    citations = summary.citations
    assert [c.n for c in citations] == list(range(1, len(citations) + 1))
    # The text is the cited sentences in order, each group followed by its own marker.
    assert [int(m) for m in MARKER.findall(summary.text)] == [c.n for c in citations]
    starts = [c.start for c in citations]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), "not in article order"
    for previous, c in zip(citations, citations[1:]):
        assert previous.end < c.start, "overlapping quotes"
    paragraphs = paragraph_spans(text)
    sentences = article_sentences(text)
    quoted = summary_sentences(summary, text)
    for c in citations:
        assert text[c.start : c.end] == c.quote and c.quote.strip()
        assert c.article_id == article_id
        span = paragraphs[c.paragraph - 1]
        assert span.start <= c.start and c.end <= span.end, (c.paragraph, c.quote)
        assert " ".join(c.quote.split()) in " ".join(summary.text.split())
        # A citation quotes whole sentences.
        assert any(s.start == c.start for s in sentences) and any(s.end == c.end for s in sentences)
    # Consecutive sentences of one paragraph share a citation.
    for previous, c in zip(citations, citations[1:]):
        between = [s for s in sentences if previous.end <= s.start and s.end <= c.start]
        assert between or previous.paragraph != c.paragraph, (previous.quote, c.quote)
    # A sentence that leans on the one before it never opens the summary nor comes without it.
    assert not leans_back(quoted[0].text) and not refers_back(quoted[0].text), quoted[0].text
    for s in quoted[1:]:
        if refers_back(s.text):
            before = sentences[sentences.index(s) - 1]
            assert before in quoted, s.text
    assert len(summary.text) <= max(SUMMARY_CHARS.values())
    assert set(summary.as_dict()) >= {"question", "answer", "abstained", "citations", "timings_ms"}


# ---- the seed article, with the real model --------------------------------------------------


@pytest.mark.slow
def test_medium_summary_of_the_seed_makes_its_eight_points(embedder):
    summary = summarize_text("seed", "North Korea", "https://example.org/seed", SEED_TEXT, embedder, "medium")
    print("\n" + summary.text)
    assert_cited_summary(summary, SEED_TEXT, "seed")
    lowered = summary.text.lower()
    missing = [point for point, phrases in SEED_POINTS.items() if not any(p in lowered for p in phrases)]
    assert not missing, missing
    # It opens with the thesis, from the first paragraph.
    assert summary.citations[0].paragraph == 1
    assert "quietly pursued" in summary.citations[0].quote
    # It walks through the whole article, and the byline is metadata, never summary material.
    assert {c.paragraph for c in summary.citations} >= set(range(1, 9))
    assert "Khalilov" not in summary.text
    # Medium is a summary, not the article.
    assert len(summary.text.split()) < 0.7 * len(SEED_TEXT.split())


@pytest.mark.slow
def test_seed_summaries_grow_with_length(embedder):
    summaries = {length: summarize_text("seed", "North Korea", "", SEED_TEXT, embedder, length) for length in SUMMARY_SENTENCES}
    for length, summary in summaries.items():
        print(f"\n{length}: {summary.text}")
        assert_cited_summary(summary, SEED_TEXT, "seed")
        assert summary.citations[0].paragraph == 1 and "quietly pursued" in summary.citations[0].quote, length
        assert "Khalilov" not in summary.text
    words = [len(summaries[length].text.split()) for length in ("short", "medium", "long")]
    assert words == sorted(words) and len(set(words)) == 3, words
    # Short is the thesis and two more points.
    short = summary_sentences(summaries["short"], SEED_TEXT)
    assert len([s for s in short if not refers_back(s.text)]) == 3


@pytest.mark.slow
def test_seed_summary_paragraphs_match_the_chunks(tmp_path, embedder):
    """A summary's paragraph numbers are the ones answers cite for the same text."""
    path = tmp_path / "seed.txt"
    path.write_text(SEED_TEXT, encoding="utf-8")
    article = read_article(path, tmp_path)
    chunks = chunk_article(article, embedder, IndexOptions())
    summary = summarize_text(article.article_id, article.title, article.url, article.text, embedder, "medium")
    for c in summary.citations:
        containing = [ch for ch in chunks if ch.start <= c.start and c.end <= ch.end]
        assert containing and all(ch.paragraph == c.paragraph for ch in containing), c


# ---- long texts, with the fake embedder -----------------------------------------------------


@pytest.mark.parametrize("length", ["short", "medium", "long"])
def test_lengths_on_a_long_article(length):
    summary = summarize_text("towns", "Twelve towns", "https://example.org/towns", LONG_TEXT, FakeEmbedder(), length)
    assert_cited_summary(summary, LONG_TEXT, "towns")
    assert summary.question == "summary of Twelve towns"
    assert all(c.title == "Twelve towns" and c.url == "https://example.org/towns" for c in summary.citations)
    quoted = summary_sentences(summary, LONG_TEXT)
    assert len(quoted) == summary_budget(length, 24)
    # Spread over the article: the first and the last third are both drawn on.
    paragraphs = {c.paragraph for c in summary.citations}
    assert min(paragraphs) <= 4 and max(paragraphs) >= 9


def test_long_article_lengths_differ():
    counts = [
        len(summary_sentences(summarize_text("t", "T", "", LONG_TEXT, FakeEmbedder(), length), LONG_TEXT))
        for length in ("short", "medium", "long")
    ]
    assert counts == [3, 10, 14]


@pytest.mark.parametrize("length", ["short", "medium", "long"])
def test_a_speech_like_text(length):
    text = speech_like_text()
    assert 2500 < len(text.split()) < 3500
    summary = summarize_text("speech", "Statement", "", text, FakeEmbedder(), length)
    assert_cited_summary(summary, text, "speech")
    quoted = summary_sentences(summary, text)
    assert all(is_complete(s.text) for s in quoted), "a line broken mid-sentence was quoted"
    assert not quoted[0].text.startswith("Mr. President, allow me")  # the salutation is not the thesis
    assert len(summary.text) <= SUMMARY_CHARS[length]
    # Sections cover the speech from beginning to end.
    paragraphs = [c.paragraph for c in summary.citations]
    last = len(paragraph_spans(text))
    assert paragraphs[0] <= last // 4 and paragraphs[-1] >= last * 3 // 4


def test_speech_lengths_differ():
    text = speech_like_text()
    words = [len(summarize_text("s", "S", "", text, FakeEmbedder(), length).text.split()) for length in ("short", "medium", "long")]
    assert words[0] < words[1] < words[2]


# ---- the parts ------------------------------------------------------------------------------


def test_a_leaning_sentence_comes_with_its_antecedent():
    # Each paragraph's only eligible sentence (the first is too short) leans on the one before it.
    text = "\n\n".join(
        f"The {place} report is out. It says the {place} {a} and {b} budgets must double, the {a} first." for place, a, b in TOPICS[:6]
    )
    summary = summarize_text("r", "Reports", "", text, FakeEmbedder(), "medium")
    assert_cited_summary(summary, text, "r")
    # Each pair is one citation: consecutive sentences of a paragraph are grouped.
    assert all(c.quote.startswith("The ") and ". It says" in c.quote for c in summary.citations)


def test_thesis_comes_first_even_when_a_later_sentence_is_central():
    text = (
        "Minor remarks open this short note about nothing much at all today.\n\n"
        "The city will tax empty homes to fund housing for nurses and teachers. Housing for nurses and teachers is scarce.\n\n"
        "Empty homes will be taxed from January, and housing for nurses and teachers follows in spring.\n\n"
        "Landlords of empty homes say the housing tax for nurses and teachers is unfair."
    )
    summary = summarize_text("t", "T", "", text, FakeEmbedder(), "short")
    assert_cited_summary(summary, text, "t")
    assert summary.citations[0].paragraph in (1, 2)


@pytest.mark.parametrize("length, expected", [("short", 3), ("medium", 4), ("long", 4)])
def test_a_short_article_gives_what_it_has(tmp_path, length, expected):
    title, body = SMALL_CORPUS["water-rationing.md"]
    path = write_article(tmp_path, "water-rationing.md", title, body)
    article = read_article(path, tmp_path)
    assert len(article_sentences(article.text)) == 4
    summary = summarize_text(article.article_id, article.title, article.url, article.text, FakeEmbedder(), length)
    assert_cited_summary(summary, article.text, "water-rationing")
    assert len(summary_sentences(summary, article.text)) == expected


def test_summary_paragraphs_match_the_chunks(tmp_path):
    """A summary's paragraph numbers are the ones answers cite for the same text."""
    embedder = FakeEmbedder()
    path = write_article(tmp_path, "towns.md", "Twelve towns", "# A heading\n\n" + LONG_TEXT)
    article = read_article(path, tmp_path)
    chunks = chunk_article(article, embedder, IndexOptions())
    summary = summarize_text(article.article_id, article.title, article.url, article.text, embedder, "long")
    for c in summary.citations:
        containing = [ch for ch in chunks if ch.start <= c.start and c.end <= ch.end]
        assert containing and all(ch.paragraph == c.paragraph for ch in containing), c


def test_invalid_length():
    with pytest.raises(ValueError, match="short, medium, long"):
        summarize_text("a", "A", "", LONG_TEXT, FakeEmbedder(), "tiny")


@pytest.mark.parametrize("text", ["", "   \n\n  ", "🙂🙂\n\n???"])
def test_an_article_without_words(text):
    embedder = FakeEmbedder()
    summary = summarize_text("empty", "Empty", "", text, embedder)
    assert summary.abstained and summary.citations == ()
    assert "no text" in summary.text
    assert embedder.calls == 0


def test_only_short_sentences_are_still_summarised():
    text = "Taxes rose.\n\nRents fell.\n\nSchools opened."
    summary = summarize_text("s", "Short", "", text, FakeEmbedder(), "short")
    assert_cited_summary(summary, text, "s")
    assert len(summary.citations) == 3


def test_article_sentences_keep_offsets_and_paragraphs():
    text = "North Korea tested a missile in March. It flew far.\n\nThe talks failed. However, both sides met again."
    sentences = article_sentences(text)
    assert [s.text for s in sentences] == [
        "North Korea tested a missile in March.",
        "It flew far.",
        "The talks failed.",
        "However, both sides met again.",
    ]
    assert [s.paragraph for s in sentences] == [1, 1, 2, 2]
    assert all(text[s.start : s.end] == s.text for s in sentences)


@pytest.mark.parametrize(
    "sentence, leaning",
    [
        ("It would likely preserve the deterrent.", True),
        ("However, Pyongyang emerged emboldened.", True),
        ("Nonetheless, such an agreement could halt it.", True),
        ("In this context, Foreign Affairs points out a change.", True),
        ("In that regard, we call on the community.", True),
        ("In 2015, it was hot.", True),
        ("Today it has against it a whole nation.", True),
        ("Ultimately, Foreign Affairs depicts a stronger North Korea.", False),
        ("Given that the world faces hunger, we must act together.", False),
        ("In Syria, the war goes on.", False),
        ("The world has gathered here in New York.", False),
    ],
)
def test_refers_back(sentence, leaning):
    assert refers_back(sentence) is leaning


@pytest.mark.parametrize(
    "sentence, complete",
    [
        ("The talks failed.", True),
        ("“The talks failed,” he said.", True),
        ("also poses a serious challenge to the United Nations.", False),
        ("Beyond cooperation, the Government is committed to enhancing regional engagement and", False),
        ("By Vugar Khalilov", False),
        ("# A heading", False),
    ],
)
def test_is_complete(sentence, complete):
    assert is_complete(sentence) is complete


def test_summary_budget():
    assert summary_budget("short", 100) == 3
    assert summary_budget("medium", 22) == 9 and summary_budget("long", 22) == 13
    assert summary_budget("medium", 500) == SUMMARY_SENTENCES["medium"]
    assert summary_budget("long", 500) == SUMMARY_SENTENCES["long"]
    assert summary_budget("long", 4) == 4


def test_sections_of():
    assert sections_of([1, 2, 3], [2, 2, 2], 5) == [[1], [2], [3]]
    sections = sections_of(list(range(1, 31)), [3] * 30, 10)
    assert len(sections) == 10 and [p for s in sections for p in s] == list(range(1, 31))
    assert all(len(s) == 3 for s in sections)
    uneven = sections_of([1, 2, 3, 4], [10, 1, 1, 1], 2)
    assert uneven == [[1], [2, 3, 4]]


def test_informativeness():
    assert informativeness("It is.") < informativeness("The finance ministry proposes a carbon tax on heating oil.")
    assert informativeness("About 50 warheads exist.") > informativeness("About fifty warheads exist.")
    assert informativeness("Talks with Russia and China resumed in Geneva.") > informativeness("Talks with them resumed there again.")
    assert informativeness(" ".join(["word"] * 100)) <= 1.2
