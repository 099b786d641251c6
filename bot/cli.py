"""The `policybot` command: index, list and search the corpus from a terminal.

Dependencies (settings, embedder, index) are built once here and passed down.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bot.settings import Settings, SettingsError
from index.indexing.embedding import EmbeddingModelError
from index.answering.evaluate import EvalFileError
from index.types import Hit, IndexReport
from index.indexing.store import IndexProblem

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
# `policybot index` finished, but some corpus files were skipped.
EXIT_SKIPPED = 3
MAX_QUESTION_CHARS = 2_000


class UserError(Exception):
    """A problem the user can fix; printed as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="policybot", description="Cited answers from your policy articles.")
    parser.add_argument("--corpus", type=Path, help="article folder (setting CORPUS_DIR; default corpus/)")
    parser.add_argument("--index-dir", type=Path, help="index folder (setting INDEX_DIR; default data/index/)")
    sub = parser.add_subparsers(dest="command")

    sub.add_parser("start", help="the default: the Discord bot when DISCORD_TOKEN is set, else the terminal session "
                                 "(indexing the corpus first if needed)")
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
    summary.add_argument("--length", choices=("short", "medium", "long"), default="medium")
    summary.add_argument("--json", action="store_true", help="print one JSON object")

    evaluation = sub.add_parser("eval", help="measure retrieval, answers, citations, abstention and latency")
    evaluation.add_argument("file", type=Path, help="questions: our JSONL format, or SQuAD JSON (indexed into a temporary index)")
    evaluation.add_argument("--limit", type=int, help="evaluate a reproducible random sample of this many questions")
    evaluation.add_argument("--outside", type=Path, metavar="SQUAD_JSON",
                            help="add questions about SQuAD articles not in the corpus, as unanswerable")
    evaluation.add_argument("--outside-limit", type=int, default=500, help="how many such questions (default 500)")
    evaluation.add_argument("--keep-index", type=Path, metavar="DIR", help="with SQuAD: build (or reuse) the index here")
    evaluation.add_argument("--report", type=Path, help="write the figures, the threshold curve and every result as JSON")

    add = sub.add_parser("add", help="add an article from a URL or a file (.md, .txt, .html, .pdf, .docx) and index it")
    add.add_argument("source", help="an http(s) URL, or a file path")
    remove = sub.add_parser("remove", help="take an article out of the index (its file moves to the removed/ folder)")
    remove.add_argument("article", help="an article id, or the start of its title")

    feed = sub.add_parser("feed", help="RSS/Atom subscriptions whose new items are added as articles")
    feed_sub = feed.add_subparsers(dest="feed_command", required=True)
    feed_add = feed_sub.add_parser("add", help="subscribe, and add the newest few items now")
    feed_add.add_argument("url")
    feed_sub.add_parser("list", help="the subscribed feeds")
    feed_remove = feed_sub.add_parser("remove", help="unsubscribe (the articles stay)")
    feed_remove.add_argument("feed", help="its number, title or URL")
    feed_sub.add_parser("check", help="add every feed's new items now, then index them (for cron)")

    watch = sub.add_parser("watch", help="keep the index up to date: reindex whenever files in the corpus folder change")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between looks at the folder (default 2)")

    sub.add_parser("chat", help="interactive terminal session")
    for name, command in (("index", index), ("articles", articles), ("search", search), ("ask", ask), ("summary", summary),
                          ("add", add), ("remove", remove), ("watch", watch), ("feed", feed)):
        command.add_argument("--corpus", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument("--index-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings from .env and the environment, with command-line paths on top."""
    settings = Settings.load()
    if getattr(args, "corpus", None):
        settings = replace(settings, corpus_dir=args.corpus)
    if getattr(args, "index_dir", None):
        settings = replace(settings, index_dir=args.index_dir)
    return settings


def load_embedder(settings: Settings, bulk: bool = False):
    """The embedding model, loaded once per process: one thread for answering, all cores for bulk indexing."""
    from index.indexing.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings.embedding_model, threads=None if bulk else 1)


def run_index(settings: Settings, embedder, rebuild: bool, quiet: bool, out: TextIO, err: TextIO):
    """Update the index from the corpus, with a progress bar unless quiet; return (report, store)."""
    from tqdm import tqdm

    from index.indexing.indexer import update_index

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=total, unit="chunk", desc="embedding", file=err, leave=False)
        bar.update(done - bar.n)

    try:
        report, store = update_index(
            settings.corpus_dir, settings.index_dir, embedder, settings.index_options(),
            rebuild=rebuild, progress=progress, warn=lambda message: print(f"policybot: {message}", file=err),
        )
    finally:
        if bar is not None:
            bar.close()
    for skipped in report.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=err)
    if not quiet:
        print(describe_report(report, settings), file=out)
    return report, store


