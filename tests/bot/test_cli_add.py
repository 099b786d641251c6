"""`policybot add URL|FILE` and `policybot remove`: real files, a real local web server, hostile input."""

from __future__ import annotations

import pytest

from bot.cli import EXIT_ERROR, EXIT_OK, EXIT_SKIPPED
from index.indexing.corpus import scan_corpus
from index.indexing.indexer import open_store
from tests.support.cli import Run, clean_environment
from tests.support.web_server import ARTICLE_HTML, send, web_server

NOTE = "---\ntitle: Canal tolls\n---\n\nThe canal authority doubled tolls for barges carrying coal and grain in March.\n"


@pytest.fixture
def run(small_corpus, tmp_path, monkeypatch, fake_embedder):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    runner = Run(small_corpus, tmp_path / "index", monkeypatch, fake_embedder)
    assert runner("index", "--quiet")[0] == EXIT_OK
    return runner


def indexed_ids(run) -> list[str]:
    store = open_store(run.index_dir, run.embedder)
    try:
        return sorted(a.article_id for a in store.articles())
    finally:
        store.close()


def test_add_a_markdown_file_then_remove_it(run, tmp_path):
    note = tmp_path / "Canal Tolls.md"
    note.write_text(NOTE)
    code, out, err = run("add", str(note))
    assert code == EXIT_OK, err
    assert out.startswith("Added “Canal tolls” (1 passage) as canal-tolls.md.")
    assert "canal-tolls" in indexed_ids(run)
    code, out, err = run("add", str(note))
    assert code == EXIT_ERROR and "already indexed; nothing changed" in err

    code, out, err = run("remove", "canal")
    assert code == EXIT_OK, err
    assert out.startswith("Removed “Canal tolls”; its file was moved to ")
    assert "canal-tolls" not in indexed_ids(run)
    assert [p.name.endswith("canal-tolls.md") for p in (run.index_dir / "removed").iterdir()] == [True]


def test_add_a_web_page_from_a_local_server_with_loopback_allowed(run, monkeypatch):
    with web_server() as (base, routes):
        code, _, err = run("add", f"{base}/article")
        assert code == EXIT_ERROR and "loopback" in err and routes.hits == []
        monkeypatch.setenv("FETCH_ALLOW_LOOPBACK", "true")
        code, out, err = run("add", f"{base}/article")
    assert code == EXIT_OK, err
    assert out.startswith("Added “Harbour pilots strike over pensions”")
    [article] = [a for a in scan_corpus(run.corpus).articles if a.title.startswith("Harbour")]
    assert article.author == "Ana Ruiz" and article.url == f"{base}/article"
    for marker in ("SECRET-COMMENT-MARKER", "HIDDEN-MARKER", "SCRIPT-MARKER", "Subscribe"):
        assert marker not in article.text


