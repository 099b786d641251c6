"""RSS and Atom subscriptions: new items of a feed are added as articles, on a schedule or on demand.

A feed is fetched with the same guarded fetcher as an article, its items' links are added
with `index.ingestion.adding.add_url` (so every safety and duplicate rule applies), and the links seen
are remembered in SQLite so an item is added once. The caller reindexes once afterwards.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.database import inserted_id, open_database
from index.ingestion.adding import AddedArticle, IngestError
from index.ingestion.fetch import FEED_TYPES, Fetcher, FetchError
from index.ingestion.urls import UrlRefused, normalize_url

logger = logging.getLogger("policybot." + __name__)

# Items added at most per feed and check: a feed that suddenly lists hundreds of links (or a
# first check of a busy feed) cannot flood the library or the embedding queue.
MAX_NEW_ITEMS_PER_CHECK = 10
# On subscribing, the newest few items are added at once; older ones are only marked as seen.
ITEMS_ON_SUBSCRIBE = 3
_DECLARATIONS = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)

SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    added_at TEXT NOT NULL,
    checked_at TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS seen (
    feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    link TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (feed_id, link)
);
"""


class FeedError(ValueError):
    """A feed that cannot be subscribed to or read; the message says why."""


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed: the article's link and its title."""

    link: str
    title: str


@dataclass(frozen=True)
class Feed:
    """A subscription."""

    feed_id: int
    url: str
    title: str
    added_at: str
    checked_at: str | None
    last_error: str | None


@dataclass
class FeedCheck:
    """What one check of one feed did."""

    feed: Feed
    added: list[AddedArticle] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def refuse_declarations(data: bytes) -> None:
    """FeedError when the document declares a DTD or entities anywhere (an entity bomb, external entities).

    A feed has no reason to declare any. The whole document is scanned by expat with handlers
    that stop at the first declaration, so padding cannot hide one; a document expat cannot
    parse is left to feedparser, which reads broken feeds leniently but declares nothing.
    """
    from xml.parsers import expat

    def refuse(*_args: Any) -> None:
        raise FeedError("the feed declares a DTD or XML entities; refused")

    def doctype(name: str, system_id: str | None, public_id: str | None, has_internal_subset: bool) -> None:
        if (name or "").lower() == "html" and not has_internal_subset:
            raise FeedError("this is a web page, not an RSS or Atom feed")
        refuse()

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        if _DECLARATIONS.search(data):
            raise FeedError("the feed declares a DTD or XML entities; refused") from None


def parse_feed(data: bytes) -> tuple[str, list[FeedItem]]:
    """(title, items newest first) of an RSS or Atom document; FeedError when it is not a feed."""
    import feedparser

    refuse_declarations(data)
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception")
        raise FeedError(f"this is not an RSS or Atom feed{f' ({reason})' if reason else ''}")
    title = " ".join(str(parsed.feed.get("title", "")).split()) or "Untitled feed"
    items = []
    for entry in parsed.entries:
        link = str(entry.get("link") or "").strip()
        if link:
            items.append(FeedItem(link, " ".join(str(entry.get("title", "")).split())))
    return title, items


def fetch_feed(url: str, fetcher: Fetcher) -> tuple[str, str, list[FeedItem]]:
    """(normalised URL, title, items) of the feed at `url`."""
    try:
        normal = normalize_url(url)
        page = fetcher.fetch(normal, FEED_TYPES)
    except (UrlRefused, FetchError) as exc:
        raise FeedError(str(exc)) from None
    title, items = parse_feed(page.body)
    return normal, title, items


