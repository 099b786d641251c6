"""Uploaded articles: safe names, clear refusals for broken or hostile files, no duplicates, nothing lost."""

from __future__ import annotations

import pytest

from index.indexing.corpus import corpus_files, scan_corpus
from index.ingestion.adding import (
    ADD_LOCK_NAME,
    IngestError,
    add_article_file,
    remove_article_file,
    safe_filename,
)
from index.types import ArticleInfo

ARTICLE = b"---\ntitle: Ports and tariffs\n---\n\nThe port authority cut fees for container ships.\n"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("notes.md", "notes.md"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.md", "evil.md"),
        ("/absolute/path/Article Title.MD", "article-title.md"),
        ("Économie – été.txt", "economie-ete.txt"),
        ("...md", "article.md"),
        (".hidden.md", "hidden.md"),
        ("a" * 300 + ".md", "a" * 80 + ".md"),
        ("con.txt", "con.txt"),
    ],
)
def test_file_names_are_sanitised_inside_the_corpus(name, expected):
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["evil.exe", "archive.zip", "page.md.exe", "noext", "", "payload.md/", "shell.sh", "x.pdf.sh"])
def test_unaccepted_file_types_are_refused(name):
    with pytest.raises(IngestError, match="not an article file"):
        safe_filename(name)


def test_an_upload_lands_in_the_corpus_and_a_changed_one_replaces_it(tmp_path):
    corpus = tmp_path / "corpus"
    added = add_article_file(corpus, "ports.md", ARTICLE, [], max_bytes=1 << 20)
    assert added.path == corpus / "ports.md" and not added.replaced
    assert added.article.title == "Ports and tariffs"
    changed = ARTICLE.replace(b"cut", b"raised")
    indexed = [ArticleInfo("ports", "Ports and tariffs", "", 1, "", "", added.article.content_hash)]
    again = add_article_file(corpus, "ports.md", changed, indexed, max_bytes=1 << 20)
    assert again.replaced_title == "Ports and tariffs" and (corpus / "ports.md").read_bytes() == changed
    assert [p.name for p in corpus.iterdir() if p.name != ADD_LOCK_NAME] == ["ports.md"]


def test_the_same_content_is_not_added_twice(tmp_path):
    corpus = tmp_path / "corpus"
    added = add_article_file(corpus, "ports.md", ARTICLE, [], max_bytes=1 << 20)
    indexed = [ArticleInfo(added.article.article_id, added.article.title, "", 1, "", "", added.article.content_hash)]
    with pytest.raises(IngestError, match="already indexed as “Ports and tariffs”"):
        add_article_file(corpus, "copy-of-ports.md", ARTICLE, indexed, max_bytes=1 << 20)
    with pytest.raises(IngestError, match="already indexed; nothing changed"):
        add_article_file(corpus, "ports.md", ARTICLE, indexed, max_bytes=1 << 20)
    assert [p.name for p in corpus.iterdir() if p.name != ADD_LOCK_NAME] == ["ports.md"]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"   \n\n ", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"PK\x03\x04" + b"\x00" * 100, "binary"),
        (b"---\ntitle: [unclosed\n---\nbody", "broken front matter"),
        (b"---\ntitle: x\nbody without closing", "no closing"),
        (b"---\ntitle: Only front matter\n---\n", "empty"),
        (b"\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f" * 50, "binary"),
    ],
)
def test_broken_uploads_are_refused_and_nothing_is_written(tmp_path, data, reason):
    corpus = tmp_path / "corpus"
    with pytest.raises(IngestError, match=reason):
        add_article_file(corpus, "upload.md", data, [], max_bytes=1 << 20)
    assert not corpus.exists() or list(corpus.iterdir()) == []


def test_oversized_uploads_are_refused(tmp_path):
    with pytest.raises(IngestError, match="the limit is 1 MB"):
        add_article_file(tmp_path, "big.md", b"word " * 300_000, [], max_bytes=1 << 20)


def test_yaml_bombs_in_front_matter_are_refused_quickly(tmp_path):
    bomb = (
        b"---\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ntitle: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n---\nbody\n"
    )
    with pytest.raises(IngestError, match="single value"):
        add_article_file(tmp_path, "bomb.md", bomb, [], max_bytes=1 << 20)


