"""A quick start that talks: the model loaded only when something is embedded, help for every command and
option, a mistyped command corrected, bad bytes on standard input answered with one error, state kept
inside the index folder, and no empty folders left by a failed index run."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import index.knowledge
from bot.cli import EXIT_ERROR, EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, build_parser, main
from bot.services import LOADING_MESSAGE, LazyEmbedder, load_embedder
from bot.settings import Settings
from index.indexing.embedding import PACKAGED_MODEL, EmbeddingModelError, model_facts
from index.indexing.indexer import update_index
from tests.conftest import ROOT, FakeEmbedder, write_article, write_small_corpus
from tests.support.cli import Run, clean_environment

PACKAGED = {"name": PACKAGED_MODEL, "dimension": 384, "max_tokens": 254}


class Loader:
    """Stands in for loading the model: counts loads and returns a cheap embedder that agrees with the packaged model's files."""

    def __init__(self, **facts):
        self.loads = 0
        self.facts = {**PACKAGED, **facts}

    def __call__(self) -> FakeEmbedder:
        self.loads += 1
        return FakeEmbedder(**self.facts)


@pytest.fixture
def lazy(tmp_path, monkeypatch):
    """The CLI with the real lazy wrapper around a counting stand-in loader (what `policybot` really builds)."""
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    loader = Loader()
    run = Run(write_small_corpus(tmp_path / "corpus"), tmp_path / "index", monkeypatch, LazyEmbedder(PACKAGED_MODEL, loader, on_load=None))
    run.monkeypatch.setattr("bot.cli.load_embedder", lambda settings, bulk=False: LazyEmbedder(PACKAGED_MODEL, loader, on_load=None))
    run.loader = loader
    return run


# ---- the model is loaded only when something must be embedded ----------------------------------------


def test_packaged_model_facts_are_read_without_loading_it():
    assert model_facts(PACKAGED_MODEL) == model_facts("default")
    facts = model_facts(PACKAGED_MODEL)
    assert (facts.name, facts.dimension, facts.max_tokens) == (PACKAGED_MODEL, 384, 254)


def test_a_model_folder_with_a_dense_layer_has_no_known_dimension(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": 384}')
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    modules = [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    facts = model_facts(str(tmp_path))
    assert (facts.name, facts.dimension, facts.max_tokens) == (str(tmp_path.resolve()), None, 126)
    # Asked for its dimension, the lazy embedder loads the model to know it.
    loader = Loader(name=str(tmp_path.resolve()), dimension=768, max_tokens=126)
    embedder = LazyEmbedder(str(tmp_path), loader, on_load=None)
    assert embedder.max_tokens == 126 and loader.loads == 0
    assert embedder.dimension == 768 and loader.loads == 1


def test_update_index_loads_the_model_only_to_embed(small_corpus, tmp_path):
    index_dir = tmp_path / "index"
    announced = []

    def build(loader: Loader) -> LazyEmbedder:
        return LazyEmbedder(PACKAGED_MODEL, loader, on_load=lambda: announced.append(loader.loads))

    first = Loader()
    report, store = update_index(small_corpus, index_dir, build(first))
    store.close()
    assert len(report.added) == 4 and first.loads == 1 and announced == [0]  # said so before loading

    unchanged = Loader()
    report, store = update_index(small_corpus, index_dir, build(unchanged))
    store.close()
    assert report.unchanged == 4 and unchanged.loads == 0

    (small_corpus / "carbon-tax.md").unlink()
    removed = Loader()
    report, store = update_index(small_corpus, index_dir, build(removed))
    store.close()
    assert report.removed == ["carbon-tax"] and removed.loads == 0

    write_article(small_corpus, "school-meals.md", "Free school meals", "Lunches are now free for all pupils.")
    changed = Loader()
    report, store = update_index(small_corpus, index_dir, build(changed))
    store.close()
    assert report.updated == ["school-meals"] and changed.loads == 1


def test_a_model_that_disagrees_with_its_files_is_refused():
    embedder = LazyEmbedder(PACKAGED_MODEL, Loader(dimension=768), on_load=None)
    with pytest.raises(EmbeddingModelError, match="768"):
        embedder.embed(["a question"])


def test_index_articles_remove_and_summary_of_an_unchanged_index_load_no_model(lazy):
    assert lazy("index", "--quiet") == (EXIT_OK, "", "")
    assert lazy.loader.loads == 1
    lazy.loader.loads = 0
    assert lazy("index")[0] == EXIT_OK
    assert lazy("articles")[0] == EXIT_OK
    code, out, err = lazy("remove", "carbon-tax")
    assert code == EXIT_OK, err
    assert "1 removed" in err and "0 chunks embedded" in err
    assert lazy.loader.loads == 0
    code, out, _ = lazy("ask", "--json", "water rationing for lawns")
    assert code == EXIT_OK and json.loads(out)["answer"]
    assert lazy.loader.loads == 1


def test_torch_threads_setting_reaches_the_model(monkeypatch):
    made = []

    class Recorder(FakeEmbedder):
        def __init__(self, setting, threads=None):
            made.append(threads)
            super().__init__(**PACKAGED)

    monkeypatch.setattr("index.indexing.embedding.SentenceTransformerEmbedder", Recorder)
    for environ, bulk in (({}, False), ({}, True), ({"TORCH_THREADS": "2"}, False), ({"TORCH_THREADS": "2"}, True)):
        embedder = load_embedder(Settings.from_mapping(environ), bulk=bulk)
        assert not embedder.loaded
        embedder.on_load = None
        embedder.embed(["x"])
    assert made == [1, None, 2, 2]


def child_env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT), LANG="C.UTF-8", LC_ALL="C.UTF-8", **extra)
    return env


