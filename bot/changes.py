"""The `policybot` commands that change the library: add, remove, feed and watch.

Kept apart from bot/cli.py (parsing, the commands that read, and dispatch), which imports this
module when one of these commands runs; helpers and the model loader are used through `cli`, so
tests that stand in for the model there reach these commands too.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import TextIO

from bot import cli
from bot.services import build_adder, build_fetcher
from bot.settings import Settings
from bot.terminal import describe_report


def run_add(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot add URL|FILE`: fetch or read the article, refuse duplicates, save it into the corpus, index it."""
    import re

    from index.ingestion.adding import IngestError, describe_added, describe_not_indexed

    source = args.source.strip()
    if Path(source).is_dir():
        return run_add_folder(Path(source), settings, out, err)
    is_url = re.match(r"^[a-z][a-z0-9+.-]*:", source, re.I) and not Path(source).exists()
    data = b""
    if not is_url:
        path = Path(source)
        if not path.is_file():
            raise cli.UserError(f"no file {source} (give an http(s) URL or a file path)")
        if path.stat().st_size > settings.index.max_article_bytes:
            raise cli.UserError(
                f"{path.name} is {path.stat().st_size / 2**20:.1f} MB; the limit is "
                f"{settings.index.max_article_bytes / 2**20:.0f} MB (MAX_ARTICLE_MB)"
            )
        data = path.read_bytes()
    with cli.loaded(settings, cli.load_embedder(settings), warm_search=False) as knowledge:
        adder = build_adder(settings, knowledge, build_fetcher(settings))
        try:
            added = adder.add_url(source) if is_url else adder.add_file(Path(source).name, data)
        except IngestError as exc:
            raise cli.UserError(str(exc)) from None
        try:
            report = knowledge.reindex()
        except KeyboardInterrupt:
            print(f"policybot: {describe_not_indexed(str(added.path), 'interrupted')}", file=err)
            raise
        except Exception as exc:
            raise cli.UserError(describe_not_indexed(str(added.path), str(exc) or type(exc).__name__)) from exc
        passages = knowledge.passage_count(added.article.article_id)
    print(describe_added(added, passages), file=out)
    print(describe_report(report, settings.index.corpus_dir, settings.index.index_dir), file=err)
    return cli.EXIT_OK