def test_removed_articles_go_to_the_trash_not_away(tmp_path):
    corpus = tmp_path / "corpus"
    add_article_file(corpus, "ports.md", ARTICLE, [], max_bytes=1 << 20)
    moved = remove_article_file(corpus, "ports", tmp_path / "removed")
    assert moved.read_bytes() == ARTICLE and moved.parent == tmp_path / "removed"
    assert corpus_files(corpus) == [] and scan_corpus(corpus).articles == []
    with pytest.raises(LookupError):
        remove_article_file(corpus, "ports", tmp_path / "removed")


def test_documents_are_converted_to_markdown_with_front_matter(tmp_path):
    import io

    import docx

    from tests.support.web_server import ARTICLE_HTML

    corpus = tmp_path / "corpus"
    added = add_article_file(corpus, "Pilots.HTML", ARTICLE_HTML.encode(), [], max_bytes=1 << 20)
    assert added.path == corpus / "pilots.md" and added.source == "pilots.html"
    article = scan_corpus(corpus).articles[0]
    assert article.title == "Harbour pilots strike over pensions" and article.author == "Ana Ruiz"
    assert "SCRIPT-MARKER" not in article.text and "HIDDEN-MARKER" not in article.text

    document = docx.Document()
    document.core_properties.title = "Fisheries quota reform"
    document.add_paragraph(
        "The fisheries council cut cod quotas by a fifth to let stocks in the northern sea recover. "
        "Trawler owners will receive compensation for two years while the quota is reviewed each spring."
    )
    document.add_paragraph(
        "Scientists from the marine institute will count spawning fish every autumn, and the council "
        "promised to restore the quota once the stock passes the safe biological limit again."
    )
    buffer = io.BytesIO()
    document.save(buffer)
    added = add_article_file(corpus, "quota.docx", buffer.getvalue(), [], max_bytes=1 << 20)
    assert added.path.name == "quota.md" and added.article.title == "Fisheries quota reform"


@pytest.mark.parametrize("title", ['Colon: "quoted" title', "---\nurl: javascript:alert(1)\n---", "Line\nbreaks", "# hash"])
def test_front_matter_cannot_be_broken_by_a_title(tmp_path, title):
    from index.ingestion.adding import article_markdown
    from index.ingestion.extraction import ExtractedArticle

    text = article_markdown(
        ExtractedArticle(title=title, text="Body about river ferries and their timetables."),
        url="https://example.org/a",
        fetched="2026-11-27",
    )
    (tmp_path / "a.md").write_text(text)
    [article] = scan_corpus(tmp_path).articles
    assert article.title == " ".join(title.split()) and article.url == "https://example.org/a"
    assert article.text == "Body about river ferries and their timetables."


def test_near_copies_are_found_by_shared_phrases(tmp_path):
    from index.ingestion.adding import resemblance, shingles

    original = (
        "The harbour pilots walked out on Monday after the port authority announced cuts to pensions. "
        "Dozens of container ships waited at anchor outside the breakwater while the union met. "
        "The ministry of transport offered to mediate talks between both sides later in the week, "
        "and shipping companies warned that every day of delay would cost them dearly."
    )
    reprint = "Breaking: " + original + " Updated at noon."
    other = "The school board approved free lunches for every pupil in the district from September onwards."
    assert resemblance(shingles(original), shingles(reprint)) > 0.8
    assert resemblance(shingles(original), shingles(other)) < 0.1
    indexed = [ArticleInfo("pilots", "Pilots strike", "", 1, "", "", "other-hash")]
    with pytest.raises(IngestError, match="nearly the same as “Pilots strike”"):
        add_article_file(
            tmp_path, "reprint.txt", reprint.encode(), indexed, max_bytes=1 << 20, similar=lambda text: [(indexed[0], original)]
        )
    assert not (tmp_path / "reprint.txt").exists()


def test_text_in_an_older_charset_is_converted_to_utf8(tmp_path):
    data = "Caf\u00e9 cr\u00e8me prices rose in Li\u00e8ge after the tax on dairy.".encode("latin-1")
    added = add_article_file(tmp_path, "cafe.txt", data, [], max_bytes=1 << 20)
    assert "Café crème" in added.path.read_text(encoding="utf-8")


def test_an_absurdly_long_article_is_refused(tmp_path):
    from index.ingestion.adding import MAX_ARTICLE_WORDS

    with pytest.raises(IngestError, match="words; the limit is"):
        add_article_file(tmp_path, "dump.txt", b"word " * (MAX_ARTICLE_WORDS + 1), [], max_bytes=10 << 20)
    assert list(tmp_path.iterdir()) == []


