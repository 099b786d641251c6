"""Fetching from a real HTTP server on 127.0.0.1: redirects re-checked, size, time and type capped.

The suite-wide guard in tests/conftest.py fails any test that tries to reach an address outside
127.0.0.0/8 or ::1 or asks DNS about a name, so even a broken SSRF check cannot send a packet
off this machine.
"""

from __future__ import annotations

import socket
import time

import pytest

from index.ingestion.fetch import Fetcher, FetchError, FetchLimits
from index.ingestion.urls import UrlRefused
from tests.support.web_server import web_server

LOCAL = FetchLimits(allow_loopback=True, timeout_seconds=5)


def no_dns(host: str, port: int) -> list[str]:
    pytest.fail(f"a test asked DNS about {host}")


@pytest.fixture
def server():
    with web_server() as running:
        yield running


def test_an_article_page_is_fetched(server):
    base, routes = server
    page = Fetcher(LOCAL, no_dns).fetch(f"{base}/article?utm_source=test")
    assert page.kind == "html" and page.charset == "utf-8" and b"Harbour pilots" in page.body
    assert page.url == f"{base}/article"
    assert routes.hits == ["/article"]


def test_loopback_is_off_by_default_and_no_request_is_made(server):
    base, routes = server
    with pytest.raises(UrlRefused, match="loopback"):
        Fetcher(resolver=no_dns).fetch(f"{base}/article")
    with pytest.raises(UrlRefused, match="loopback"):
        Fetcher(resolver=no_dns).fetch(base.replace("127.0.0.1", "localhost") + "/article")
    assert routes.hits == []


def test_redirects_are_followed_up_to_five_hops(server):
    base, routes = server
    page = Fetcher(LOCAL, no_dns).fetch(f"{base}/hop/5")
    assert b"Harbour pilots" in page.body and len(page.redirects) == 5
    with pytest.raises(FetchError, match="more than 2 times"):
        Fetcher(FetchLimits(allow_loopback=True, max_redirects=2), no_dns).fetch(f"{base}/hop/5")
    with pytest.raises(FetchError, match="redirected more than 5 times"):
        Fetcher(LOCAL, no_dns).fetch(f"{base}/loop")


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/to-private", "10.0.0.1 is a private network address"),
        ("/to-metadata", "link-local"),
        ("/to-file", "only http and https"),
    ],
)
def test_every_redirect_hop_is_checked_again(server, path, reason):
    base, routes = server
    with pytest.raises(UrlRefused, match=reason):
        Fetcher(LOCAL, no_dns).fetch(f"{base}{path}")
    assert routes.hits == [path]


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/image", "image/png, not HTML, plain text or PDF"),
        ("/missing", "answered 404"),
        ("/no-location", "without saying where"),
        ("/declared-big", "500.0 MB; the limit is 1 MB"),
        ("/streamed-big", "larger than 1 MB"),
        ("/gzip-bomb", "unpacks to more than 1 MB"),
    ],
)
def test_bad_responses_are_refused_with_a_reason(server, path, reason):
    base, _ = server
    limits = FetchLimits(allow_loopback=True, max_bytes=2**20, timeout_seconds=5)
    with pytest.raises(FetchError, match=reason):
        Fetcher(limits, no_dns).fetch(f"{base}{path}")


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_a_slow_server_cannot_hold_the_fetch_past_its_deadline(server, path):
    base, _ = server
    started = time.monotonic()
    with pytest.raises(FetchError, match="longer than 1 s"):
        Fetcher(FetchLimits(allow_loopback=True, timeout_seconds=1), no_dns).fetch(f"{base}{path}")
    assert time.monotonic() - started < 3


def test_gzip_and_plain_text_are_read(server):
    base, _ = server
    fetcher = Fetcher(LOCAL, no_dns)
    assert b"Harbour pilots" in fetcher.fetch(f"{base}/gzip").body
    plain = fetcher.fetch(f"{base}/plain")
    assert plain.kind == "text" and plain.body.startswith(b"Plain text")


def test_a_closed_port_is_a_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed"):
        Fetcher(LOCAL, no_dns).fetch(f"http://127.0.0.1:{port}/")


def test_a_server_that_goes_silent_is_given_up_on_with_its_own_reason(server, monkeypatch):
    monkeypatch.setattr("index.ingestion.fetch.SILENCE_SECONDS", 0.5)
    base, _ = server
    started = time.monotonic()
    with pytest.raises(FetchError, match="stopped sending for 0.5 s"):
        Fetcher(LOCAL, no_dns).fetch(f"{base}/stall")
    assert time.monotonic() - started < 2