def describe_report(report: IndexReport, settings: Settings) -> str:
    """One line on what an index run did."""
    parts = [
        f"{len(report.added)} added", f"{len(report.updated)} updated",
        f"{len(report.removed)} removed", f"{report.unchanged} unchanged",
    ]
    line = f"Indexed {settings.corpus_dir} into {settings.index_dir}: {', '.join(parts)}; " \
           f"{report.chunks_embedded} chunks embedded in {report.seconds:.1f} s"
    if report.rebuilt:
        line += " (full build)"
    if report.skipped:
        line += f"; {len(report.skipped)} file(s) skipped"
    return line + "."


def open_retriever(settings: Settings, embedder, mode: str | None = None):
    """A retriever over the existing index; a clear error when there is none yet."""
    from index.indexing.indexer import open_store
    from index.retrieval.retriever import Retriever

    store = open_store(settings.index_dir, embedder)
    if store.manifest is None:
        raise UserError(f"no index in {settings.index_dir} yet; run `policybot index` first")
    return Retriever(store, embedder, mode or settings.retrieval)


def clean_question(raw: str) -> str:
    """Collapse whitespace and refuse questions that are empty or absurdly long."""
    from index.text import clean_question as cleaned

    try:
        return cleaned(raw, MAX_QUESTION_CHARS)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def format_hits(hits: list[Hit], width: int = 100) -> str:
    """Passages as numbered, wrapped text with score, title and paragraph."""
    if not hits:
        return "No passages found."
    blocks = []
    for hit in hits:
        c = hit.chunk
        head = f"[{hit.rank}] {hit.score:.3f}  {c.title} — paragraph {c.paragraph}"
        if c.url:
            head += f"  <{c.url}>"
        body = textwrap.fill(c.text, width=width, initial_indent="    ", subsequent_indent="    ")
        blocks.append(f"{head}\n{body}")
    return "\n\n".join(blocks)


