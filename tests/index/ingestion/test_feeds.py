"""Feeds: RSS and Atom parsed, hostile XML refused, new items added once, from a real server on 127.0.0.1."""

from __future__ import annotations

import pytest

from index.ingestion.adding import IngestError, add_url
from index.ingestion.feeds import (
    FeedError,
    FeedStore,
    check_feed,
    parse_feed,
    subscribe,
)
from index.ingestion.fetch import Fetcher, FetchLimits
from tests.support.web_server import send, web_server

ARTICLE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body><nav>Home</nav>
<article><h1>{title}</h1><p>{body} The harbour authority published the figures on Monday, and the union
said it would study them before the next round of talks with the ministry of transport.</p>
<p>Shipping companies, fishing cooperatives and ferry operators all sent written comments, and a decision on
the new fees is expected before the end of the season, according to officials who spoke to reporters.</p></article>
</body></html>"""

TOPICS = {
    "ferries": ("Ferry fares frozen", "Island ferry fares will stay frozen for another year."),
    "dredging": ("Dredging the harbour mouth", "The harbour mouth will be dredged to eleven metres."),
    "cranes": ("New container cranes", "Two electric container cranes arrive in the spring."),
    "pilots": ("Pilot training doubled", "The pilot school will train twice as many pilots."),
    "tolls": ("Bridge tolls cut", "Tolls on the harbour bridge fall by a third for lorries."),
}


def rss(base: str, slugs: list[str]) -> bytes:
    items = "".join(f"<item><title>{TOPICS[s][0]}</title><link>{base}/news/{s}?utm_source=rss</link></item>" for s in slugs)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour News</title>{items}</channel></rss>'.encode()


def atom(base: str, slugs: list[str]) -> bytes:
    entries = "".join(f'<entry><title>{TOPICS[s][0]}</title><link href="{base}/news/{s}"/><id>{s}</id></entry>' for s in slugs)
    return f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Port Atom</title>{entries}</feed>'.encode()


@pytest.fixture
def site():
    with web_server() as (base, routes):
        for slug, (title, body) in TOPICS.items():
            routes.add(f"/news/{slug}", lambda h, t=title, b=body: send(h, 200, ARTICLE.format(title=t, body=b).encode()))
        yield base, routes


def adder(corpus):
    fetcher = Fetcher(FetchLimits(allow_loopback=True), resolver=lambda host, port: [])
    return fetcher, lambda link: add_url(link, corpus, [], fetcher)


def test_rss_and_atom_give_titles_and_links():
    title, items = parse_feed(rss("https://e.org", ["ferries", "cranes"]))
    assert title == "Harbour News" and [i.title for i in items] == ["Ferry fares frozen", "New container cranes"]
    title, items = parse_feed(atom("https://e.org", ["tolls"]))
    assert title == "Port Atom" and items[0].link == "https://e.org/news/tolls"


@pytest.mark.parametrize(
    "data, reason",
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<rss><channel><title>&lol2;</title></channel></rss>",
            "DTD or XML entities",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss><channel><title>&x;</title></channel></rss>',
            "DTD or XML entities",
        ),
        (b"<html><body><p>Just a page</p></body></html>", "not an RSS or Atom feed"),
        (b"<!DOCTYPE html><html><body><p>A page with a doctype</p></body></html>", "a web page, not an RSS or Atom feed"),
        (
            b'<?xml version="1.0"?><!-- ' + b"x" * 100_000 + b' --><!DOCTYPE r [<!ENTITY a "aaaa">]><rss><channel>'
            b"<title>&a;</title></channel></rss>",
            "DTD or XML entities",
        ),
        (b"\x00\x01\x02 binary", "not an RSS or Atom feed"),
    ],
)
def test_hostile_or_wrong_documents_are_refused(data, reason):
    with pytest.raises(FeedError, match=reason):
        parse_feed(data)


def test_subscribing_adds_the_newest_items_and_checks_add_only_new_ones(site, tmp_path):
    base, routes = site
    feed_items = ["ferries", "dredging", "cranes", "pilots"]
    routes.add("/feed.xml", lambda h: send(h, 200, rss(base, feed_items), "application/rss+xml"))
    store = FeedStore(tmp_path / "feeds.sqlite")
    fetcher, add = adder(tmp_path / "corpus")

    first = subscribe(store, f"{base}/feed.xml", fetcher, add)
    assert [a.article.title for a in first.added] == ["Ferry fares frozen", "Dredging the harbour mouth", "New container cranes"]
    assert check_feed(store, first.feed, fetcher, add).added == []

    feed_items.insert(0, "tolls")
    later = check_feed(store, first.feed, fetcher, add)
    assert [a.article.title for a in later.added] == ["Bridge tolls cut"]
    saved = (tmp_path / "corpus" / "bridge-tolls-cut.md").read_text()
    assert f"url: {base}/news/tolls\n" in saved and "utm_source" not in saved
    with pytest.raises(FeedError, match="already subscribed"):
        subscribe(store, f"{base}/feed.xml", fetcher, add)
    assert [f.title for f in store.feeds()] == ["Harbour News"]


def test_a_broken_item_is_reported_once_and_a_broken_feed_is_recorded(site, tmp_path):
    base, routes = site
    routes.add("/feed.xml", lambda h: send(h, 200, atom(base, ["ferries"]).replace(b"/news/ferries", b"/missing"), "application/atom+xml"))
    store = FeedStore(tmp_path / "feeds.sqlite")
    fetcher, add = adder(tmp_path / "corpus")
    check = subscribe(store, f"{base}/feed.xml", fetcher, add)
    assert check.added == [] and "404" in check.failed[0][1]
    assert check_feed(store, check.feed, fetcher, add).failed == []

    routes.add("/feed.xml", lambda h: send(h, 500, b"oops"))
    broken = check_feed(store, check.feed, fetcher, add)
    assert "500" in broken.error and "500" in store.feeds()[0].last_error


def test_an_item_link_with_non_ascii_characters_is_added(site, tmp_path):
    base, routes = site
    title, body = TOPICS["ferries"]
    routes.add("/news/caf%C3%A9", lambda h: send(h, 200, ARTICLE.format(title="Café terraces", body=body).encode()))
    routes.add(
        "/feed.xml",
        lambda h: send(
            h,
            200,
            rss(base, []).replace(b"</channel>", f"<item><title>x</title><link>{base}/news/café</link></item></channel>".encode()),
            "application/rss+xml",
        ),
    )
    store = FeedStore(tmp_path / "feeds.sqlite")
    fetcher, add = adder(tmp_path / "corpus")
    check = subscribe(store, f"{base}/feed.xml", fetcher, add)
    assert [a.article.title for a in check.added] == ["Café terraces"] and check.failed == []


def test_an_unexpected_failure_on_one_item_does_not_stop_the_others(site, tmp_path):
    base, routes = site
    routes.add("/feed.xml", lambda h: send(h, 200, rss(base, ["ferries", "cranes"]), "application/rss+xml"))
    store = FeedStore(tmp_path / "feeds.sqlite")
    fetcher, add = adder(tmp_path / "corpus")

    def flaky(link):
        if "ferries" in link:
            raise RuntimeError("boom")
        return add(link)

    check = subscribe(store, f"{base}/feed.xml", fetcher, flaky)
    assert [a.article.title for a in check.added] == ["New container cranes"]
    assert check.failed[0][1] == "unexpected error (RuntimeError)"
    assert check_feed(store, check.feed, fetcher, flaky).failed == []


def test_feeds_go_through_the_same_address_guard(tmp_path):
    store = FeedStore(tmp_path / "feeds.sqlite")
    with pytest.raises(FeedError, match="private network address"):
        subscribe(store, "http://10.0.0.1/feed.xml", Fetcher(), lambda link: (_ for _ in ()).throw(IngestError("never")))
    assert store.feeds() == []
