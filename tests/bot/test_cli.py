"""The `policybot` command: index, articles and search, with hostile input and broken settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import EXIT_ERROR, EXIT_OK, EXIT_SKIPPED
from tests.conftest import SMALL_CORPUS, FakeEmbedder, write_article
from tests.support.cli import Run, clean_environment

ROOT = Path(__file__).resolve().parents[2]
ARTICLE_IDS = sorted(Path(name).stem for name in SMALL_CORPUS)
HIT_KEYS = {"rank", "score", "article_id", "title", "url", "paragraph", "text", "start", "end"}
SUMMARY = re.compile(
    r"^Indexed (?P<corpus>\S+) into (?P<index>\S+): (?P<added>\d+) added, (?P<updated>\d+) updated, "
    r"(?P<removed>\d+) removed, (?P<unchanged>\d+) unchanged; (?P<chunks>\d+) chunks(?: and (?P<sentences>\d+) sentences)? "
    r"embedded in \d+\.\d s"
)


@pytest.fixture
def run(small_corpus, tmp_path, monkeypatch, fake_embedder):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return Run(small_corpus, tmp_path / "index", monkeypatch, fake_embedder)


@pytest.fixture
def indexed(run):
    code, out, err = run("index", "--quiet")
    assert (code, out, err) == (EXIT_OK, "", "")
    return run


# ---- index -----------------------------------------------------------------------------------


def test_index_summary_line(run):
    code, out, err = run("index")
    assert code == EXIT_OK, err
    [line] = out.strip().splitlines()
    match = SUMMARY.match(line)
    assert match, line
    assert (match["added"], match["updated"], match["removed"], match["unchanged"]) == ("4", "0", "0", "0")
    assert int(match["chunks"]) + int(match["sentences"]) == run.embedder.embedded_texts > 0
    assert match["corpus"] == str(run.corpus) and match["index"] == str(run.index_dir)
    assert "skipped" not in line

    code, out, _ = run("index")
    match = SUMMARY.match(out.strip())
    assert code == EXIT_OK and match
    assert (match["added"], match["unchanged"], match["chunks"]) == ("0", "4", "0")
    assert "(full build)" not in out

    (run.corpus / "carbon-tax.md").unlink()
    write_article(run.corpus, "school-meals.md", "Free school meals", "Lunches are now free for all pupils.")
    code, out, _ = run("index")
    match = SUMMARY.match(out.strip())
    assert (match["added"], match["updated"], match["removed"], match["unchanged"]) == ("0", "1", "1", "2")


def test_index_exits_3_and_names_skipped_files(run):
    (run.corpus / "broken.md").write_bytes("caf\xe9".encode("latin-1"))
    (run.corpus / "empty.txt").write_bytes(b"")
    code, out, err = run("index")
    assert code == EXIT_SKIPPED == 3
    assert "2 file(s) skipped" in out
    assert SUMMARY.match(out.strip())["added"] == "4"
    lines = err.strip().splitlines()
    assert any(line.startswith("skipped ") and "broken.md" in line and "not UTF-8" in line for line in lines), err
    assert any("empty.txt" in line and "empty" in line for line in lines), err


def test_index_quiet_prints_nothing_on_success(run):
    assert run("index", "--quiet") == (EXIT_OK, "", "")
    assert run("index", "-q") == (EXIT_OK, "", "")


def test_index_quiet_still_reports_problems(run):
    (run.corpus / "broken.md").write_bytes(b"---\ntitle: [\n---\nx\n")
    code, out, err = run("index", "--quiet")
    assert code == EXIT_SKIPPED and out == ""
    assert "broken.md" in err and "broken front matter" in err


def test_index_rebuild(indexed):
    embedded = indexed.embedder.embedded_texts
    code, out, _ = indexed("index", "--rebuild")
    match = SUMMARY.match(out.strip())
    assert code == EXIT_OK and match["added"] == "4" and "(full build)" in out
    assert int(match["chunks"]) + int(match["sentences"]) == embedded == indexed.embedder.embedded_texts - embedded


def test_nonexistent_corpus_folder(run, tmp_path):
    code, out, err = run("--corpus", str(tmp_path / "nope"), "index", paths=False)
    assert code == EXIT_ERROR and out == ""
    assert err.startswith("policybot: error:") and "nope" in err and "does not exist" in err
    assert "Traceback" not in err


def test_paths_after_the_subcommand(run, tmp_path):
    code, out, _ = run("index", "--corpus", str(run.corpus), "--index-dir", str(tmp_path / "other"), paths=False)
    assert code == EXIT_OK and (tmp_path / "other" / "manifest.json").is_file()


def test_model_mismatch_says_rebuild(indexed):
    indexed.embedder = FakeEmbedder(name="some-other-model")
    for argv in (["index"], ["search", "carbon tax"]):
        code, out, err = indexed(*argv)
        assert code == EXIT_ERROR, argv
        assert "policybot index --rebuild" in err and "some-other-model" in err
    code, out, _ = indexed("index", "--rebuild")
    assert code == EXIT_OK and SUMMARY.match(out.strip())["added"] == "4"


# ---- articles --------------------------------------------------------------------------------


def test_articles_table(indexed):
    code, out, err = indexed("articles")
    assert code == EXIT_OK, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["id", "chunks", "added", "title"]
    assert lines[-1].startswith("4 article(s), ")
    rows = lines[1:-1]
    assert sorted(r.split()[0] for r in rows) == ARTICLE_IDS
    for name, (title, _) in SMALL_CORPUS.items():
        row = next(r for r in rows if r.split()[0] == Path(name).stem)
        assert row.endswith(title)
        assert int(row.split()[1]) >= 1
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row)


def test_articles_json(indexed):
    code, out, _ = indexed("articles", "--json")
    assert code == EXIT_OK
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert sorted(r["id"] for r in records) == ARTICLE_IDS
    for record in records:
        assert set(record) == {"id", "title", "url", "chunks", "added", "updated"}
        assert isinstance(record["chunks"], int) and record["chunks"] >= 1
        assert record["url"] == f"https://example.org/{record['id']}"
        assert record["title"] == SMALL_CORPUS[record["id"] + ".md"][0]


def test_articles_does_not_load_the_model(indexed):
    loads = indexed.loads
    assert indexed("articles")[0] == EXIT_OK
    assert indexed.loads == loads


@pytest.mark.parametrize("argv", [["articles"], ["search", "carbon tax"], ["search", "--json", "-"]])
def test_no_index_yet_is_a_clear_error(run, argv):
    code, out, err = run(*argv, stdin="a question\n")
    assert code == EXIT_ERROR and out == ""
    assert "no index in" in err and "run `policybot index` first" in err
    assert "Traceback" not in err


# ---- search ----------------------------------------------------------------------------------


def test_search_text_output(indexed):
    code, out, err = indexed("search", "carbon tax dividend for households")
    assert code == EXIT_OK, err
    assert out.startswith("[1] ")
    first = out.splitlines()[0]
    assert "A carbon tax with a dividend" in first and "paragraph" in first and "<https://example.org/carbon-tax>" in first
    assert len(re.findall(r"^\[\d+\] ", out, re.MULTILINE)) == 5


def test_search_json_schema(indexed):
    code, out, _ = indexed("search", "--json", "-k", "3", "  carbon   tax dividend ")
    assert code == EXIT_OK
    record = json.loads(out)
    assert set(record) == {"question", "hits"}
    assert record["question"] == "carbon tax dividend"
    assert [h["rank"] for h in record["hits"]] == [1, 2, 3]
    for hit in record["hits"]:
        assert set(hit) == HIT_KEYS
        assert isinstance(hit["score"], float) and isinstance(hit["paragraph"], int)
        assert isinstance(hit["start"], int) and isinstance(hit["end"], int) and hit["start"] < hit["end"]
    top = record["hits"][0]
    assert top["article_id"] == "carbon-tax" and top["url"] == "https://example.org/carbon-tax"
    # The offsets point into the stored article text.
    from index.indexing.corpus import read_article

    article = read_article(indexed.corpus / "carbon-tax.md", indexed.corpus)
    assert article.text[top["start"] : top["end"]] == top["text"]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_modes(indexed, mode):
    code, out, _ = indexed("search", "--json", "--mode", mode, "zoning apartment blocks near train stations")
    assert code == EXIT_OK
    assert json.loads(out)["hits"][0]["article_id"] == "housing-zoning"


def test_search_many_questions_from_stdin(indexed):
    stdin = "carbon tax dividend\n\n   \nschool lunches for pupils\n" + "x" * 10_000 + "\nzoning near train stations"
    code, out, err = indexed("search", "--json", "-k", "2", "-", stdin=stdin)
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 4  # blank lines skipped, one object per question line
    assert [r["question"] for r in records][:2] == ["carbon tax dividend", "school lunches for pupils"]
    assert records[0]["hits"][0]["article_id"] == "carbon-tax"
    assert records[1]["hits"][0]["article_id"] == "school-meals"
    assert records[3]["hits"][0]["article_id"] == "housing-zoning"
    bad = records[2]
    assert bad["hits"] == [] and "10,000" in bad["error"] and "2,000" in bad["error"]
    for record in (records[0], records[1], records[3]):
        assert "error" not in record and len(record["hits"]) == 2
        assert all(set(h) == HIT_KEYS for h in record["hits"])
    assert code == EXIT_ERROR  # a bad line is reported in the exit status too


def test_search_stdin_text_output(indexed):
    code, out, _ = indexed("search", "-", stdin="carbon tax dividend\n\nschool lunches\n")
    assert code == EXIT_OK
    assert out.count("> ") == 2 and "> carbon tax dividend\n[1] " in out and "> school lunches\n[1] " in out


def test_search_stdin_embeds_each_question_once(indexed):
    calls = indexed.embedder.calls
    code, _, _ = indexed("search", "--mode", "dense", "-", stdin="carbon tax\nschool lunches\n")
    assert code == EXIT_OK
    assert indexed.embedder.calls - calls == 2


@pytest.mark.parametrize(
    "question, message",
    [
        ("", "the question is empty"),
        ("   \t\n  ", "the question is empty"),
        ("why" * 3_333 + "?", "10,000 characters long; the limit is 2,000"),
    ],
    ids=["empty", "whitespace", "10000-chars"],
)
def test_hostile_questions_are_refused_clearly(indexed, question, message):
    loads = indexed.loads
    code, out, err = indexed("search", "--json", question)
    assert code == EXIT_ERROR and out == ""
    assert err.startswith("policybot: error: ") and message in err
    assert "Traceback" not in err
    assert indexed.loads == loads  # refused before the model is loaded


@pytest.mark.parametrize(
    "question",
    ["🤔🤔🤔", "@everyone <@123> <#456> **bold** `code` [link](http://x)", "'; DROP TABLE chunks; --", "日本の税金は？"],
    ids=["emoji-only", "markdown-mentions", "sql", "cjk"],
)
def test_odd_questions_are_answered_verbatim(indexed, question):
    code, out, err = indexed("search", "--json", question)
    assert code == EXIT_OK, err
    record = json.loads(out)
    assert record["question"] == question
    assert all(set(h) == HIT_KEYS for h in record["hits"])
    # The index is intact afterwards.
    assert indexed("articles")[1].strip().splitlines()[-1].startswith("4 article(s)")


@pytest.mark.parametrize("k", ["0", "-1", "101", "1000"])
def test_k_out_of_range(indexed, k):
    code, out, err = indexed("search", "-k", k, "carbon tax")
    assert code == EXIT_ERROR and out == ""
    assert "-k must be between 1 and 100" in err


@pytest.mark.parametrize("k, expected", [("1", 1), ("100", None)])
def test_k_in_range(indexed, k, expected):
    code, out, _ = indexed("search", "--json", "-k", k, "carbon tax")
    hits = json.loads(out)["hits"]
    assert code == EXIT_OK
    if expected is None:  # more than there are chunks: every chunk once
        from index.indexing.store import read_manifest

        expected = read_manifest(indexed.index_dir)["chunks"]
        assert len({(h["article_id"], h["start"]) for h in hits}) == expected
    assert len(hits) == expected
    assert [h["rank"] for h in hits] == list(range(1, expected + 1))


def test_k_not_a_number_is_a_usage_error(indexed, capsys):
    with pytest.raises(SystemExit) as exited:
        indexed("search", "-k", "lots", "carbon tax")
    assert exited.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


# ---- settings through the command ------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("RETRIEVAL", "foo", "RETRIEVAL must be one of hybrid, dense, bm25, not 'foo'"),
        ("ANN_THRESHOLD", "abc", "ANN_THRESHOLD must be a whole number, not 'abc'"),
        ("CHUNK_TOKENS", "5", "CHUNK_TOKENS must be between"),
        ("ANN_INDEX", "hnsw", "ANN_INDEX must be one of"),
    ],
)
@pytest.mark.parametrize("command", [["index"], ["articles"], ["search", "carbon tax"]])
def test_invalid_setting_names_the_setting(run, monkeypatch, name, value, message, command):
    monkeypatch.setenv(name, value)
    code, out, err = run(*command)
    assert code == EXIT_ERROR and out == ""
    assert err.startswith("policybot: error: ") and len(err.strip().splitlines()) == 1
    assert message in err
    assert run.loads == 0  # refused before loading the model


def test_invalid_setting_in_dotenv(run, tmp_path):
    (tmp_path / ".env").write_text("RETRIEVAL=semantic\n")
    code, _, err = run("articles")
    assert code == EXIT_ERROR and "RETRIEVAL" in err and "semantic" in err


def test_dotenv_paths_are_used(run, tmp_path):
    (tmp_path / ".env").write_text(f"CORPUS_DIR={run.corpus}\nINDEX_DIR={tmp_path / 'from-dotenv'}\n")
    code, out, _ = run("index", paths=False)
    assert code == EXIT_OK and (tmp_path / "from-dotenv" / "manifest.json").is_file()
    assert f"Indexed {run.corpus} into {tmp_path / 'from-dotenv'}" in out


def test_retrieval_setting_is_the_default_mode(indexed, monkeypatch):
    monkeypatch.setenv("RETRIEVAL", "bm25")
    calls = indexed.embedder.calls
    code, out, _ = indexed("search", "--json", "carbon tax")
    assert code == EXIT_OK and json.loads(out)["hits"][0]["article_id"] == "carbon-tax"
    assert indexed.embedder.calls == calls  # bm25 embeds no question


# ---- the real model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_index(tmp_path_factory, embedder) -> tuple[Path, Path]:
    """The small corpus indexed once with the real model through `policybot index`."""
    from tests.conftest import write_small_corpus

    base = tmp_path_factory.mktemp("real")
    corpus = write_small_corpus(base / "corpus")
    with pytest.MonkeyPatch.context() as patch:
        clean_environment(patch)
        patch.chdir(base)
        code, out, err = Run(corpus, base / "index", patch, embedder)("index")
    assert code == EXIT_OK, err
    assert SUMMARY.match(out.strip())["added"] == "4"
    return corpus, base / "index"


@pytest.fixture
def real(real_index, tmp_path, monkeypatch, embedder):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return Run(*real_index, monkeypatch, embedder)


@pytest.mark.slow
def test_real_model_search(real):
    code, out, _ = real("search", "--json", "-k", "1", "How often can I water my lawn?")
    assert code == EXIT_OK
    assert json.loads(out)["hits"][0]["article_id"] == "water-rationing"
    code, out, _ = real("search", "What happens to the money raised by the carbon levy?")
    assert code == EXIT_OK and out.startswith("[1] ") and "A carbon tax with a dividend" in out.splitlines()[0]


def subprocess_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LLM_") and k not in ("RETRIEVAL", "CORPUS_DIR", "INDEX_DIR", "ANN_THRESHOLD")
    }
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT), **extra)
    return env


def policybot(tmp_path: Path, *argv: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(tmp_path, **env),
        timeout=240,
    )


@pytest.mark.slow
def test_subprocess_search_json_from_stdin(real, tmp_path):
    paths = ["--corpus", str(real.corpus), "--index-dir", str(real.index_dir)]
    result = policybot(
        tmp_path,
        *paths,
        "search",
        "--json",
        "-k",
        "2",
        "-",
        stdin="Who pays for school lunches?\n\n\nAre taller apartment buildings allowed near stations?\n",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["hits"][0]["article_id"] for r in records] == ["school-meals", "housing-zoning"]
    assert all(set(h) == HIT_KEYS for r in records for h in r["hits"])


@pytest.mark.slow
def test_subprocess_errors_and_listing_without_the_model(indexed, tmp_path):
    paths = ["--corpus", str(indexed.corpus), "--index-dir", str(indexed.index_dir)]
    listed = policybot(tmp_path, *paths, "articles", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(line)["id"] for line in listed.stdout.splitlines()) == ARTICLE_IDS

    empty = policybot(tmp_path, *paths, "search", "   ")
    assert empty.returncode == 1 and "the question is empty" in empty.stderr and "Traceback" not in empty.stderr

    bad = policybot(tmp_path, *paths, "articles", ANN_THRESHOLD="abc")
    assert bad.returncode == 1 and "ANN_THRESHOLD" in bad.stderr and "Traceback" not in bad.stderr

    missing = policybot(tmp_path, "--index-dir", str(tmp_path / "none"), "articles")
    assert missing.returncode == 1 and "run `policybot index` first" in missing.stderr


@pytest.mark.parametrize("argv", [["run"], ["sync"], ["sync", "--guild", "123"]])
def test_discord_commands_without_a_token_say_where_to_put_it(run, argv):
    code, out, err = run(*argv)
    assert code == EXIT_ERROR and out == ""
    assert "DISCORD_TOKEN is not set" in err and ".env" in err
    assert run.loads == 0


def test_every_store_a_command_opens_is_closed(indexed, monkeypatch):
    """`articles`, `search`, `ask`, `summary`, `index` and the chat's /reindex leave no SQLite connection open."""
    from index.indexing.store import IndexStore

    opened: list[IndexStore] = []
    real_init = IndexStore.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(IndexStore, "__init__", recording_init)
    for argv in (["articles"], ["search", "carbon tax"], ["ask", "how high is the carbon tax?"], ["summary", "carbon-tax"], ["index"]):
        code, _, err = indexed(*argv)
        assert code == EXIT_OK, (argv, err)
    write_article(indexed.corpus, "ports.md", "Ports and tariffs", "Tariffs on steel rose again this year at every port.")
    code, _, err = indexed("chat", stdin="/reindex\nhow high are tariffs on steel?\n/quit\n")
    assert code == EXIT_OK, err
    assert len(opened) >= 7
    assert all(store._db is None for store in opened), [store.index_dir for store in opened if store._db is not None]
