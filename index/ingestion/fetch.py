"""Fetching a web page safely: checked addresses at every hop, capped size and time, only article types.

Each connection goes to the address `index.ingestion.urls.check_url` cleared, with the host name kept
for the Host header and TLS verification, so a DNS answer cannot change between the check
and the connection. Plain `http.client` is used because it never reads proxy settings from
the environment and lets the connection be pinned.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import urljoin

from index.ingestion.urls import (
    CheckedTarget,
    Resolver,
    UrlRefused,
    check_url,
    system_resolver,
)

ARTICLE_TYPES = {"text/html": "html", "application/xhtml+xml": "html", "text/plain": "text", "application/pdf": "pdf"}
# Feeds are served under many XML types (and sometimes as text/html or text/plain).
FEED_TYPES = {
    "application/rss+xml": "feed",
    "application/atom+xml": "feed",
    "application/xml": "feed",
    "text/xml": "feed",
    "application/rdf+xml": "feed",
    "application/feed+json": "feed",
    **ARTICLE_TYPES,
}
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
USER_AGENT = "policybot/1.0 (article fetcher; +https://github.com/policybot)"
READ_CHUNK = 64 * 1024
# A server silent this long mid-answer is given up on, even with time left before the deadline.
SILENCE_SECONDS = 10.0


class FetchError(RuntimeError):
    """The page could not be fetched (network, HTTP status, size, time); the message says why."""


@dataclass(frozen=True)
class FetchLimits:
    """How far a fetch may go."""

    max_bytes: int = 10 * 2**20
    timeout_seconds: float = 20.0
    max_redirects: int = 5
    # Tests serve pages on 127.0.0.1; a bot in production never needs to fetch from its own machine.
    allow_loopback: bool = False


@dataclass(frozen=True)
class FetchedPage:
    """A fetched page: where it ended up, what it is, and its bytes (decompressed)."""

    url: str
    kind: str
    content_type: str
    charset: str
    body: bytes
    seconds: float
    redirects: tuple[str, ...] = field(default=())


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address, naming the host in the Host header."""

    def __init__(self, target: CheckedTarget, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, verifying the certificate for the host name."""

    def __init__(self, target: CheckedTarget, timeout: float):
        tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=tls)
        self._tls = tls
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def content_type_of(header: str | None) -> tuple[str, str]:
    """('text/html', 'utf-8') from a Content-Type header; charset '' when not given."""
    if not header:
        return "", ""
    media, _, params = header.partition(";")
    charset = ""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("'\"").lower()
    return media.strip().lower(), charset


class Fetcher:
    """Fetches pages within FetchLimits; built once by the entry point and shared."""

    def __init__(self, limits: FetchLimits = FetchLimits(), resolver: Resolver = system_resolver):
        self.limits = limits
        self.resolver = resolver

    def check(self, url: str) -> CheckedTarget:
        """Clear a URL (or a redirect target) for fetching; UrlRefused says why not."""
        return check_url(url, self.resolver, self.limits.allow_loopback)

    def fetch(self, url: str, accepted: dict[str, str] = ARTICLE_TYPES) -> FetchedPage:
        """GET the page, following at most max_redirects checked redirects; UrlRefused or FetchError on failure.

        `accepted` maps the content types taken to the page kind reported (articles by default).
        """
        started = time.monotonic()
        deadline = started + self.limits.timeout_seconds
        target = self.check(url)
        redirects: list[str] = []
        while True:
            status, location, response_type, body = self._get(target, deadline, accepted)
            if status in REDIRECT_STATUSES:
                if not location:
                    raise FetchError(f"the server answered {status} (a redirect) without saying where to")
                if len(redirects) >= self.limits.max_redirects:
                    raise FetchError(f"the page redirected more than {self.limits.max_redirects} times")
                next_url = urljoin(target.url, location)
                try:
                    target = self.check(next_url)
                except UrlRefused as exc:
                    raise UrlRefused(f"the page redirected to {next_url}, which is refused: {exc}") from None
                redirects.append(target.url)
                continue
            media, charset = response_type
            return FetchedPage(target.url, accepted[media], media, charset, body, time.monotonic() - started, tuple(redirects))

    def _get(self, target: CheckedTarget, deadline: float, accepted: dict[str, str]) -> tuple[int, str | None, tuple[str, str], bytes]:
        """One request: (status, redirect location, (type, charset), body); the body only for a 200."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"the page took longer than {self.limits.timeout_seconds:g} s")
        connection_type = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = connection_type(target, timeout=min(remaining, SILENCE_SECONDS))
        # A server that trickles bytes could hold each read just under the socket timeout;
        # closing the socket at the deadline ends any read in progress.
        watchdog = threading.Timer(remaining, _shut, args=(connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request(
                "GET",
                target.path,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": ", ".join(accepted),
                    "Accept-Encoding": "gzip, identity",
                },
            )
            response = connection.getresponse()
            if time.monotonic() >= deadline:
                # The watchdog cut the headers short: what was read is not the server's answer.
                raise FetchError(f"the page took longer than {self.limits.timeout_seconds:g} s")
            if response.status in REDIRECT_STATUSES:
                return response.status, response.getheader("Location"), ("", ""), b""
            if response.status != 200:
                raise FetchError(f"the server answered {response.status} {response.reason}".rstrip())
            media, charset = content_type_of(response.getheader("Content-Type"))
            if media not in accepted:
                wanted = "a feed" if "feed" in accepted.values() else "HTML, plain text or PDF"
                raise FetchError(f"the page is {media or 'of no stated type'}, not {wanted}")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.limits.max_bytes:
                raise FetchError(f"the page is {int(declared) / 2**20:.1f} MB; the limit is {self.limits.max_bytes / 2**20:.0f} MB")
            body = self._read_body(response, deadline)
            return 200, None, (media, charset), body
        except TimeoutError:
            if time.monotonic() < deadline:
                raise FetchError(f"the server stopped sending for {connection.timeout:g} s") from None
            raise FetchError(f"the page took longer than {self.limits.timeout_seconds:g} s") from None
        except ssl.SSLError as exc:
            raise FetchError(f"the secure connection failed ({exc.reason or exc})") from None
        except (ValueError, UnicodeError) as exc:
            raise FetchError(f"the request could not be made ({exc.__class__.__name__}: {exc})") from None
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise FetchError(f"the page took longer than {self.limits.timeout_seconds:g} s") from None
            raise FetchError(f"the connection failed ({exc.__class__.__name__}: {exc})") from None
        finally:
            watchdog.cancel()
            connection.close()

    def _read_body(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        """The body, streamed: never more than max_bytes, compressed or not, nor past the deadline."""
        limit = self.limits.max_bytes
        gzipped = (response.getheader("Content-Encoding") or "").strip().lower() in ("gzip", "x-gzip")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        parts: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise FetchError(f"the page took longer than {self.limits.timeout_seconds:g} s")
            chunk = response.read1(READ_CHUNK)
            if not chunk:
                break
            if inflater is not None:
                # Inflate at most what is still allowed, so a gzip bomb never grows in memory.
                chunk = inflater.decompress(chunk, limit - size + 1)
                if inflater.unconsumed_tail:
                    raise FetchError(f"the page unpacks to more than {limit / 2**20:.0f} MB")
            size += len(chunk)
            if size > limit:
                raise FetchError(f"the page is larger than {limit / 2**20:.0f} MB")
            parts.append(chunk)
        return b"".join(parts)


def _shut(connection: http.client.HTTPConnection) -> None:
    """Close a connection's socket from another thread (the fetch deadline passed)."""
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