REPORT_IMPORTS = """
import sys
from bot.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print('heavy:', sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def fake_built(tmp_path) -> tuple[Path, Path]:
    """The small corpus indexed with a stand-in for the packaged model (same name and size).

    A real process opens it without loading the model; asked a question, it loads the real one.
    """
    corpus = write_small_corpus(tmp_path / "corpus")
    update_index(corpus, tmp_path / "index", FakeEmbedder(**PACKAGED))[1].close()
    return corpus, tmp_path / "index"


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [["--help"], ["index"], ["articles"], ["feed", "list"], ["remove", "carbon-tax"], ["ask", "--help"]],
    ids=lambda argv: " ".join(argv),
)
def test_commands_that_embed_nothing_never_import_torch(fake_built, tmp_path, argv):
    corpus, index_dir = fake_built
    paths = ["--corpus", str(corpus), "--index-dir", str(index_dir)]
    result = subprocess.run(
        [sys.executable, "-c", REPORT_IMPORTS, *paths, *argv], capture_output=True, text=True, cwd=tmp_path, env=child_env(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "heavy: []", result.stderr
    assert LOADING_MESSAGE not in result.stderr


# ---- help, and a mistyped command ------------------------------------------------------------------


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += all_parsers(child)
    return found


def test_every_command_has_a_description_and_every_option_help():
    parsers = all_parsers(build_parser())
    assert len(parsers) > 15
    for parser in parsers:
        assert parser.description, parser.prog
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, f"{parser.prog} {action.option_strings or action.dest}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["aks", "what?"], "unknown command 'aks'; did you mean 'ask'?"),
        (["serach", "x"], "did you mean 'search'?"),
        (["feed", "lst"], "unknown command 'lst'; did you mean 'list'?"),
        (["frobnicate"], "unknown command 'frobnicate' (choose from start, run, sync, index,"),
    ],
)
def test_a_mistyped_command_suggests_the_right_one(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_add_says_it_takes_a_folder(capsys):
    with pytest.raises(SystemExit):
        main(["add", "--help"])
    assert "folder" in capsys.readouterr().out


# ---- the folders after any command -------------------------------------------------------------------


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An indexed corpus in folders no setting names; the working folder has none of its own."""
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    run = Run(write_small_corpus(tmp_path / "x" / "corpus"), tmp_path / "y" / "index", monkeypatch, FakeEmbedder())
    assert run("index", "--quiet")[0] == EXIT_OK
    return run


def test_eval_takes_the_folders_after_the_command(elsewhere, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"question": "carbon tax on fuel and heating oil per tonne", "answers": ["forty euros"]}) + "\n")
    paths = ["--corpus", str(elsewhere.corpus), "--index-dir", str(elsewhere.index_dir)]
    code, out, err = elsewhere("eval", str(questions), *paths, paths=False)
    assert code == EXIT_OK, err
    assert out.startswith("1 questions (1 answerable, 0 not)")
    assert re.search(r"recall@1\s+1\.000", out)  # found in the index named after the command
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("command", ["chat", "start"])
def test_chat_and_start_take_the_folders_after_the_command(elsewhere, tmp_path, command, capsys):
    paths = ["--corpus", str(elsewhere.corpus), "--index-dir", str(elsewhere.index_dir)]
    code, out, err = elsewhere(command, *paths, paths=False, stdin="carbon tax per tonne\n/quit\n")
    assert code == EXIT_OK, err
    assert "policybot — 4 article(s)" in out
    assert "A carbon tax with a dividend" in out
    assert not (tmp_path / "data").exists()


