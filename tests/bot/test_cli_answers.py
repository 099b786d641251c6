"""`policybot ask`, `summary`, `eval` and `chat`: output, hostile input, conversations and errors."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest

import index.answering.extractive
from bot.chat import CHAT_HELP
from bot.cli import EXIT_ERROR, EXIT_OK, run_chat
from index.answering.conversations import ConversationStore
from index.answering.engine import ABSTAIN_PHRASE
from index.answering.evaluate import PRINTED_FIGURES
from index.indexing.corpus import read_article
from index.indexing.indexer import update_index
from tests.conftest import ROOT, FakeEmbedder, write_article, write_small_corpus
from tests.support.cli import Run, clean_environment

SEED = ROOT / "corpus" / "north-korea-foreign-affairs.md"
ANSWER_KEYS = {"question", "answer", "abstained", "citations", "related", "timings_ms"}
CITATION_KEYS = {"n", "article_id", "title", "url", "paragraph", "quote", "start", "end", "score"}
FIGURES = PRINTED_FIGURES
LONG_QUESTION = "why?" * 2_500  # 10,000 characters


@pytest.fixture
def histories(monkeypatch):
    """Every (question, history) the answer engine is asked, in order."""
    seen: list[tuple[str, list[str]]] = []
    original = index.answering.extractive.ExtractiveEngine.ask

    def ask(self, question, history=()):
        seen.append((question, [turn.question for turn in history]))
        return original(self, question, history)

    monkeypatch.setattr(index.answering.extractive.ExtractiveEngine, "ask", ask)
    return seen


@pytest.fixture
def run(tmp_path, monkeypatch):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return Run(write_small_corpus(tmp_path / "corpus"), tmp_path / "index", monkeypatch, FakeEmbedder())


@pytest.fixture
def indexed(run):
    assert run("index", "--quiet") == (EXIT_OK, "", "")
    run.loads = 0
    return run


@pytest.fixture(scope="module")
def seed_index(embedder, tmp_path_factory):
    """The seed article indexed with the real model, once per module: (corpus, index_dir)."""
    root = tmp_path_factory.mktemp("seed-cli")
    (root / "corpus").mkdir()
    shutil.copy(SEED, root / "corpus" / SEED.name)
    _, store = update_index(root / "corpus", root / "index", embedder)
    store.close()
    return root / "corpus", root / "index"


@pytest.fixture
def seed_run(seed_index, embedder, monkeypatch, tmp_path):
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return Run(*seed_index, monkeypatch, embedder)


def article_text(run: Run, article_id: str) -> str:
    return read_article(run.corpus / f"{article_id}.md", run.corpus).text


def assert_answer_record(record: dict, run: Run, timings: set[str] = frozenset({"embed", "search", "answer", "total"})) -> None:
    assert set(record) == ANSWER_KEYS
    assert set(record["timings_ms"]) == timings
    for c in record["citations"]:
        assert set(c) == CITATION_KEYS
        assert article_text(run, c["article_id"])[c["start"] : c["end"]] == c["quote"]
    if record["abstained"]:
        assert record["answer"].startswith(ABSTAIN_PHRASE) and record["citations"] == []
    else:
        assert record["citations"] and f"[{record['citations'][-1]['n']}]" in record["answer"]


# ---- ask -----------------------------------------------------------------------------------------


def test_ask_text_output(indexed):
    code, out, err = indexed("ask", "carbon tax on fuel and heating oil per tonne")
    assert code == EXIT_OK, err
    assert indexed.loads == 1
    lines = out.splitlines()
    answer = out.split("\n\nSources\n")[0]
    assert answer.endswith("[1]") and "forty euros" in answer
    sources = lines.index("Sources")
    assert lines[sources + 1] == "[1] A carbon tax with a dividend — paragraph 1  <https://example.org/carbon-tax>"
    assert lines[sources + 2].startswith("    “The finance ministry proposes a carbon tax")


def test_ask_json(indexed):
    code, out, _ = indexed("ask", "--json", "  carbon tax on   fuel and heating oil per tonne ")
    assert code == EXIT_OK
    record = json.loads(out)
    assert_answer_record(record, indexed)
    assert record["question"] == "carbon tax on fuel and heating oil per tonne"
    assert not record["abstained"] and record["citations"][0]["article_id"] == "carbon-tax"


def test_ask_off_topic(indexed):
    code, out, _ = indexed("ask", "--json", "What is the capital of France?")
    record = json.loads(out)
    assert code == EXIT_OK and record["abstained"] and record["answer"].startswith(ABSTAIN_PHRASE)
    code, out, _ = indexed("ask", "What is the capital of France?")
    assert code == EXIT_OK and out.startswith(ABSTAIN_PHRASE) and "Sources" not in out


@pytest.mark.parametrize(
    "question, message",
    [("", "the question is empty"), ("  \t\n ", "the question is empty"), (LONG_QUESTION, "10,000 characters long; the limit is 2,000")],
    ids=["empty", "whitespace", "10000-chars"],
)
def test_ask_refuses_bad_questions_clearly(indexed, question, message):
    for argv in (["ask", question], ["ask", "--json", question], ["ask", "-c", "t1", question]):
        code, out, err = indexed(*argv)
        assert code == EXIT_ERROR and out == ""
        assert err.startswith("policybot: error: ") and message in err and "Traceback" not in err
    assert indexed.loads == 0  # refused before the model is loaded
    assert not (indexed.index_dir / "conversations.sqlite").exists()


@pytest.mark.parametrize(
    "question, words",
    [
        ("🙂🙂", False),
        ("???", False),
        ("¿Cuántas ojivas nucleares tiene Corea del Norte?", True),
        ("@everyone <@123> <@&456> what does the **carbon tax** cost? `code` [x](http://y)", True),
        ("'; DROP TABLE chunks; --", True),
    ],
    ids=["emoji", "punctuation", "spanish", "mentions-markdown", "sql"],
)
def test_ask_odd_questions(indexed, question, words):
    code, out, err = indexed("ask", "--json", question)
    assert code == EXIT_OK, err
    record = json.loads(out)
    assert record["question"] == question
    assert_answer_record(record, indexed)
    if not words:
        assert record["abstained"] and "ask a question in words" in record["answer"]
    code, out, err = indexed("ask", question)
    assert code == EXIT_OK and "Traceback" not in err
    assert indexed("articles")[1].strip().splitlines()[-1].startswith("4 article(s)")  # the index is intact


def test_ask_many_questions_from_stdin(indexed):
    stdin = "\n".join(
        ["carbon tax on fuel and heating oil per tonne", "", "   ", LONG_QUESTION, "🙂", "free lunches for primary school pupils"]
    )
    code, out, err = indexed("ask", "--json", "-", stdin=stdin)
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 4  # blank lines skipped; one JSON object per question line
    good, bad, emoji, meals = records
    assert set(bad) == {"question", "error"} and "10,000" in bad["error"] and bad["question"] == LONG_QUESTION
    for record in (good, emoji, meals):
        assert_answer_record(record, indexed)
    assert good["citations"][0]["article_id"] == "carbon-tax" and meals["citations"][0]["article_id"] == "school-meals"
    assert emoji["abstained"]
    assert code == EXIT_ERROR  # a bad line shows in the exit status
    assert indexed.loads == 1


def test_ask_stdin_text_output(indexed):
    code, out, _ = indexed("ask", "-", stdin="carbon tax on fuel per tonne\n\n\nWhat is the capital of France?\n")
    assert code == EXIT_OK
    assert out.startswith("> carbon tax on fuel per tonne\n")
    assert f"> What is the capital of France?\n{ABSTAIN_PHRASE}" in out


def test_ask_without_an_index(run):
    code, out, err = run("ask", "carbon tax")
    assert code == EXIT_ERROR and out == "" and "no index in" in err and "Traceback" not in err


def test_ask_in_a_conversation(indexed, histories):
    assert indexed("ask", "-c", "thread-1", "carbon tax revenue returned to households")[0] == EXIT_OK
    assert indexed("ask", "--conversation", "thread-1", "and what about the dividend?")[0] == EXIT_OK
    assert indexed("ask", "-c", "thread-2", "and what about the dividend?")[0] == EXIT_OK
    assert indexed("ask", "and what about the dividend?")[0] == EXIT_OK
    assert histories == [
        ("carbon tax revenue returned to households", []),
        ("and what about the dividend?", ["carbon tax revenue returned to households"]),
        ("and what about the dividend?", []),  # another conversation
        ("and what about the dividend?", []),  # no conversation
    ]
    store = ConversationStore(indexed.index_dir / "conversations.sqlite")
    try:
        turns = store.history("thread-1")
        assert [t.question for t in turns] == ["carbon tax revenue returned to households", "and what about the dividend?"]
        assert all(t.answer for t in turns)
        assert len(store.history("thread-2")) == 1
    finally:
        store.close()


def test_ask_stdin_in_a_conversation(indexed, histories):
    code, out, _ = indexed("ask", "--json", "-c", "piped", "-", stdin="carbon tax per tonne\n\nand the dividend?\nwhy?\n")
    assert code == EXIT_OK and len(out.splitlines()) == 3
    assert [h for _, h in histories] == [[], ["carbon tax per tonne"], ["carbon tax per tonne", "and the dividend?"]]


@pytest.mark.parametrize("conversation", ["", "   ", "x" * 201], ids=["empty", "spaces", "too-long"])
def test_ask_refuses_a_bad_conversation_id(indexed, conversation):
    code, out, err = indexed("ask", "--conversation", conversation, "carbon tax")
    assert code == EXIT_ERROR and out == ""
    assert err.startswith("policybot: error: ") and "conversation id must be 1 to 200 characters" in err
    assert "Traceback" not in err and indexed.loads == 0


# ---- summary -------------------------------------------------------------------------------------


def test_summary_by_id(indexed):
    code, out, err = indexed("summary", "water-rationing")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert "[1]" in out.split("Sources")[0] and "Sources" in lines
    # Four sentences in two paragraphs: one citation a paragraph.
    assert "[2] Drought and water rationing — paragraph 2  <https://example.org/water-rationing>" in lines
    assert "[3]" not in out


def test_summary_by_title_prefix_as_json(indexed):
    code, out, _ = indexed("summary", "free SCHOOL", "--length", "short", "--json")
    assert code == EXIT_OK
    record = json.loads(out)
    assert_answer_record(record, indexed, timings={"answer", "total"})
    assert record["question"] == "summary of Free school meals for every pupil"
    # Short: three sentences of two paragraphs, one citation a paragraph.
    assert not record["abstained"] and len(record["citations"]) == 2
    assert {c["article_id"] for c in record["citations"]} == {"school-meals"}
    assert [c["n"] for c in record["citations"]] == [1, 2]
    starts = [c["start"] for c in record["citations"]]
    assert starts == sorted(starts)


@pytest.mark.parametrize("name", ["nonexistent", "carbon taxes"])
def test_summary_of_an_unknown_article(indexed, name):
    code, out, err = indexed("summary", name)
    assert code == EXIT_ERROR and out == ""
    assert err.startswith("policybot: error: ") and f"no indexed article matches {name!r}" in err
    assert "the articles command lists them" in err and "Traceback" not in err


def test_summary_with_an_ambiguous_prefix(indexed):
    write_article(indexed.corpus, "carbon-border.md", "A carbon border levy", "Importers pay for the carbon in steel.")
    assert indexed("index", "--quiet")[0] == EXIT_OK
    code, out, err = indexed("summary", "a carbon")
    assert code == EXIT_ERROR and out == ""
    assert "2 articles match 'a carbon'" in err
    assert "carbon-tax (A carbon tax with a dividend)" in err and "carbon-border (A carbon border levy)" in err
    # The full id still picks one.
    assert indexed("summary", "carbon-border", "--json")[0] == EXIT_OK


def test_summary_without_an_index(run):
    code, _, err = run("summary", "carbon-tax")
    assert code == EXIT_ERROR and "no index in" in err


# ---- eval ----------------------------------------------------------------------------------------


def figure_lines(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines()[1:]:
        name, _, value = line.strip().rpartition(" ")
        found[name.strip()] = value
    return found


def test_eval_jsonl_against_the_index(indexed, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {"id": "tax", "question": "carbon tax on fuel and heating oil per tonne", "answers": ["forty euros"]},
                {"id": "meals", "question": "free lunches for primary school pupils", "answers": ["September"]},
                {"id": "dividend", "question": "and the dividend?", "history": ["carbon tax revenue"], "answers": ["dividend"]},
                {"id": "france", "question": "What is the capital of France?", "answerable": False},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    report = tmp_path / "report.json"
    code, out, err = indexed("eval", str(questions), "--report", str(report))
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0] == "4 questions (3 answerable, 1 not), abstention threshold 0.35"
    figures = figure_lines(out)
    for key in FIGURES:
        assert re.fullmatch(r"\d\.\d{3}|nan", figures[key]), (key, figures.get(key))
    assert re.search(r"latency p50 / p95\s+\d+ / \d+ ms$", out, re.M)
    # Then as a member would meet them: every check on, each kind of question counted.
    assert re.search(r"as the engine decides: \d/3 answered correctly with a quoting citation, 1/1 unanswerable abstained", out)
    assert figures["abstention_recall"] == "1.000"
    data = json.loads(report.read_text(encoding="utf-8"))
    assert set(data) == {"figures", "decided", "curve", "results", "judged"}
    assert [j["id"] for j in data["judged"]] == ["tax", "meals", "dividend", "france"]
    assert len(data["curve"]) == 21 and data["curve"][0]["threshold"] == 0.2 and data["curve"][-1]["threshold"] == 0.6
    assert [r["id"] for r in data["results"]] == ["tax", "meals", "dividend", "france"]
    assert f"{data['figures']['recall@5']:.3f}" == figures["recall@5"]
    assert data["results"][0]["first_gold_rank"] == 1
    assert f"report written to {report}" in err


def test_eval_squad_into_a_temporary_index(indexed, tmp_path):
    from tests.index.answering.test_evaluate import SQUAD

    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD), encoding="utf-8")
    keep = tmp_path / "squad-index"
    code, out, err = indexed("eval", str(squad), "--keep-index", str(keep), "--report", str(tmp_path / "r.json"))
    assert code == EXIT_OK, err
    assert "Indexing 2 SQuAD articles" in err
    assert out.splitlines()[0].startswith("4 questions (3 answerable, 1 not)")
    assert set(FIGURES) <= set(figure_lines(out))
    assert (keep / "manifest.json").is_file()
    assert json.loads((tmp_path / "r.json").read_text())["figures"]["questions"] == 4
    # The corpus index was not touched.
    assert indexed("articles")[1].strip().splitlines()[-1].startswith("4 article(s)")
    code, out, _ = indexed("eval", str(squad), "--limit", "2")
    assert code == EXIT_OK and out.startswith("2 questions")


def test_eval_adds_outside_questions(indexed, tmp_path):
    from tests.index.answering.test_evaluate import SQUAD

    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD), encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "carbon tax per tonne", "answers": ["forty euros"]}\n', encoding="utf-8")
    code, out, _ = indexed("eval", str(questions), "--outside", str(squad), "--outside-limit", "3")
    assert code == EXIT_OK
    assert out.splitlines()[0].startswith("4 questions (1 answerable, 3 not)")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("q.jsonl", '{"question": "ok", "answers": ["x"]}\n{"question": "no answers", "answerable": true}\n', "q.jsonl:2: "),
        ("q.jsonl", "not json\n", "q.jsonl:1: not a question record"),
        ("q.json", '{"data": "nope"}', "not SQuAD JSON"),
    ],
    ids=["answerable-without-answers", "bad-json", "bad-squad"],
)
def test_eval_bad_question_files(indexed, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, out, err = indexed("eval", str(path))
    assert code == EXIT_ERROR and out == ""
    assert err.startswith("policybot: error: ") and message in err and "Traceback" not in err


def test_eval_missing_file(indexed, tmp_path):
    code, _, err = indexed("eval", str(tmp_path / "nope.jsonl"))
    assert code == EXIT_ERROR and "no question file" in err and indexed.loads == 0


# ---- chat ----------------------------------------------------------------------------------------


class Script:
    """A read_line that feeds lines, then EOF, and records what was printed after each one."""

    def __init__(self, out: io.StringIO, lines: list[str]):
        self.out = out
        self.lines = list(lines)
        self.read = 0
        self.marks: list[int] = []
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        self.marks.append(len(self.out.getvalue()))
        if self.read >= len(self.lines):
            raise EOFError
        self.read += 1
        return self.lines[self.read - 1]

    def replies(self) -> list[str]:
        """What was printed in reply to each line read."""
        text = self.out.getvalue()
        ends = self.marks[1:] + [len(text)]
        return [text[start:end] for start, end in zip(self.marks, ends)][: self.read]


def chat(run: Run, lines: list[str], build: bool = False) -> tuple[int, Script, str, str]:
    out, err = io.StringIO(), io.StringIO()
    script = Script(out, lines)
    code = run_chat(run.settings(), out, err, read_line=script, build=build)
    return code, script, out.getvalue(), err.getvalue()


def test_chat_commands_and_bad_input(indexed, histories):
    lines = [
        "",
        "🙂",
        LONG_QUESTION,
        "/summary nonexistent",
        "/summary carbon-tax bogus",
        "/summary",
        "/passages",
        "/PASSAGES carbon tax",
        "/articles",
        "carbon tax on fuel per tonne",
        "and the dividend?",
        "/new",
        "and the dividend?",
        "/reindex",
        "/frobnicate now",
        "/help",
    ]
    code, script, out, err = chat(indexed, lines)
    assert code == EXIT_OK and script.read == len(lines)  # ends at EOF
    assert out.startswith("policybot — 4 article(s), ")
    replies = dict(zip(lines, script.replies()))
    assert replies[""] == ""
    assert "ask a question in words" in replies["🙂"]
    assert "10,000 characters long" in replies[LONG_QUESTION]
    assert "no indexed article matches 'nonexistent'" in replies["/summary nonexistent"]
    assert "unknown length 'bogus': use short, medium or long" in replies["/summary carbon-tax bogus"]
    assert "name an article" in replies["/summary"]
    assert "the question is empty" in replies["/passages"]
    assert replies["/PASSAGES carbon tax"].startswith("[1] ") and "A carbon tax with a dividend" in replies["/PASSAGES carbon tax"]
    assert len(re.findall(r"^- ", replies["/articles"], re.MULTILINE)) == 4
    assert "- A carbon tax with a dividend (2 passages) [carbon-tax]" in replies["/articles"]
    assert "Started a new conversation." in replies["/new"]
    assert "0 added, 0 updated, 0 removed, 4 unchanged" in replies["/reindex"]
    assert "Unknown command /frobnicate. Type /help for the commands." in replies["/frobnicate now"]
    assert replies["/help"].strip() == CHAT_HELP
    # A question without words is not kept as a turn; the follow-up was read with the question
    # before it; after /new it was not.
    assert histories == [
        ("🙂", []),
        ("carbon tax on fuel per tonne", []),
        ("and the dividend?", ["carbon tax on fuel per tonne"]),
        ("and the dividend?", []),
    ]
    assert set(script.prompts) == {"\nquestion> "}


def test_chat_builds_the_index_first(run):
    code, script, out, err = chat(run, ["/quit", "never read"], build=True)
    assert code == EXIT_OK and script.read == 1
    assert "4 added" in out and "policybot — 4 article(s)" in out
    assert (run.index_dir / "manifest.json").is_file()


@pytest.mark.parametrize("word", ["/quit", "/exit", "quit", "EXIT"])
def test_chat_quits(indexed, word):
    code, script, _, _ = chat(indexed, ["carbon tax per tonne", word, "never read"])
    assert code == EXIT_OK and script.read == 2


# ---- with the real model ---------------------------------------------------------------------------


@pytest.mark.slow
def test_ask_conversation_with_the_real_model(seed_run):
    code, out, err = seed_run("ask", "--json", "-c", "cli-follow-up", "What did Russia buy from North Korea?")
    assert code == EXIT_OK, err
    first = json.loads(out)
    assert_answer_record(first, seed_run)
    assert "ammunition" in first["answer"]
    code, out, err = seed_run("ask", "--json", "-c", "cli-follow-up", "And what about China?")
    assert code == EXIT_OK, err
    second = json.loads(out)
    assert_answer_record(second, seed_run)
    assert not second["abstained"] and "China" in second["answer"] and "buffer" in second["answer"]


@pytest.mark.slow
def test_ask_the_seed_article(seed_run):
    code, out, _ = seed_run("ask", "How many nuclear warheads does North Korea have?")
    assert code == EXIT_OK and "50" in out.split("\n\nSources")[0]
    assert "Foreign Affairs on North Korea: the quiet priority of Trump's second term — paragraph 4" in out
    code, out, _ = seed_run("ask", "--json", "¿Cuántas ojivas nucleares tiene Corea del Norte?")
    assert code == EXIT_OK
    assert_answer_record(json.loads(out), seed_run)


@pytest.mark.slow
def test_chat_with_the_real_model(seed_run, histories):
    lines = [
        "What did Russia buy from North Korea?",
        "And what about China?",
        "/summary foreign short",
        "/articles",
        "/passages Russia ammunition",
        "/new",
        "/help",
        "/nonsense",
        "/quit",
        "never read",
    ]
    code, script, out, _ = chat(seed_run, lines)
    assert code == EXIT_OK and script.read == 9
    replies = dict(zip(lines, script.replies()))
    russia = replies["What did Russia buy from North Korea?"]
    assert "ammunition" in russia.split("\n\nSources")[0] and "Sources" in russia and "paragraph 3" in russia
    china = replies["And what about China?"]
    assert "buffer" in china.split("\n\nSources")[0]
    summary = replies["/summary foreign short"]
    assert "[3]" in summary and "[4]" not in summary and "Sources" in summary
    assert "- Foreign Affairs on North Korea: the quiet priority of Trump's second term" in replies["/articles"]
    assert replies["/passages Russia ammunition"].startswith("[1] ") and "ammunition" in replies["/passages Russia ammunition"]
    assert "Started a new conversation." in replies["/new"]
    assert CHAT_HELP in replies["/help"]
    assert "Unknown command /nonsense" in replies["/nonsense"]
    assert replies["/quit"] == ""
    assert histories == [
        ("What did Russia buy from North Korea?", []),
        ("And what about China?", ["What did Russia buy from North Korea?"]),
    ]