@pytest.mark.parametrize(
    "source, message",
    [
        ("http://10.0.0.1/page", "private network address"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("ftp://example.org/file.txt", "only http and https"),
        ("no-such-file.md", "no file no-such-file.md"),
    ],
)
def test_hostile_or_missing_sources_are_refused_and_nothing_changes(run, source, message):
    before = sorted(p.name for p in run.corpus.iterdir())
    code, out, err = run("add", source)
    assert code == EXIT_ERROR and message in err and out == ""
    assert sorted(p.name for p in run.corpus.iterdir()) == before


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("picture.png", b"\x89PNG\r\n\x1a\n", "not an article file"),
        ("fake.pdf", b"<html><body>not a pdf</body></html>", "not a PDF"),
        ("empty.md", b"", "empty"),
        ("binary.txt", b"\x00\x01" * 500, "binary"),
    ],
)
def test_broken_files_are_refused_and_nothing_changes(run, tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    before = sorted(p.name for p in run.corpus.iterdir())
    code, out, err = run("add", str(path))
    assert code == EXIT_ERROR and message in err, err
    assert sorted(p.name for p in run.corpus.iterdir()) == before


def test_a_near_copy_under_another_name_is_refused(run, tmp_path, monkeypatch):
    monkeypatch.setenv("FETCH_ALLOW_LOOPBACK", "true")
    with web_server() as (base, routes):
        assert run("add", f"{base}/article")[0] == EXIT_OK
        retitled = ARTICLE_HTML.replace("Harbour pilots strike over pensions", "Pilots walk out in Valmora")
        routes.add("/reprint", lambda h: send(h, 200, retitled.encode()))
        code, _, err = run("add", f"{base}/reprint")
    assert code == EXIT_ERROR and "nearly the same as “Harbour pilots strike over pensions”" in err


def test_remove_an_unknown_article_is_a_clear_error(run):
    code, _, err = run("remove", "no such article")
    assert code == EXIT_ERROR and "no indexed article matches" in err


def test_watch_refuses_a_silly_interval(run):
    code, _, err = run("watch", "--interval", "0")
    assert code == EXIT_ERROR and "--interval must be between" in err


def test_feed_subscribe_list_check_and_remove(run, monkeypatch):
    monkeypatch.setenv("FETCH_ALLOW_LOOPBACK", "true")
    with web_server() as (base, routes):
        feed = (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Port news</title><item><title>Pilots</title>'
            f"<link>{base}/article</link></item></channel></rss>"
        )
        routes.add("/feed.xml", lambda h: send(h, 200, feed.encode(), "application/rss+xml"))
        code, out, err = run("feed", "add", f"{base}/feed.xml")
        assert code == EXIT_OK, err
        assert "Subscribed to “Port news” (feed 1)." in out and "Port news: 1 new article" in out
        code, out, _ = run("feed", "check")
        assert code == EXIT_OK and "Port news: 0 new articles" in out
        code, out, _ = run("feed", "list")
        assert "Port news" in out and "1 feed(s)." in out
        code, out, _ = run("feed", "remove", "port")
        assert code == EXIT_OK and "Unsubscribed from “Port news”" in out
        code, _, err = run("feed", "add", f"{base}/missing")
        assert code == EXIT_ERROR and "404" in err


def test_re_adding_a_url_whose_indexing_failed_makes_no_second_article(run, monkeypatch):
    from index.knowledge import KnowledgeBase

    monkeypatch.setenv("FETCH_ALLOW_LOOPBACK", "true")
    real_reindex = KnowledgeBase.reindex
    failing = {"now": True}

    def reindex(self, *args, **kwargs):
        if failing["now"]:
            raise OSError("No space left on device")
        return real_reindex(self, *args, **kwargs)

    monkeypatch.setattr(KnowledgeBase, "reindex", reindex)
    with web_server() as (base, routes):
        code, out, err = run("add", f"{base}/article")
        saved = run.corpus / "harbour-pilots-strike-over-pensions.md"
        assert code == EXIT_ERROR and out == ""
        assert f"Saved {saved} but it is not indexed yet: No space left on device; run `policybot index`." in err
        failing["now"] = False
        code, _, err = run("add", f"{base}/article")
        assert code == EXIT_ERROR and f"already saved as {saved.name} but not indexed yet; run `policybot index`" in err
        changed = ARTICLE_HTML.replace("Harbour pilots in Valmora", "Harbour pilots in Valmora and Ostra")
        assert changed != ARTICLE_HTML
        routes.add("/article", lambda h: send(h, 200, changed.encode()))
        code, out, err = run("add", f"{base}/article")
        assert code == EXIT_OK, err
        assert out.startswith("Updated “Harbour pilots strike over pensions”") and out.rstrip().endswith(f"as {saved.name}.")
    harbour = [a for a in scan_corpus(run.corpus).articles if a.title.startswith("Harbour")]
    assert [a.path for a in harbour] == [saved.name] and "Ostra" in harbour[0].text
    assert indexed_ids(run).count("harbour-pilots-strike-over-pensions") == 1


def test_a_txt_named_like_an_indexed_md_is_refused_and_index_stays_clean(run, tmp_path):
    upload = tmp_path / "Water Rationing.txt"
    upload.write_text("A different text about wells and water meters in the old town.\n")
    code, out, err = run("add", str(upload))
    assert code == EXIT_ERROR and out == ""
    assert "water-rationing.txt would have the same article id 'water-rationing' as water-rationing.md" in err
    assert not (run.corpus / "water-rationing.txt").exists()
    assert run("index", "--quiet")[0] == EXIT_OK

    # Put there by hand, the clash is named by every index run until one file is renamed.
    (run.corpus / "water-rationing.txt").write_text("A different text about wells and water meters in the old town.\n")
    code, _, err = run("index", "--quiet")
    assert code == EXIT_SKIPPED
    assert "water-rationing.txt: not indexed: same article id 'water-rationing' as" in err
    assert "water-rationing.md (ids ignore the suffix); rename or remove one of the two files" in err