def test_feed_list_takes_the_folders_after_the_command(elsewhere, tmp_path):
    code, out, _ = elsewhere("feed", "list", "--index-dir", str(elsewhere.index_dir), paths=False)
    assert (code, out) == (EXIT_OK, "0 feed(s).\n")
    assert (elsewhere.index_dir / "feeds.sqlite").is_file()


# ---- add a folder ---------------------------------------------------------------------------------------


def test_add_a_folder_adds_each_supported_file_and_indexes_once(elsewhere, tmp_path, monkeypatch):
    folder = tmp_path / "inbox"
    write_article(folder, "canal-tolls.md", "Canal tolls", "The canal authority doubled tolls for barges carrying coal and grain.")
    (folder / "bridge-repairs.txt").write_text("Bridge repairs\n\nThe river bridge closes for repairs until the spring thaw.\n")
    (folder / "empty.md").write_text("")
    (folder / "numbers.csv").write_text("a,b\n1,2\n")
    (folder / "sub").mkdir()
    write_article(folder / "sub", "nested.md", "Nested", "Articles in subfolders are not added.")
    reindexes = []
    real = index.knowledge.update_index
    monkeypatch.setattr(index.knowledge, "update_index", lambda *a, **k: reindexes.append(1) or real(*a, **k))

    code, out, err = elsewhere("add", str(folder))
    assert code == EXIT_SKIPPED, err
    assert len(reindexes) == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith("Not added empty.md: ")
    assert any(line.startswith("Added “Canal tolls” (1 passage) as canal-tolls.md") for line in lines), out
    assert any(line.startswith("Added “Bridge repairs”") for line in lines), out
    assert lines[-1] == f"2 of 3 file(s) in {folder} added."
    assert "2 added" in err
    assert sorted(p.name for p in elsewhere.corpus.iterdir() if not p.name.startswith(".")) == sorted(
        ["bridge-repairs.txt", "canal-tolls.md", "carbon-tax.md", "housing-zoning.md", "school-meals.md", "water-rationing.md"]
    )


def test_add_a_folder_of_nothing_supported_is_an_error(elsewhere, tmp_path):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "numbers.csv").write_text("a,b\n")
    code, out, err = elsewhere("add", str(tmp_path / "inbox"))
    assert code == EXIT_ERROR and out == ""
    assert "no .md" in err and "files in the folder" in err


# ---- where state lives ----------------------------------------------------------------------------------


def test_state_lives_inside_the_index_folder_or_data_dir(tmp_path):
    settings = Settings.from_mapping({"INDEX_DIR": str(tmp_path / "data" / "index")})
    inside = tmp_path / "data" / "index"
    assert settings.data_dir == inside
    assert (settings.conversations_database, settings.bot_database, settings.feeds_database, settings.removed_dir) == (
        inside / "conversations.sqlite",
        inside / "bot.sqlite",
        inside / "feeds.sqlite",
        inside / "removed",
    )
    elsewhere = Settings.from_mapping({"INDEX_DIR": str(inside), "DATA_DIR": str(tmp_path / "state")})
    assert elsewhere.data_dir == tmp_path / "state" and elsewhere.conversations_database == tmp_path / "state" / "conversations.sqlite"


def test_two_index_folders_under_one_parent_keep_their_own_conversations(tmp_path, monkeypatch):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    corpus = write_small_corpus(tmp_path / "corpus")
    for name in ("a", "b"):
        run = Run(corpus, tmp_path / "data" / name, monkeypatch, FakeEmbedder())
        assert run("index", "--quiet")[0] == EXIT_OK
        assert run("ask", "-c", "same-id", f"carbon tax question from {name}")[0] == EXIT_OK
    assert not (tmp_path / "data" / "conversations.sqlite").exists()
    for name in ("a", "b"):
        db = sqlite3.connect(tmp_path / "data" / name / "conversations.sqlite")
        assert [row[0] for row in db.execute("SELECT question FROM turns")] == [f"carbon tax question from {name}"]
        db.close()