class FeedStore:
    """Subscriptions and the links already seen, in SQLite; safe to use from worker threads."""

    def __init__(self, path: Path):
        self._db = open_database(path, SCHEMA)
        self._lock = threading.Lock()

    def feeds(self) -> list[Feed]:
        """Every subscription, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, url, title, added_at, checked_at, last_error FROM feeds ORDER BY id").fetchall()
        return [Feed(*row) for row in rows]

    def find(self, query: str) -> Feed:
        """The feed with this id, URL or title (prefix); LookupError otherwise."""
        wanted = query.strip().casefold()
        feeds = self.feeds()
        for test in (
            lambda f: str(f.feed_id) == wanted or f.url.casefold() == wanted,
            lambda f: f.title.casefold().startswith(wanted) or f.url.casefold().startswith(wanted),
        ):
            matches = [f for f in feeds if test(f)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise LookupError(f"{len(matches)} feeds match {query!r}; give its number or full URL")
        raise LookupError(f"no feed matches {query!r}")

    def add(self, url: str, title: str, links: list[str]) -> Feed:
        """Subscribe, marking `links` as seen; FeedError when already subscribed."""
        with self._lock:
            try:
                cursor = self._db.execute("INSERT INTO feeds (url, title, added_at) VALUES (?, ?, ?)", (url, title, _now()))
            except sqlite3.IntegrityError:
                raise FeedError("this feed is already subscribed") from None
            feed_id = inserted_id(cursor)
            self._db.executemany(
                "INSERT OR IGNORE INTO seen (feed_id, link, seen_at) VALUES (?, ?, ?)", [(feed_id, link, _now()) for link in links]
            )
        return self.find(str(feed_id))

    def remove(self, feed_id: int) -> None:
        """Unsubscribe (articles already added stay)."""
        with self._lock:
            self._db.execute("DELETE FROM feeds WHERE id = ?", (feed_id,))

    def unseen(self, feed_id: int, links: list[str]) -> list[str]:
        """The links not seen before, in the given order."""
        with self._lock:
            seen = {row[0] for row in self._db.execute("SELECT link FROM seen WHERE feed_id = ?", (feed_id,))}
        return [link for link in links if link not in seen]

    def mark_seen(self, feed_id: int, links: list[str]) -> None:
        """Remember links so they are not added again."""
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO seen (feed_id, link, seen_at) VALUES (?, ?, ?)", [(feed_id, link, _now()) for link in links]
            )

    def record_check(self, feed_id: int, error: str = "") -> None:
        """When the feed was last checked, and what went wrong if anything did."""
        with self._lock:
            self._db.execute("UPDATE feeds SET checked_at = ?, last_error = ? WHERE id = ?", (_now(), error or None, feed_id))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


AddUrl = Callable[[str], AddedArticle]


def add_items(store: FeedStore, feed: Feed, links: list[str], add_url: AddUrl) -> FeedCheck:
    """Add each link as an article (each marked seen whatever happens, so a bad item is not retried forever)."""
    check = FeedCheck(feed)
    for link in links:
        try:
            check.added.append(add_url(link))
        except IngestError as exc:
            check.failed.append((link, str(exc)))
        except Exception as exc:  # one odd item must not stop the feed, nor be retried at every check
            logger.exception("feed item %s could not be added", link)
            check.failed.append((link, f"unexpected error ({exc.__class__.__name__})"))
        store.mark_seen(feed.feed_id, [link])
    return check


def subscribe(store: FeedStore, url: str, fetcher: Fetcher, add_url: AddUrl) -> FeedCheck:
    """Subscribe to a feed and add its newest few items now; later ones come with each check."""
    normal, title, items = fetch_feed(url, fetcher)
    links = list(dict.fromkeys(item.link for item in items))
    first, older = links[:ITEMS_ON_SUBSCRIBE], links[ITEMS_ON_SUBSCRIBE:]
    feed = store.add(normal, title, older)
    check = add_items(store, feed, first, add_url)
    store.record_check(feed.feed_id)
    return check


def check_feed(store: FeedStore, feed: Feed, fetcher: Fetcher, add_url: AddUrl) -> FeedCheck:
    """Fetch one feed and add up to MAX_NEW_ITEMS_PER_CHECK items not seen before."""
    try:
        _, _, items = fetch_feed(feed.url, fetcher)
    except FeedError as exc:
        store.record_check(feed.feed_id, str(exc))
        return FeedCheck(feed, error=str(exc))
    new = store.unseen(feed.feed_id, list(dict.fromkeys(item.link for item in items)))
    check = add_items(store, feed, new[:MAX_NEW_ITEMS_PER_CHECK], add_url)
    store.record_check(feed.feed_id)
    return check


def describe_check(check: FeedCheck) -> str:
    """One line on what a check did."""
    if check.error:
        return f"{check.feed.title}: could not be read ({check.error})"
    line = f"{check.feed.title}: {len(check.added)} new article{'s' if len(check.added) != 1 else ''}"
    if check.failed:
        line += f", {len(check.failed)} item(s) not added ({check.failed[0][1]})"
    return line