def run_search(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot search`: one question, or many from standard input with --json."""
    if args.k < 1 or args.k > 100:
        raise UserError("-k must be between 1 and 100")
    # Refuse a bad question before the model's seconds-long load.
    question = clean_question(args.question) if args.question != "-" else "-"
    embedder = load_embedder(settings)
    retriever = open_retriever(settings, embedder, args.mode)
    if args.question != "-":
        hits = retriever.search(question, args.k)
        if args.json:
            print(json.dumps({"question": question, "hits": [h.as_dict() for h in hits]}, ensure_ascii=False), file=out)
        else:
            print(format_hits(hits), file=out)
        return EXIT_OK
    status = EXIT_OK
    for line in sys.stdin:
        if not line.strip():
            continue
        hits: list[Hit] = []
        try:
            question = clean_question(line)
        except UserError as exc:
            status = EXIT_ERROR
            record = {"question": line.rstrip("\n"), "hits": [], "error": str(exc)}
        else:
            hits = retriever.search(question, args.k)
            record = {"question": question, "hits": [h.as_dict() for h in hits]}
        if args.json:
            print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
        else:
            print(f"> {record['question']}\n{record.get('error') or format_hits(hits)}\n", file=out, flush=True)
    return status


def run_articles(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`policybot articles`: what is indexed, without loading the model."""
    from index.indexing.store import IndexStore, read_manifest

    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        raise UserError(f"no index in {settings.index_dir} yet; run `policybot index` first")
    store = IndexStore.open(settings.index_dir, manifest["model"], int(manifest["dimension"]))
    infos = store.articles()
    if args.json:
        for info in infos:
            print(json.dumps({"id": info.article_id, "title": info.title, "url": info.url, "chunks": info.chunks,
                              "added": info.added_at, "updated": info.updated_at}, ensure_ascii=False), file=out)
        return EXIT_OK
    width = max([len("id"), *(len(i.article_id) for i in infos)])
    print(f"{'id'.ljust(width)}  {'chunks':>6}  {'added':20}  title", file=out)
    for info in infos:
        print(f"{info.article_id.ljust(width)}  {info.chunks:>6}  {info.added_at:20}  {info.title}", file=out)
    print(f"{len(infos)} article(s), {store.chunk_count} chunks.", file=out)
    return EXIT_OK


def build_engine(settings: Settings, embedder, store, llm_client=None):
    """The answer engine over one loaded index: extractive, or an LLM's checked answer when one is configured."""
    from index.knowledge import answer_engine

    return answer_engine(store, embedder, settings.retrieval, llm_client)


def format_answer(answer, width: int = 100) -> str:
    """An answer for the terminal: the text with [n] markers, then its sources with quotes."""
    lines = [textwrap.fill(answer.text, width=width)]
    sources = answer.citations or answer.related
    if sources:
        lines.append("")
        lines.append("Sources" if answer.citations else "Related reading")
        for c in sources:
            head = f"[{c.n}] {c.title} — paragraph {c.paragraph}"
            if c.url:
                head += f"  <{c.url}>"
            lines.append(head)
            quote = c.quote if len(c.quote) <= 600 else c.quote[:597].rstrip() + "…"
            lines.append(textwrap.fill(f"“{quote}”", width=width, initial_indent="    ", subsequent_indent="    "))
    if answer.note:
        lines.append(f"\n({answer.note})")
    return "\n".join(lines)


def conversation_store(settings: Settings):
    """Where CLI conversations are kept: beside the index."""
    from index.answering.conversations import ConversationStore

    return ConversationStore(settings.conversations_database)


def run_ask(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`policybot ask`: one cited answer, or one JSON object a line for questions on standard input."""
    from index.answering.conversations import check_conversation_id

    # Refuse a bad question or conversation id before the model's seconds-long load.
    if args.question != "-":
        clean_question(args.question)
    if args.conversation is not None:
        try:
            check_conversation_id(args.conversation)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    embedder = load_embedder(settings)
    engine = build_engine(settings, embedder, open_retriever(settings, embedder).store, settings.llm_client())
    conversations = conversation_store(settings) if args.conversation is not None else None

    def answer_one(raw: str):
        question = clean_question(raw)
        history = conversations.history(args.conversation) if conversations else ()
        answer = engine.ask(question, history)
        if conversations:
            conversations.add(args.conversation, question, answer.text)
        return answer

    if args.question != "-":
        answer = answer_one(args.question)
        print(json.dumps(answer.as_dict(), ensure_ascii=False) if args.json else format_answer(answer), file=out)
        return EXIT_OK
    status = EXIT_OK
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = answer_one(line)
        except UserError as exc:
            status = EXIT_ERROR
            record = {"question": line.rstrip("\n"), "error": str(exc)}
            print(json.dumps(record, ensure_ascii=False) if args.json else f"> {record['question']}\n{exc}\n", file=out, flush=True)
            continue
        print(json.dumps(answer.as_dict(), ensure_ascii=False) if args.json else f"> {answer.question}\n{format_answer(answer)}\n", file=out, flush=True)
    return status


def summarize(settings: Settings, embedder, store, article: str, length: str, llm_client=None):
    """A cited summary of the article named by id or title prefix (by the LLM when one is configured)."""
    from index.answering.summary import summarize_text

    try:
        info = store.find_article(article)
    except LookupError as exc:
        raise UserError(str(exc)) from None
    text = store.article_text(info.article_id) or ""
    if llm_client is not None:
        from index.answering.llm.engine import llm_summarize

        return llm_summarize(llm_client, info.article_id, info.title, info.url, text, embedder, length)
    return summarize_text(info.article_id, info.title, info.url, text, embedder, length)


def run_summary(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`policybot summary ARTICLE`."""
    embedder = load_embedder(settings)
    store = open_retriever(settings, embedder).store
    summary = summarize(settings, embedder, store, args.article, args.length, settings.llm_client())
    print(json.dumps(summary.as_dict(), ensure_ascii=False) if args.json else format_answer(summary), file=out)
    return EXIT_OK


def open_knowledge(settings: Settings, embedder):
    """The knowledge base over the index, built from the corpus first if there is none."""
    knowledge = settings.knowledge_base(embedder)
    knowledge.load()
    return knowledge


def run_add(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot add URL|FILE`: fetch or read the article, refuse duplicates, save it into the corpus, index it."""
    import re

    from index.ingestion.adding import IngestError, add_article_file, add_url, describe_added

    source = args.source.strip()
    is_url = re.match(r"^[a-z][a-z0-9+.-]*:", source, re.I) and not Path(source).exists()
    data = b""
    if not is_url:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"no file {source} (give an http(s) URL or a file path)")
        if path.stat().st_size > settings.max_article_bytes:
            raise UserError(f"{path.name} is {path.stat().st_size / 2**20:.1f} MB; the limit is "
                            f"{settings.max_article_bytes / 2**20:.0f} MB (MAX_ARTICLE_MB)")
        data = path.read_bytes()
    embedder = load_embedder(settings)
    knowledge = open_knowledge(settings, embedder)
    try:
        if is_url:
            added = add_url(source, settings.corpus_dir, knowledge.articles, settings.fetcher(),
                            knowledge.similar_articles, settings.extract_limits())
        else:
            added = add_article_file(settings.corpus_dir, Path(source).name, data, knowledge.articles,
                                     settings.max_article_bytes, knowledge.similar_articles, settings.extract_limits())
    except IngestError as exc:
        raise UserError(str(exc)) from None
    report = knowledge.reindex()
    passages = knowledge.passage_count(added.article.article_id)
    print(describe_added(added, passages), file=out)
    print(describe_report(report, settings), file=err)
    return EXIT_OK


def run_remove(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot remove ARTICLE`: move its file out of the corpus and drop it from the index."""
    from index.ingestion.adding import remove_article_file

    embedder = load_embedder(settings)
    knowledge = open_knowledge(settings, embedder)
    try:
        info = knowledge.find_article(args.article)
    except LookupError as exc:
        raise UserError(str(exc)) from None
    try:
        moved = remove_article_file(settings.corpus_dir, info.article_id, settings.removed_dir)
        where = f"its file was moved to {moved}"
    except LookupError:
        where = "its file was already gone from the corpus folder"
    report = knowledge.reindex()
    print(f"Removed “{info.title}”; {where}.", file=out)
    print(describe_report(report, settings), file=err)
    return EXIT_OK


def run_feed(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot feed add|list|remove|check`."""
    from index.ingestion.feeds import FeedError, FeedStore, check_feed, describe_check, subscribe

    store = FeedStore(settings.feeds_database)
    try:
        if args.feed_command == "list":
            feeds = store.feeds()
            for f in feeds:
                problem = f"  problem: {f.last_error}" if f.last_error else ""
                print(f"{f.feed_id:>3}  {f.title}  <{f.url}>  checked {f.checked_at or 'never'}{problem}", file=out)
            print(f"{len(feeds)} feed(s).", file=out)
            return EXIT_OK
        if args.feed_command == "remove":
            try:
                found = store.find(args.feed)
            except LookupError as exc:
                raise UserError(str(exc)) from None
            store.remove(found.feed_id)
            print(f"Unsubscribed from “{found.title}”; its articles stay.", file=out)
            return EXIT_OK
        embedder = load_embedder(settings)
        knowledge = open_knowledge(settings, embedder)
        fetcher = settings.fetcher()
        add_url = settings.url_adder(knowledge, fetcher)
        try:
            if args.feed_command == "add":
                checks = [subscribe(store, args.url, fetcher, add_url)]
                print(f"Subscribed to “{checks[0].feed.title}” (feed {checks[0].feed.feed_id}).", file=out)
            else:
                checks = [check_feed(store, feed, fetcher, add_url) for feed in store.feeds()]
        except FeedError as exc:
            raise UserError(str(exc)) from None
        for check in checks:
            print(describe_check(check), file=out)
        if any(check.added for check in checks):
            print(describe_report(knowledge.reindex(), settings), file=err)
        return EXIT_ERROR if any(check.error for check in checks) else EXIT_OK
    finally:
        store.close()


def run_watch(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO, stop=None) -> int:
    """`policybot watch`: reindex on every change to the corpus folder until Ctrl-C."""
    import threading

    from index.indexing.watch import watch_corpus

    if not 0.1 <= args.interval <= 3600:
        raise UserError("--interval must be between 0.1 and 3600 seconds")
    knowledge = open_knowledge(settings, load_embedder(settings, bulk=True))
    articles, passages, _ = knowledge.stats()
    print(f"Watching {settings.corpus_dir} ({articles} articles, {passages} passages); Ctrl-C stops.", file=out, flush=True)
    stop = stop or threading.Event()
    try:
        watch_corpus(settings.corpus_dir, knowledge.reindex,
                     lambda report: print(describe_report(report, settings), file=out, flush=True), stop, args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        knowledge.close()
    return EXIT_OK


def run_eval(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot eval FILE`: figures for a question set, and the abstention trade-off curve."""
    import tempfile

    from tqdm import tqdm

    from index.answering import evaluate
    from index.indexing.indexer import update_index

    if not args.file.is_file():
        raise UserError(f"no question file {args.file}")
    embedder = load_embedder(settings)
    with tempfile.TemporaryDirectory(prefix="policybot-eval-") as scratch:
        if args.file.suffix.lower() == ".json":
            articles, questions = evaluate.load_squad(args.file)
            corpus = Path(scratch) / "corpus"
            evaluate.write_corpus(articles, corpus)
            index_dir = args.keep_index or Path(scratch) / "index"
            print(f"Indexing {len(articles)} SQuAD articles into {index_dir} …", file=err)
            _, store = update_index(corpus, index_dir, embedder, settings.index_options())
            titles = {title for title, _ in articles}
        else:
            questions = evaluate.load_jsonl(args.file)
            store = open_retriever(settings, embedder).store
            titles = {info.title for info in store.articles()}
        questions = evaluate.sample(questions, args.limit)
        if args.outside:
            questions += evaluate.out_of_corpus_questions(args.outside, titles, args.outside_limit)
        engine = build_engine(settings, embedder, store)
        with tqdm(total=len(questions), unit="q", desc="answering", file=err, leave=False) as bar:
            results = evaluate.evaluate(engine, questions, progress=lambda done, total: bar.update(done - bar.n))
    figures = evaluate.metrics(results, engine.config.abstain_below)
    thresholds = [round(0.20 + 0.02 * i, 2) for i in range(21)]
    lines = [f"{len(results)} questions ({figures['answerable']} answerable, {figures['unanswerable']} not), "
             f"abstention threshold {engine.config.abstain_below:.2f}"]
    for key in ("recall@1", "recall@5", "recall@10", "answer_accuracy", "citation_precision", "correct_and_cited",
                "abstention_precision", "abstention_recall", "baseline_accuracy"):
        lines.append(f"  {key:24} {figures[key]:.3f}")
    lines.append(f"  {'latency p50 / p95':24} {figures['latency_p50_ms']:.0f} / {figures['latency_p95_ms']:.0f} ms")
    print("\n".join(lines), file=out)
    if args.report:
        report = {"figures": figures, "curve": evaluate.curve(results, thresholds), "results": evaluate.report_rows(results)}
        args.report.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"report written to {args.report}", file=err)
    return EXIT_OK


CHAT_HELP = """Type a question to get a cited answer; a follow-up is read with the questions before it.
Commands: /summary ARTICLE [short|medium|long]  summarise an article (id or start of its title)
          /articles  list the indexed articles
          /passages QUESTION  show the best matching passages
          /new       start a new conversation (forget earlier questions)
          /reindex   update the index from the corpus folder
          /help      this text
          /quit      leave (or Ctrl-D)"""


def run_chat(settings: Settings, out: TextIO, err: TextIO, read_line: Callable[[str], str] = input, build: bool = False) -> int:
    """The interactive terminal session: ask, follow up, summarise, list articles, reindex."""
    from index.types import Turn
    from index.indexing.indexer import open_store
    from index.text import has_words

    embedder = load_embedder(settings)
    if build or open_store(settings.index_dir, embedder).manifest is None:
        _, store = run_index(settings, embedder, rebuild=False, quiet=False, out=out, err=err)
    else:
        store = open_store(settings.index_dir, embedder)
    llm_client = settings.llm_client()
    engine = build_engine(settings, embedder, store, llm_client)
    history: list[Turn] = []
    print(f"policybot — {len(store.articles())} article(s), {store.chunk_count} passages indexed.\n{CHAT_HELP}", file=out)
    while True:
        try:
            line = read_line("\nquestion> ")
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return EXIT_OK
        command = line.strip().lower()
        if not command:
            continue
        if command in ("/quit", "/exit", "quit", "exit"):
            return EXIT_OK
        if command == "/help":
            print(CHAT_HELP, file=out)
        elif command == "/articles":
            for info in store.articles():
                print(f"- {info.title} ({info.chunks} passages) [{info.article_id}]", file=out)
        elif command == "/reindex":
            _, store = run_index(settings, embedder, rebuild=False, quiet=False, out=out, err=err)
            engine = build_engine(settings, embedder, store, llm_client)
        elif command == "/new":
            history.clear()
            print("Started a new conversation.", file=out)
        elif command.startswith("/summary"):
            words = line.split()[1:]
            length = words.pop() if words and words[-1].lower() in ("short", "medium", "long") else "medium"
            try:
                print(format_answer(summarize(settings, embedder, store, " ".join(words), length.lower(), llm_client)), file=out)
            except UserError as exc:
                print(exc, file=out)
        elif command.startswith("/passages"):
            try:
                print(format_hits(engine.retriever.search(clean_question(line.split(None, 1)[1] if " " in line.strip() else ""), 3)), file=out)
            except UserError as exc:
                print(exc, file=out)
        elif command.startswith("/"):
            print(f"Unknown command {command.split()[0]}. Type /help for the commands.", file=out)
        else:
            try:
                question = clean_question(line)
            except UserError as exc:
                print(exc, file=out)
                continue
            answer = engine.ask(question, history)
            if not answer.abstained or has_words(question):
                history = [*history, Turn(question, answer.text)][-4:]
            print(format_answer(answer), file=out)


def main(argv: Iterable[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Entry point of the `policybot` console script."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        settings = settings_for(args)
        command = args.command or "start"
        if command == "index":
            embedder = load_embedder(settings, bulk=True)
            report, store = run_index(settings, embedder, args.rebuild, args.quiet, out, err)
            store.close()
            return EXIT_SKIPPED if report.skipped else EXIT_OK
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
            return run_add(args, settings, out, err)
        if command == "remove":
            return run_remove(args, settings, out, err)
        if command == "watch":
            return run_watch(args, settings, out, err)
        if command == "feed":
            return run_feed(args, settings, out, err)
        if command == "run" or (command == "start" and settings.discord_token):
            from bot.run import require_token, run_bot

            # Refuse a missing token before the model's seconds-long load.
            require_token(settings)
            run_bot(settings, load_embedder(settings))
            return EXIT_OK
        if command == "sync":
            import asyncio

            from bot.run import sync_commands

            names = asyncio.run(sync_commands(settings, args.guild))
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