def test_indexing_never_deletes_the_state_kept_in_the_index_folder(small_corpus, tmp_path, monkeypatch):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    run = Run(small_corpus, tmp_path / "index", monkeypatch, FakeEmbedder())
    assert run("index", "--quiet")[0] == EXIT_OK
    state = ["conversations.sqlite", "conversations.sqlite-wal", "conversations.sqlite-shm", "bot.sqlite", "feeds.sqlite"]
    for name in state:
        (run.index_dir / name).write_bytes(b"keep me")
    assert run("remove", "carbon-tax")[0] == EXIT_OK  # moves the file into index/removed/, then reindexes
    [trashed] = (run.index_dir / "removed").iterdir()
    write_article(small_corpus, "school-meals.md", "Free school meals", "Lunches are now free for all pupils.")
    assert run("index", "--quiet")[0] == EXIT_OK
    assert run("index", "--rebuild", "--quiet")[0] == EXIT_OK
    manifest = json.loads((run.index_dir / "manifest.json").read_text())
    (run.index_dir / manifest["files"]["vectors"]["name"]).write_bytes(b"corrupt")
    code, _, err = run("index", "--quiet")
    assert code == EXIT_OK and "rebuilding" in err
    for name in state:
        assert (run.index_dir / name).read_bytes() == b"keep me", name
    assert trashed.is_file() and trashed.name.endswith("carbon-tax.md")


def test_a_failed_index_run_leaves_no_empty_folders(tmp_path, monkeypatch):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    run = Run(tmp_path / "missing-corpus", tmp_path / "new" / "deep" / "index", monkeypatch, FakeEmbedder())
    code, _, err = run("index")
    assert code == EXIT_ERROR and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    class Broken(FakeEmbedder):
        def embed(self, texts):
            raise EmbeddingModelError("the model broke")

    run = Run(write_small_corpus(tmp_path / "corpus"), tmp_path / "other" / "index", monkeypatch, Broken())
    code, _, err = run("index")
    assert code == EXIT_ERROR and "the model broke" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_a_failed_run_keeps_a_folder_that_already_existed(tmp_path, monkeypatch):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "index").mkdir()
    run = Run(tmp_path / "missing-corpus", tmp_path / "index", monkeypatch, FakeEmbedder())
    assert run("index")[0] == EXIT_ERROR
    assert (tmp_path / "index").is_dir()


# ---- bad bytes on standard input, as real processes ------------------------------------------------------

BAD = b"\xff\xfe bad\n"


def run_process(argv: list[str], stdin: bytes, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv], input=stdin, capture_output=True, cwd=cwd, env=child_env(**env), timeout=240
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, io_env",
    # Python reads a UTF-8 locale's standard input strictly (a bad byte raised and lost the lines after
    # it), the C locale's with surrogateescape (the bad bytes reached the model and the JSON): both.
    [("ask", {"PYTHONIOENCODING": "utf-8:strict"}), ("search", {})],
)
def test_a_line_that_is_not_utf8_gets_one_error_record_and_the_rest_are_answered(fake_built, tmp_path, command, io_env):
    corpus, index_dir = fake_built
    stdin = b"How often can I water my lawn?\n" + BAD + "Who pays for school lunches? caf\u00e9\n".encode()
    result = run_process(["--corpus", str(corpus), "--index-dir", str(index_dir), command, "--json", "-"], stdin, tmp_path, **io_env)
    assert result.returncode == EXIT_ERROR, result.stderr
    assert b"Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert [r.get("error") for r in records] == [None, "the question is not valid UTF-8 text", None]
    assert records[1]["question"] == "\ufffd\ufffd bad"
    assert records[2]["question"] == "Who pays for school lunches? caf\u00e9"
    assert LOADING_MESSAGE in result.stderr.decode()


@pytest.mark.slow
def test_chat_says_a_line_is_not_utf8_and_goes_on(fake_built, tmp_path):
    corpus, index_dir = fake_built
    stdin = b"/articles\n" + BAD + b"/passages carbon tax\n/quit\n"
    result = run_process(["--corpus", str(corpus), "--index-dir", str(index_dir), "chat"], stdin, tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    out = result.stdout.decode("utf-8")
    assert "That line is not valid UTF-8 text; type it again." in out
    assert out.index("not valid UTF-8") < out.index("[1] ")  # the question after it was answered
    # The first thing said, before the seconds-long load, on standard error.
    assert result.stderr.decode().splitlines()[0] == LOADING_MESSAGE