def run_add_folder(folder: Path, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot add DIR`: each supported file in the folder (not its subfolders) checked and saved as `add FILE` does, then one index run.

    Says for each file what became of it; exits 0 when all were added, 3 when some were refused, 1 when none was added.
    """
    from index.ingestion.adding import UPLOAD_SUFFIXES, AddedArticle, IngestError, describe_added, describe_not_indexed

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in UPLOAD_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        raise cli.UserError(f"no {', '.join(UPLOAD_SUFFIXES)} files in the folder {folder}")
    added: list[AddedArticle] = []
    with cli.loaded(settings, cli.load_embedder(settings), warm_search=False) as knowledge:
        adder = build_adder(settings, knowledge, build_fetcher(settings))
        for path in files:
            try:
                size, limit = path.stat().st_size, settings.index.max_article_bytes
                if size > limit:
                    raise IngestError(f"it is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB (MAX_ARTICLE_MB)")
                added.append(adder.add_file(path.name, path.read_bytes()))
            except (IngestError, OSError) as exc:
                print(f"Not added {path.name}: {exc}", file=out, flush=True)
        if not added:
            print(f"None of the {len(files)} file(s) in {folder} was added.", file=out)
            return cli.EXIT_ERROR
        try:
            report = knowledge.reindex()
        except Exception as exc:
            saved = ", ".join(str(a.path) for a in added)
            raise cli.UserError(describe_not_indexed(saved, str(exc) or type(exc).__name__)) from exc
        for one in added:
            print(describe_added(one, knowledge.passage_count(one.article.article_id)), file=out)
    print(f"{len(added)} of {len(files)} file(s) in {folder} added.", file=out)
    print(describe_report(report, settings.index.corpus_dir, settings.index.index_dir), file=err)
    return cli.EXIT_OK if len(added) == len(files) else cli.EXIT_SKIPPED


def run_remove(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot remove ARTICLE`: move its file out of the corpus and drop it from the index."""
    from index.ingestion.adding import remove_article_file

    with cli.loaded(settings, cli.load_embedder(settings), warm_search=False) as knowledge:
        try:
            info = knowledge.find_article(args.article)
        except LookupError as exc:
            raise cli.UserError(str(exc)) from None
        try:
            moved = remove_article_file(settings.index.corpus_dir, info.article_id, settings.removed_dir)
            where = f"its file was moved to {moved}"
        except LookupError:
            where = "its file was already gone from the corpus folder"
        report = knowledge.reindex()
    print(f"Removed “{info.title}”; {where}.", file=out)
    print(describe_report(report, settings.index.corpus_dir, settings.index.index_dir), file=err)
    return cli.EXIT_OK


def run_feed(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`policybot feed add|list|remove|check`."""
    from index.ingestion.feeds import (
        FeedError,
        FeedStore,
        check_feed,
        describe_check,
        subscribe,
    )

    store = FeedStore(settings.feeds_database)
    try:
        if args.feed_command == "list":
            feeds = store.feeds()
            for f in feeds:
                problem = f"  problem: {f.last_error}" if f.last_error else ""
                print(f"{f.feed_id:>3}  {f.title}  <{f.url}>  checked {f.checked_at or 'never'}{problem}", file=out)
            print(f"{len(feeds)} feed(s).", file=out)
            return cli.EXIT_OK
        if args.feed_command == "remove":
            try:
                found = store.find(args.feed)
            except LookupError as exc:
                raise cli.UserError(str(exc)) from None
            store.remove(found.feed_id)
            print(f"Unsubscribed from “{found.title}”; its articles stay.", file=out)
            return cli.EXIT_OK
        with cli.loaded(settings, cli.load_embedder(settings), warm_search=False) as knowledge:
            fetcher = build_fetcher(settings)
            add_url = build_adder(settings, knowledge, fetcher).add_url
            try:
                if args.feed_command == "add":
                    checks = [subscribe(store, args.url, fetcher, add_url)]
                    print(f"Subscribed to “{checks[0].feed.title}” (feed {checks[0].feed.feed_id}).", file=out)
                else:
                    checks = [check_feed(store, feed, fetcher, add_url) for feed in store.feeds()]
            except FeedError as exc:
                raise cli.UserError(str(exc)) from None
            for check in checks:
                print(describe_check(check), file=out)
            if any(check.added for check in checks):
                print(describe_report(knowledge.reindex(), settings.index.corpus_dir, settings.index.index_dir), file=err)
        return cli.EXIT_ERROR if any(check.error for check in checks) else cli.EXIT_OK
    finally:
        store.close()


def run_watch(args: argparse.Namespace, settings: Settings, out: TextIO, stop: threading.Event | None = None) -> int:
    """`policybot watch`: reindex on every change to the corpus folder until Ctrl-C."""
    from index.indexing.watch import watch_corpus

    if not 0.1 <= args.interval <= 3600:
        raise cli.UserError("--interval must be between 0.1 and 3600 seconds")
    knowledge = cli.build_knowledge(settings, cli.load_embedder(settings, bulk=True), warm_search=False)
    knowledge.load()
    articles, passages, _ = knowledge.stats()
    print(f"Watching {settings.index.corpus_dir} ({articles} articles, {passages} passages); Ctrl-C stops.", file=out, flush=True)
    stop = stop or threading.Event()
    try:
        watch_corpus(
            settings.index.corpus_dir,
            knowledge.reindex,
            lambda report: print(describe_report(report, knowledge.corpus_dir, knowledge.index_dir), file=out, flush=True),
            stop,
            args.interval,
        )
    except KeyboardInterrupt:
        pass
    finally:
        knowledge.close()
    return cli.EXIT_OK
