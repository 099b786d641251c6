"""Reading the corpus folder: metadata, bylines, plain text, and bad files skipped with a reason."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from index.indexing.corpus import (
    ArticleError,
    article_id_for,
    parse_article,
    read_article,
    scan_corpus,
    title_from_filename,
)

GOOD = "---\ntitle: Good article\n---\nThe good article has a body. It is indexed.\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ---- metadata --------------------------------------------------------------------------------


def test_front_matter_fields(tmp_path):
    path = write(
        tmp_path / "sanctions.md",
        "---\n"
        'title: "Sanctions: a review"\n'
        "url: https://example.org/sanctions\n"
        "author: Jane Doe\n"
        "published: 2024-03-05\n"
        "source: Example Review\n"
        "tags: [ignored, extra]\n"
        "---\n\n"
        "# A heading that is not the title\n\n"
        "Sanctions were tightened in March. Exports fell.\n",
    )
    article = read_article(path, tmp_path)
    assert article.article_id == "sanctions"
    assert article.title == "Sanctions: a review"
    assert article.url == "https://example.org/sanctions"
    assert article.author == "Jane Doe"
    assert article.published == "2024-03-05"
    assert article.source == "Example Review"
    assert article.path == "sanctions.md"
    assert article.text == "Sanctions were tightened in March. Exports fell."


def test_only_title_is_needed(tmp_path):
    article = read_article(write(tmp_path / "a.md", "---\ntitle: Just a title\n---\nBody text.\n"), tmp_path)
    assert (article.title, article.url, article.author, article.published, article.source) == ("Just a title", "", "", "", "")
    assert article.text == "Body text."


def test_title_falls_back_to_first_heading(tmp_path):
    article = read_article(write(tmp_path / "a.md", "---\nauthor: Kim\n---\n\n# Heading Title #\n\nBody text.\n"), tmp_path)
    assert article.title == "Heading Title"
    assert article.author == "Kim"
    assert article.text == "Body text."  # the heading is the title, not body text


def test_heading_title_without_front_matter_after_blank_lines(tmp_path):
    article = read_article(write(tmp_path / "a.md", "\n\n# Heading Title\n\nBody text.\n"), tmp_path)
    assert article.title == "Heading Title"
    assert article.text == "Body text."


def test_title_falls_back_to_file_name(tmp_path):
    article = read_article(write(tmp_path / "north-korea_policy.md", "Body text only.\n"), tmp_path)
    assert article.title == "North korea policy"
    assert title_from_filename(Path("x/trade--war__2024.md")) == "Trade war 2024"


def test_front_matter_values_are_flattened_to_one_line(tmp_path):
    article = read_article(write(tmp_path / "a.md", "---\ntitle: >\n  A folded\n  title\nauthor: 42\n---\nBody.\n"), tmp_path)
    assert article.title == "A folded title"
    assert article.author == "42"


def test_trailing_byline_becomes_author(tmp_path):
    article = read_article(
        write(tmp_path / "a.md", "---\ntitle: T\n---\nFirst paragraph.\n\nLast paragraph.\n\nBy Vugar Khalilov\n\n"), tmp_path
    )
    assert article.author == "Vugar Khalilov"
    assert article.text == "First paragraph.\n\nLast paragraph."
    assert "By Vugar" not in article.text


@pytest.mark.parametrize("line, author", [("*By J. R. Smith and Ann Lee*", "J. R. Smith and Ann Lee"), ("__By Kim Jong__", "Kim Jong")])
def test_formatted_byline(line, author):
    article = parse_article(f"Body text.\n\n{line}\n", "a", "A")
    assert article.author == author
    assert article.text == "Body text."


def test_front_matter_author_wins_but_byline_is_still_removed():
    article = parse_article("---\ntitle: T\nauthor: Front Matter\n---\nBody.\n\nBy Someone Else\n", "a", "A")
    assert article.author == "Front Matter"
    assert article.text == "Body."


@pytest.mark.parametrize("last", ["By contrast, Seoul has lagged behind.", "By 2030 the treaty will expire.", "By then it was late"])
def test_a_closing_sentence_starting_with_by_is_not_a_byline(last):
    article = parse_article(f"First paragraph.\n\n{last}\n", "a", "A")
    assert article.author == ""
    assert article.text.endswith(last)


def test_byline_mid_text_is_kept():
    article = parse_article("Intro.\n\nBy Jane Doe\n\nMore text after it.\n", "a", "A")
    assert article.author == ""
    assert "By Jane Doe" in article.text


def test_txt_file_is_plain_text(tmp_path):
    path = write(tmp_path / "plain_notes.txt", "---\ntitle: not front matter\n---\n# not a heading\n\nBody.\n")
    article = read_article(path, tmp_path)
    assert article.article_id == "plain-notes"
    assert article.title == "Plain notes"
    assert article.text.startswith("---\ntitle: not front matter")


def test_txt_takes_its_title_from_a_first_line_that_is_a_title(tmp_path):
    text = "Harbour fees cut: what it means for Valmora?\nThe port cut its fees by a tenth.\nShips came back within weeks.\n"
    article = read_article(write(tmp_path / "fees.txt", text), tmp_path)
    assert article.title == "Harbour fees cut: what it means for Valmora?"
    assert article.text == "The port cut its fees by a tenth.\nShips came back within weeks."  # the title is not a paragraph


@pytest.mark.parametrize(
    "first",
    [
        "The port authority cut its fees for container ships.",  # a sentence: ends with a full stop
        "Mr. President,",  # a salutation leading into the text
        "Harbour fees " * 12,  # too long for a title
        "2024 / 09 / 23",  # no words
        "By Vugar Khalilov",  # a byline
        "The port authority of Valmora cut its fees for container ships by a",  # a hard-wrapped line
    ],
)
def test_txt_first_line_that_is_no_title_stays_text(tmp_path, first):
    article = read_article(write(tmp_path / "harbour_fees.txt", f"{first}\nShips came back to the harbour.\n"), tmp_path)
    assert article.title == "Harbour fees"
    assert article.text.startswith(first.strip())


def test_txt_with_one_line_keeps_it_as_text(tmp_path):
    article = read_article(write(tmp_path / "budget.txt", "Budget talks resume\n"), tmp_path)
    assert (article.title, article.text) == ("Budget", "Budget talks resume")


def test_txt_closing_byline_gives_the_author_and_is_no_paragraph(tmp_path):
    body = "Pyongyang emerged from the talks emboldened.\nMoscow became a lucrative partner."
    article = read_article(write(tmp_path / "nk.txt", f"{body}\nBy Vugar Khalilov"), tmp_path)
    assert article.author == "Vugar Khalilov"
    assert article.text == body and "By Vugar" not in article.text


def test_the_seed_article_in_the_corpus(tmp_path):
    root = Path(__file__).resolve().parents[3]
    article = read_article(root / "corpus" / "north-korea-foreign-affairs.md", root / "corpus")
    assert article.title == "Foreign Affairs on North Korea: the quiet priority of Trump's second term"
    assert article.author == "Vugar Khalilov" and "Foreign Affairs" in article.source
    assert article.url == "https://www.europesays.com/2229145"
    body = (root / "corpus" / "north-korea-foreign-affairs.md").read_text(encoding="utf-8").split("---\n", 2)[2]
    assert body == article.text + "\nBy Vugar Khalilov"  # the text verbatim; the byline is metadata
    assert article.text.startswith("In a fresh article, Foreign Affairs") and article.text.count("\n") == 7


def test_a_new_paragraph_reading_changes_the_content_hash():
    """Text read one paragraph a line is chunked and cited differently: indexes made before re-index it."""
    from index.indexing.corpus import content_hash

    lines = parse_article("Ships came back.\nFees fell.\nThe council met.\n", "a", "A", markdown=False)
    assert lines.content_hash != content_hash(lines.text, "", "", "", "", "", "A")
    wrapped = parse_article("Ships came\nback.\n\nFees fell.\n", "a", "A", markdown=False)
    assert wrapped.content_hash == content_hash(wrapped.text, "", "", "", "", "", "A")


def test_crlf_and_bom_are_normalised(tmp_path):
    path = write(tmp_path / "a.md", "\ufeff---\r\ntitle: Windows\r\n---\r\nLine one.\r\nLine two.\r\n".encode("utf-8"))
    article = read_article(path, tmp_path)
    assert article.title == "Windows"
    assert article.text == "Line one.\nLine two."


def test_article_ids_are_stable_slugs(tmp_path):
    assert article_id_for(tmp_path / "Sub Dir" / "My File (2).md", tmp_path) == "sub-dir/my-file-2"
    assert article_id_for(tmp_path / "ÜBER.md", tmp_path) == "ber"
    assert article_id_for(tmp_path / "日本.md", tmp_path) == "article"


def test_content_hash_tracks_text_and_metadata():
    a = parse_article("---\ntitle: T\n---\nBody.\n", "a", "A")
    assert parse_article("---\ntitle: T\n---\nBody.\n", "a", "A").content_hash == a.content_hash
    assert parse_article("---\ntitle: T\n---\nBody!\n", "a", "A").content_hash != a.content_hash
    assert parse_article("---\ntitle: U\n---\nBody.\n", "a", "A").content_hash != a.content_hash
    assert parse_article("---\ntitle: T\nurl: http://x\n---\nBody.\n", "a", "A").content_hash != a.content_hash


# ---- the corpus folder -----------------------------------------------------------------------


def _random_bytes(with_nul: bool) -> bytes:
    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(4000))
    return data if with_nul else data.replace(b"\x00", b"\x01")


BAD_FILES = {
    "empty": (b"", "empty"),
    "whitespace-only": (b"  \n\n\t \n", "empty"),
    "nul-bytes": (b"Some text\x00with a NUL byte.\n", "binary"),
    "random-bytes": (_random_bytes(with_nul=True), "binary"),
    "random-bytes-no-nul": (_random_bytes(with_nul=False), "UTF-8"),
    "control-characters": (("Text \x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10" * 20).encode(), "binary"),
    "latin-1": ("Café au lait, naïve résumé.\n".encode("latin-1"), "not UTF-8"),
    "unclosed-front-matter": (b"---\ntitle: Never closed\nBody text.\n", "no closing '---'"),
    "invalid-yaml": (b"---\ntitle: [unclosed\n---\nBody.\n", "broken front matter"),
    "yaml-list": (b"---\n- a\n- b\n---\nBody.\n", "broken front matter"),
    "title-as-list": (b"---\ntitle:\n  - a\n  - b\n---\nBody.\n", "'title' must be a single value"),
    "front-matter-only": (b"---\ntitle: Only metadata\n---\n\n\n", "no article text"),
    "heading-only": (b"# Only a heading\n", "no article text"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_skipped_with_reason_and_rest_still_read(tmp_path, name):
    content, reason = BAD_FILES[name]
    write(tmp_path / "good.md", GOOD)
    write(tmp_path / f"{name}.md", content)
    scan = scan_corpus(tmp_path)
    assert [a.article_id for a in scan.articles] == ["good"]
    assert len(scan.skipped) == 1
    skipped = scan.skipped[0]
    assert skipped.path.endswith(f"{name}.md")
    assert reason in skipped.reason


def test_read_article_raises_article_error_for_bad_file(tmp_path):
    with pytest.raises(ArticleError, match="not UTF-8.*0xe9"):
        read_article(write(tmp_path / "a.md", "Café".encode("latin-1")), tmp_path)


def test_fifty_megabyte_file_is_skipped_quickly(tmp_path):
    write(tmp_path / "good.md", GOOD)
    line = b"Some words here for a big file that nobody should embed in one go.\n"
    with open(tmp_path / "huge.md", "wb") as handle:
        handle.write(line * (50 * 2**20 // len(line) + 1))
    scan = scan_corpus(tmp_path)
    assert [a.article_id for a in scan.articles] == ["good"]
    [skipped] = scan.skipped
    assert skipped.path.endswith("huge.md")
    assert "too large" in skipped.reason and "50.0 MB" in skipped.reason and "limit is 10.0 MB" in skipped.reason


def test_size_limit_is_configurable(tmp_path):
    write(tmp_path / "a.md", "Text. " * 400)
    assert scan_corpus(tmp_path, max_bytes=1000).skipped[0].reason.startswith("too large")
    assert [a.article_id for a in scan_corpus(tmp_path, max_bytes=10_000).articles] == ["a"]


def test_directories_named_like_articles_are_not_files(tmp_path):
    write(tmp_path / "good.md", GOOD)
    (tmp_path / "folder.md").mkdir()
    write(tmp_path / "folder.md" / "inner.md", "Inner article text.\n")
    scan = scan_corpus(tmp_path)
    assert sorted(a.article_id for a in scan.articles) == ["folder-md/inner", "good"]
    assert scan.skipped == []


def test_hidden_files_and_folders_and_other_suffixes_are_ignored(tmp_path):
    write(tmp_path / "good.md", GOOD)
    write(tmp_path / ".hidden.md", "Hidden text.\n")
    write(tmp_path / ".git" / "notes.md", "Git internals.\n")
    write(tmp_path / "sub" / ".draft" / "x.md", "Draft.\n")
    write(tmp_path / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    write(tmp_path / "notes.docx", b"PK\x03\x04")
    write(tmp_path / "sub" / "visible.markdown", "Visible nested text.\n")
    write(tmp_path / "UPPER.MD", "Upper-case suffix.\n")
    scan = scan_corpus(tmp_path)
    assert sorted(a.article_id for a in scan.articles) == ["good", "sub/visible", "upper"]
    assert scan.skipped == []


def test_symlink_loops_do_not_crash(tmp_path):
    write(tmp_path / "good.md", GOOD)
    (tmp_path / "loop").mkdir()
    os.symlink("..", tmp_path / "loop" / "up")  # a directory cycle
    os.symlink("self.md", tmp_path / "self.md")  # a link to itself
    os.symlink("b.md", tmp_path / "a.md")  # a two-link cycle
    os.symlink("a.md", tmp_path / "b.md")
    os.symlink("missing.md", tmp_path / "dangling.md")
    scan = scan_corpus(tmp_path)
    assert [a.article_id for a in scan.articles] == ["good"]


def test_symlink_to_a_file_is_read(tmp_path):
    target = write(tmp_path / "elsewhere" / ".store" / "real.md", "Linked article text.\n")
    os.symlink(target, tmp_path / "linked.md")
    assert [a.article_id for a in scan_corpus(tmp_path).articles] == ["linked"]


def test_links_leading_outside_the_corpus_are_never_read_and_are_reported(tmp_path):
    corpus = tmp_path / "corpus"
    write(corpus / "good.md", GOOD)
    secret = write(tmp_path / "private" / "secret.txt", "SECRET-TOKEN-MARKER the bot's password.\n")
    write(tmp_path / "private" / "notes.md", "SECRET-FOLDER-MARKER private notes.\n")
    os.symlink(secret, corpus / "secret.md")
    os.symlink("../../private/secret.txt", write(corpus / "sub" / "x.md", GOOD).parent / "relative.txt")
    os.symlink(tmp_path / "private", corpus / "linked-folder")
    if Path("/etc/passwd").is_file():
        os.symlink("/etc/passwd", corpus / "passwd.txt")
    os.symlink(tmp_path / "private" / "nothing-here.md", corpus / "dangling.md")

    scan = scan_corpus(corpus)
    assert sorted(a.article_id for a in scan.articles) == ["good", "sub/x"]
    assert not any("MARKER" in a.text or "root:" in a.text for a in scan.articles)
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    expected = {"secret.md", "relative.txt", "linked-folder"} | ({"passwd.txt"} if Path("/etc/passwd").is_file() else set())
    assert set(reasons) == expected
    assert all("outside the corpus folder: not read" in reason for reason in reasons.values())
    assert "folder outside" in reasons["linked-folder"]
    with pytest.raises(ArticleError, match="outside the corpus folder"):
        read_article(corpus / "secret.md", corpus)


def test_an_article_indexed_through_an_outside_link_leaves_the_index(tmp_path, fake_embedder):
    from index.indexing.indexer import update_index

    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write(corpus / "good.md", GOOD)
    write(corpus / "leak.md", "Harbour dues rose by a tenth this spring.\n")
    update_index(corpus, index_dir, fake_embedder)[1].close()
    (corpus / "leak.md").unlink()
    os.symlink(write(tmp_path / "private.md", "SECRET-TOKEN-MARKER.\n"), corpus / "leak.md")
    report, store = update_index(corpus, index_dir, fake_embedder)
    try:
        assert report.removed == ["leak"] and [s.path for s in report.skipped] == [str(corpus / "leak.md")]
        assert [a.article_id for a in store.articles()] == ["good"]
    finally:
        store.close()


def test_duplicate_ids_keep_the_first_and_name_both_files(tmp_path):
    write(tmp_path / "a.md", "From the Markdown file.\n")
    write(tmp_path / "a.txt", "From the text file.\n")
    scan = scan_corpus(tmp_path)
    assert [(a.article_id, a.text) for a in scan.articles] == [("a", "From the Markdown file.")]
    [skipped] = scan.skipped
    assert skipped.path.endswith("a.txt")
    assert "same article id 'a'" in skipped.reason and "a.md" in skipped.reason


def test_every_kind_of_bad_file_at_once(tmp_path):
    write(tmp_path / "good.md", GOOD)
    write(tmp_path / "sub" / "also-good.txt", "Another good article.\n")
    for name, (content, _) in BAD_FILES.items():
        write(tmp_path / "bad" / f"{name}.md", content)
    scan = scan_corpus(tmp_path)
    assert sorted(a.article_id for a in scan.articles) == ["good", "sub/also-good"]
    assert sorted(Path(s.path).stem for s in scan.skipped) == sorted(BAD_FILES)
    assert all(s.reason for s in scan.skipped)


def test_empty_folder_and_missing_folder(tmp_path):
    assert scan_corpus(tmp_path).articles == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_corpus(tmp_path / "nope")


def test_a_corpus_folder_reached_through_a_link_is_read(tmp_path):
    write(tmp_path / "real-corpus" / "good.md", GOOD)
    os.symlink(tmp_path / "real-corpus", tmp_path / "corpus")
    scan = scan_corpus(tmp_path / "corpus")
    assert [a.article_id for a in scan.articles] == ["good"] and scan.skipped == []
