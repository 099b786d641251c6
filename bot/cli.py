"""The `policybot` command: index, list and search the corpus from a terminal.

Dependencies (settings, embedder, index) are built once here and passed down.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.services import (
    LazyEmbedder,
    build_knowledge,
    extractive_engine,
    load_embedder,
    load_model,
)
from bot.settings import Settings, SettingsError
from bot.terminal import (
    format_answer,
    format_hits,
    reindex_with_progress,
)
from index.answering.evaluate import EvalFileError
from index.indexing.embedding import EmbeddingModelError
from index.indexing.store import IndexProblem
from index.text import printable
from index.types import Answer, Hit

if TYPE_CHECKING:
    from index.answering.conversations import ConversationStore
    from index.indexing.embedding import Embedder
    from index.knowledge import KnowledgeBase

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
# `policybot index` finished, but some corpus files were skipped.
EXIT_SKIPPED = 3
MAX_QUESTION_CHARS = 2_000


class UserError(Exception):
    """A problem the user can fix; printed as one line, without a traceback."""


class CommandParser(argparse.ArgumentParser):
    """argparse that suggests the command meant when one is mistyped, and shows each command's help as its description."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Commands)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, argparse._SubParsersAction) and action.choices is not None and value not in action.choices:
            import difflib

            close = difflib.get_close_matches(value, list(action.choices), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f" (choose from {', '.join(action.choices)})"
            raise argparse.ArgumentError(None, f"unknown command '{value}'{hint}")
        super()._check_value(action, value)


class _Commands(argparse._SubParsersAction):
    """Subcommands whose one-line help is also the description `policybot COMMAND --help` shows."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))
        return super().add_parser(name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = CommandParser(prog="policybot", description="Cited answers from your policy articles.")
    parser.add_argument("--corpus", type=Path, help="article folder (setting CORPUS_DIR; default corpus/)")
    parser.add_argument("--index-dir", type=Path, help="index folder (setting INDEX_DIR; default data/index/)")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="what to do (default: start); `policybot COMMAND --help` for its options"
    )

    sub.add_parser(
        "start",
        help="the default: the Discord bot when DISCORD_TOKEN is set, else the terminal session (indexing the corpus first if needed)",
    )
    sub.add_parser("run", help="run the Discord bot (needs DISCORD_TOKEN)")
    sync = sub.add_parser("sync", help="register the slash commands with Discord (globally, or in one server)")
    sync.add_argument("--guild", type=int, metavar="ID", help="only this server (instant; global sync can take an hour to show)")

    index = sub.add_parser("index", help="build or update the index from the corpus")
    index.add_argument("--rebuild", action="store_true", help="discard the index and embed every article again")
    index.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary, only problems")

    articles = sub.add_parser("articles", help="list the indexed articles")
    articles.add_argument("--json", action="store_true", help="one JSON object per article")

    search = sub.add_parser("search", help="print the passages that best match a question")
    search.add_argument("question", help="the question, or - to read one question a line from standard input")
    search.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    search.add_argument("--json", action="store_true", help="print JSON: {question, hits: [...]}")
    search.add_argument("--mode", choices=("hybrid", "dense", "bm25"), help="retrieval mode (setting RETRIEVAL)")

    ask = sub.add_parser("ask", help="answer a question with numbered citations")
    ask.add_argument("question", help="the question, or - to read one question a line from standard input")
    ask.add_argument("--json", action="store_true", help="print one JSON object (one a line with -)")
    ask.add_argument("--conversation", "-c", metavar="ID", help="a conversation id: earlier turns give follow-ups context")

    summary = sub.add_parser("summary", help="summarise one article with citations")
    summary.add_argument("article", help="an article id, or the start of its title")
    summary.add_argument("--length", choices=("short", "medium", "long"), default="medium", help="how long a summary (default medium)")
    summary.add_argument("--json", action="store_true", help="print one JSON object")

    evaluation = sub.add_parser("eval", help="measure retrieval, answers, citations, abstention and latency")
    evaluation.add_argument("file", type=Path, help="questions: our JSONL format, or SQuAD JSON (indexed into a temporary index)")
    evaluation.add_argument("--limit", type=int, help="evaluate a reproducible random sample of this many questions")
    evaluation.add_argument(
        "--outside", type=Path, metavar="SQUAD_JSON", help="add questions about SQuAD articles not in the corpus, as unanswerable"
    )
    evaluation.add_argument("--outside-limit", type=int, default=500, help="how many such questions (default 500)")
    evaluation.add_argument("--keep-index", type=Path, metavar="DIR", help="with SQuAD: build (or reuse) the index here")
    evaluation.add_argument("--report", type=Path, help="write the figures, the threshold curve and every result as JSON")

    add = sub.add_parser(
        "add", help="add an article from a URL or a file (.md, .txt, .html, .pdf, .docx), or every such file in a folder, and index it"
    )
    add.add_argument("source", help="an http(s) URL, a file path, or a folder (its supported files, not its subfolders)")
    remove = sub.add_parser(
        "remove", help="take an article out of the index (its file moves to removed/ in the index folder, or in DATA_DIR)"
    )
    remove.add_argument("article", help="an article id, or the start of its title")

    feed = sub.add_parser("feed", help="RSS/Atom subscriptions whose new items are added as articles")
    feed_sub = feed.add_subparsers(dest="feed_command", required=True, metavar="ACTION", help="add, list, remove or check")
    feed_add = feed_sub.add_parser("add", help="subscribe, and add the newest few items now")
    feed_add.add_argument("url", help="the feed's address, or a page that links to its feed")
    feed_sub.add_parser("list", help="the subscribed feeds")
    feed_remove = feed_sub.add_parser("remove", help="unsubscribe (the articles stay)")
    feed_remove.add_argument("feed", help="its number, title or URL")
    feed_sub.add_parser("check", help="add every feed's new items now, then index them (for cron)")

    watch = sub.add_parser("watch", help="keep the index up to date: reindex whenever files in the corpus folder change")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between looks at the folder (default 2)")

    sub.add_parser("chat", help="interactive terminal session")
    # The folders may also be given after the command (`policybot eval FILE --corpus DIR`, `policybot feed list --corpus DIR`).
    for command in [*sub.choices.values(), *feed_sub.choices.values()]:
        command.add_argument("--corpus", type=Path, default=argparse.SUPPRESS, help="article folder (setting CORPUS_DIR)")
        command.add_argument("--index-dir", type=Path, default=argparse.SUPPRESS, help="index folder (setting INDEX_DIR)")
    return parser


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings from .env and the environment, with command-line paths on top."""
    settings = Settings.load()
    if getattr(args, "corpus", None):
        settings = settings.with_changes(corpus_dir=args.corpus)
    if getattr(args, "index_dir", None):
        settings = settings.with_changes(index_dir=args.index_dir)
    return settings


def require_index(settings: Settings) -> None:
    """A clear error when there is no index yet (checked before the model's seconds-long load)."""
    if not index_exists(settings):
        raise UserError(f"no index in {settings.index.index_dir} yet; run `policybot index` first")


def index_exists(settings: Settings) -> bool:
    """Whether an index has been written in the index folder."""
    from index.indexing.store import read_manifest

    return read_manifest(settings.index.index_dir) is not None


@contextmanager
def loaded(settings: Settings, embedder: Embedder, build_if_missing: bool = True, warm_search: bool = True) -> Iterator[KnowledgeBase]:
    """The knowledge base with its index loaded (built from the corpus first when missing and allowed); closed after.

    `warm_search=False` leaves the keyword index to the first search: for one-shot commands that may never search.
    """
    knowledge = build_knowledge(settings, embedder, warm_search)
    try:
        knowledge.load(build_if_missing=build_if_missing)
        yield knowledge
    finally:
        knowledge.close()


def run_index(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot index`: bring the index up to date with the corpus; only changed articles are embedded."""
    embedder = load_embedder(settings, bulk=True)
    if args.quiet and isinstance(embedder, LazyEmbedder):
        embedder.on_load = None  # --quiet: only problems, not what is loading
    knowledge = build_knowledge(settings, embedder, warm_search=False)  # it never searches
    try:
        report = reindex_with_progress(knowledge, args.rebuild, args.quiet, out, err)
    finally:
        knowledge.close()
    return EXIT_SKIPPED if report.skipped else EXIT_OK


def lenient_stdin() -> TextIO:
    """Standard input where a line that is not UTF-8 comes through (its bad bytes as lone surrogates) instead of
    raising and losing every line after it; clean_question refuses such a line with one clear error."""
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="surrogateescape")
    return sys.stdin


def clean_question(raw: str) -> str:
    """Collapse whitespace and refuse questions that are empty or absurdly long."""
    from index.text import clean_question as cleaned

    try:
        return cleaned(raw, MAX_QUESTION_CHARS)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def run_search(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot search`: one question, or many from standard input with --json."""
    if args.k < 1 or args.k > 100:
        raise UserError("-k must be between 1 and 100")
    # Refuse a bad question before the model's seconds-long load.
    question = clean_question(args.question) if args.question != "-" else "-"
    require_index(settings)
    if args.mode:
        settings = settings.with_changes(retrieval=args.mode)
    with loaded(settings, load_embedder(settings), build_if_missing=False) as knowledge:
        return search_questions(args, question, knowledge, out)


def search_questions(args: argparse.Namespace, question: str, knowledge: KnowledgeBase, out: TextIO) -> int:
    """Print the passages for one question, or for each line of standard input."""
    if args.question != "-":
        hits: list[Hit] = knowledge.search(question, args.k)
        if args.json:
            print(json.dumps({"question": question, "hits": [h.as_dict() for h in hits]}, ensure_ascii=False), file=out)
        else:
            print(format_hits(hits), file=out)
        return EXIT_OK
    status = EXIT_OK
    for line in lenient_stdin():
        if not line.strip():
            continue
        hits = []
        record: dict[str, Any]
        try:
            question = clean_question(line)
        except UserError as exc:
            status = EXIT_ERROR
            record = {"question": printable(line.rstrip("\n")), "hits": [], "error": str(exc)}
        else:
            hits = knowledge.search(question, args.k)
            record = {"question": question, "hits": [h.as_dict() for h in hits]}
        if args.json:
            print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
        else:
            print(f"> {record['question']}\n{record.get('error') or format_hits(hits)}\n", file=out, flush=True)
    return status


def run_articles(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`policybot articles`: what is indexed, without loading the model."""
    from index.indexing.store import IndexStore, read_manifest

    manifest = read_manifest(settings.index.index_dir)
    if manifest is None:
        raise UserError(f"no index in {settings.index.index_dir} yet; run `policybot index` first")
    store = IndexStore.open(settings.index.index_dir, manifest["model"], int(manifest["dimension"]))
    try:
        infos, chunk_count = store.articles(), store.chunk_count
    finally:
        store.close()
    if args.json:
        for info in infos:
            print(
                json.dumps(
                    {
                        "id": info.article_id,
                        "title": info.title,
                        "url": info.url,
                        "chunks": info.chunks,
                        "added": info.added_at,
                        "updated": info.updated_at,
                    },
                    ensure_ascii=False,
                ),
                file=out,
            )
        return EXIT_OK
    width = max([len("id"), *(len(i.article_id) for i in infos)])
    print(f"{'id'.ljust(width)}  {'chunks':>6}  {'added':20}  title", file=out)
    for info in infos:
        print(f"{info.article_id.ljust(width)}  {info.chunks:>6}  {info.added_at:20}  {info.title}", file=out)
    print(f"{len(infos)} article(s), {chunk_count} chunks.", file=out)
    return EXIT_OK


def run_ask(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`policybot ask`: one cited answer, or one JSON object a line for questions on standard input."""
    from index.answering.conversations import ConversationStore, check_conversation_id

    # Refuse a bad question or conversation id before the model's seconds-long load.
    if args.question != "-":
        clean_question(args.question)
    if args.conversation is not None:
        try:
            check_conversation_id(args.conversation)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    require_index(settings)
    with loaded(settings, load_embedder(settings), build_if_missing=False) as knowledge:
        conversations = (
            ConversationStore(settings.conversations_database, settings.host.conversation_days) if args.conversation is not None else None
        )
        try:
            return ask_questions(args, knowledge, conversations, out)
        finally:
            if conversations is not None:
                conversations.close()


def ask_questions(args: argparse.Namespace, knowledge: KnowledgeBase, conversations: ConversationStore | None, out: TextIO) -> int:
    """Print the answer to one question, or to each line of standard input."""

    def answer_one(raw: str) -> Answer:
        question = clean_question(raw)
        history = conversations.history(args.conversation) if conversations else ()
        answer = knowledge.ask(question, history)
        if conversations:
            conversations.add(args.conversation, question, answer.text)
        return answer

    if args.question != "-":
        answer = answer_one(args.question)
        print(json.dumps(answer.as_dict(), ensure_ascii=False) if args.json else format_answer(answer), file=out)
        return EXIT_OK
    status = EXIT_OK
    for line in lenient_stdin():
        if not line.strip():
            continue
        try:
            answer = answer_one(line)
        except UserError as exc:
            status = EXIT_ERROR
            record = {"question": printable(line.rstrip("\n")), "error": str(exc)}
            print(json.dumps(record, ensure_ascii=False) if args.json else f"> {record['question']}\n{exc}\n", file=out, flush=True)
            continue
        print(
            json.dumps(answer.as_dict(), ensure_ascii=False) if args.json else f"> {answer.question}\n{format_answer(answer)}\n",
            file=out,
            flush=True,
        )
    return status


def run_summary(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`policybot summary ARTICLE`."""
    require_index(settings)
    with loaded(settings, load_embedder(settings), build_if_missing=False, warm_search=False) as knowledge:
        try:
            summary = knowledge.summarize(args.article, args.length)
        except LookupError as exc:
            raise UserError(str(exc)) from None
    print(json.dumps(summary.as_dict(), ensure_ascii=False) if args.json else format_answer(summary), file=out)
    return EXIT_OK


def run_eval(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot eval FILE`: figures for a question set, and the abstention trade-off curve."""
    import tempfile

    from tqdm import tqdm

    from index.answering import evaluate

    if not args.file.is_file():
        raise UserError(f"no question file {args.file}")
    squad = args.file.suffix.lower() == ".json"
    if not squad:
        require_index(settings)
    embedder = load_embedder(settings)
    with tempfile.TemporaryDirectory(prefix="policybot-eval-") as scratch:
        if squad:
            articles, questions = evaluate.load_squad(args.file)
            corpus = Path(scratch) / "corpus"
            evaluate.write_corpus(articles, corpus)
            settings = settings.with_changes(corpus_dir=corpus, index_dir=args.keep_index or Path(scratch) / "index")
            print(f"Indexing {len(articles)} SQuAD articles into {settings.index.index_dir} …", file=err)
        else:
            questions = evaluate.load_jsonl(args.file)
        with loaded(settings, embedder, build_if_missing=squad) as knowledge, knowledge.reading() as snapshot:
            titles = {info.title for info in snapshot.articles}
            questions = evaluate.sample(questions, args.limit)
            if args.outside:
                questions += evaluate.out_of_corpus_questions(args.outside, titles, args.outside_limit)
            engine = extractive_engine(settings, embedder, snapshot.store)
            with tqdm(total=len(questions), unit="q", desc="answering", file=err, leave=False) as bar:

                def advance(done: int, total: int) -> None:
                    bar.update(done - bar.n)

                results = evaluate.evaluate(engine, questions, progress=advance)
            # Our own question sets are also asked as a member would, every check on (SQuAD is too big to ask twice).
            judged = [] if squad else evaluate.answer_all(engine, questions)
    figures = evaluate.metrics(results, engine.config.abstain_below)
    thresholds = [round(0.20 + 0.02 * i, 2) for i in range(21)]
    lines = [
        f"{len(results)} questions ({figures['answerable']} answerable, {figures['unanswerable']} not), "
        f"abstention threshold {engine.config.abstain_below:.2f}"
    ]
    for key in evaluate.PRINTED_FIGURES:
        lines.append(f"  {key:24} {figures[key]:.3f}")
    lines.append(f"  {'latency p50 / p95':24} {figures['latency_p50_ms']:.0f} / {figures['latency_p95_ms']:.0f} ms")
    decided = evaluate.judged_figures(judged) if judged else None
    if decided is not None:
        lines.append(
            f"  as the engine decides: {decided['answered_correctly_count']}/{decided['answerable']} answered correctly with a "
            f"quoting citation, {decided['abstained_count']}/{decided['unanswerable']} unanswerable abstained"
        )
        lines.extend(f"    {kind:20} {row['right']}/{row['questions']}" for kind, row in decided["by_kind"].items())
    print("\n".join(lines), file=out)
    if args.report:
        report = {
            "figures": figures,
            "decided": decided,
            "curve": evaluate.curve(results, thresholds),
            "results": evaluate.report_rows(results),
            "judged": [vars(j) for j in judged],
        }
        args.report.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"report written to {args.report}", file=err)
    return EXIT_OK


def run_chat(settings: Settings, out: TextIO, err: TextIO, read_line: Callable[[str], str] = input, build: bool = False) -> int:
    """The interactive terminal session; `build` first brings the index up to date with the corpus."""
    from bot.chat import chat_session

    if read_line is input:
        lenient_stdin()
    embedder = load_embedder(settings)
    # Every session answers questions: load the model first (it says so on standard error at
    # once), so the first answer does not wait for it.
    load_model(embedder)
    with loaded(settings, embedder, build_if_missing=False) as knowledge:
        if build or not index_exists(settings):
            reindex_with_progress(knowledge, rebuild=False, quiet=False, out=out, err=err)
        chat_session(knowledge, out, err, read_line, MAX_QUESTION_CHARS)
    return EXIT_OK


def main(argv: Iterable[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Entry point of the `policybot` console script."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        settings = settings_for(args)
        command = args.command or "start"
        if command == "index":
            return run_index(args, settings, out, err)
        if command == "articles":
            return run_articles(args, settings, out)
        if command == "search":
            return run_search(args, settings, out, err)
        if command == "ask":
            return run_ask(args, settings, out)
        if command == "summary":
            return run_summary(args, settings, out)
        if command == "eval":
            return run_eval(args, settings, out, err)
        if command == "add":
            from bot.changes import run_add

            return run_add(args, settings, out, err)
        if command == "remove":
            from bot.changes import run_remove

            return run_remove(args, settings, out, err)
        if command == "watch":
            from bot.changes import run_watch

            return run_watch(args, settings, out)
        if command == "feed":
            from bot.changes import run_feed

            return run_feed(args, settings, out, err)
        if command == "run" or (command == "start" and settings.discord.token):
            from bot.run import DiscordUnreachableError, require_token, run_bot

            # Refuse a missing token before the model's seconds-long load.
            require_token(settings)
            try:
                run_bot(settings, load_embedder(settings))
            except DiscordUnreachableError as exc:
                raise UserError(str(exc)) from None
            return EXIT_OK
        if command == "sync":
            import asyncio

            from bot.run import DiscordUnreachableError, sync_commands

            try:
                names = asyncio.run(sync_commands(settings, args.guild))
            except DiscordUnreachableError as exc:
                raise UserError(str(exc)) from None
            where = f"server {args.guild}" if args.guild else "all servers (global; may take up to an hour to appear)"
            print(f"Synced {len(names)} commands to {where}: {', '.join('/' + n for n in names)}", file=out)
            return EXIT_OK
        if command in ("chat", "start"):
            return run_chat(settings, out, err, build=command == "start")
        parser.error(f"unknown command {command}")
    except (UserError, SettingsError, IndexProblem, EmbeddingModelError, FileNotFoundError, EvalFileError) as exc:
        print(f"policybot: error: {exc}", file=err)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