def test_a_new_name_never_takes_the_id_of_an_article_with_another_suffix(tmp_path):
    from index.ingestion.adding import free_name

    (tmp_path / "budget-2025.txt").write_text("The budget.")
    (tmp_path / "notes.markdown").write_text("Notes.")
    assert free_name(tmp_path, "budget-2025") == "budget-2025-2.md"
    assert free_name(tmp_path, "notes") == "notes-2.md"
    assert free_name(tmp_path, "fresh") == "fresh.md"
    assert free_name(tmp_path / "missing", "x") == "x.md"


# ---- files saved but not indexed; two adds at once ----------------------------------------------


def test_a_file_saved_but_not_indexed_is_not_added_again(tmp_path):
    """An add whose indexing failed (or was killed) left its file: the index does not know it, the corpus does."""
    corpus = tmp_path / "corpus"
    add_article_file(corpus, "ports.md", ARTICLE, [], max_bytes=1 << 20)  # saved; indexing never happened
    with pytest.raises(IngestError, match=r"already saved as ports\.md but not indexed yet; run `policybot index`"):
        add_article_file(corpus, "copy-of-ports.md", ARTICLE, [], max_bytes=1 << 20)
    assert [p.name for p in corpus_files(corpus)] == ["ports.md"]


def test_a_near_copy_of_a_file_saved_but_not_indexed_is_refused(tmp_path):
    body = (
        "The harbour pilots walked out on Monday after the port authority announced cuts to pensions. "
        "Dozens of container ships waited at anchor outside the breakwater while the union met."
    )
    add_article_file(tmp_path, "pilots.md", f"---\ntitle: Pilots strike\n---\n\n{body}\n".encode(), [], max_bytes=1 << 20)
    reprint = f"---\ntitle: Pilots walk out\n---\n\n{body} Updated at noon.\n".encode()
    with pytest.raises(IngestError, match=r"nearly the same as “Pilots strike”.*saved as pilots\.md but not indexed yet"):
        add_article_file(tmp_path, "reprint.md", reprint, [], max_bytes=1 << 20)
    assert [p.name for p in corpus_files(tmp_path)] == ["pilots.md"]


_RACING_ADD = """
import fcntl, sys, time
from pathlib import Path

import index.ingestion.adding as adding

corpus, name, me, other, signals = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5])
mark = lambda what: (signals / f"{what}-{me}").touch()


def wait_for_other(*states):
    while not any((signals / f"{state}-{other}").exists() for state in states):
        time.sleep(0.005)


real_flock = fcntl.flock


def flock(fd, operation):
    # Say so when this add has to wait for the other's lock.
    if operation == fcntl.LOCK_EX:
        try:
            return real_flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            mark("blocked")
    return real_flock(fd, operation)


real_check = adding.check_not_duplicate


def check_then_wait(*args, **kwargs):
    real_check(*args, **kwargs)
    mark("checked")
    # The widest race: write only once the other add has checked too (or waits for the lock, or is done).
    wait_for_other("checked", "blocked", "done")


fcntl.flock = flock
adding.check_not_duplicate = check_then_wait
data = Path(sys.argv[6]).read_bytes()
mark("ready")
wait_for_other("ready", "done")
try:
    added = adding.add_article_file(corpus, name, data, [], max_bytes=1 << 20)
    print("added", added.path.name)
except adding.IngestError as exc:
    print("refused", exc)
finally:
    mark("done")
"""


def test_two_simultaneous_adds_of_the_same_text_add_it_once(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    corpus, signals = tmp_path / "corpus", tmp_path / "signals"
    signals.mkdir()
    script = tmp_path / "racing_add.py"
    script.write_text(_RACING_ADD)
    upload = tmp_path / "upload.md"
    upload.write_bytes(ARTICLE)
    adds = [
        subprocess.Popen(
            [sys.executable, str(script), str(corpus), name, me, other, str(signals), str(upload)],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, me, other in (("ports.md", "a", "b"), ("copy-of-ports.md", "b", "a"))
    ]
    results = []
    for process in adds:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        results.append(out.decode().strip())
    assert sorted(r.split()[0] for r in results) == ["added", "refused"], results
    [refusal] = [r for r in results if r.startswith("refused")]
    assert "already saved as" in refusal and "but not indexed yet" in refusal
    assert len(corpus_files(corpus)) == 1 and len(scan_corpus(corpus).articles) == 1
