"""A real HTTP server on 127.0.0.1 that serves articles and misbehaves on request, for fetch tests."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARTICLE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Harbour pilots strike over pensions | Valmora Times</title>
<meta name="author" content="Ana Ruiz"><meta property="article:published_time" content="2026-03-04"></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<article><h1>Harbour pilots strike over pensions</h1>
<p>Harbour pilots in Valmora walked out on Monday after the port authority announced cuts to their pension scheme,
leaving dozens of container ships waiting at anchor outside the breakwater.</p>
<p>The union says the cuts break an agreement signed in 2019, when pilots accepted lower wages in exchange for a
guaranteed pension. The port authority argues that the scheme has run a deficit for six years.</p>
<p>Shipping companies warned that each day of delay costs them hundreds of thousands of euros, and the ministry of
transport has offered to mediate talks between the two sides later this week.</p>
<!-- internal note: SECRET-COMMENT-MARKER must never be indexed -->
<div style="display:none">HIDDEN-MARKER text that readers never see.</div>
<script>var tracker = "SCRIPT-MARKER";</script>
</article>
<footer>Copyright Valmora Times. <a href="/subscribe">Subscribe</a></footer></body></html>
"""


class Routes:
    """What each path does; tests add their own."""

    def __init__(self):
        self.hits: list[str] = []
        self.table: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}

    def add(self, path: str, handler: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.table[path] = handler


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    content_type: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> None:
    """A complete response with a Content-Length."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda h: send(h, status, b"", headers={"Location": location})


def default_routes(routes: Routes) -> None:
    """The pages every fetch test can use."""
    routes.add("/article", lambda h: send(h, 200, ARTICLE_HTML.encode()))
    routes.add("/plain", lambda h: send(h, 200, b"Plain text article.\n\nSecond paragraph.", "text/plain"))
    routes.add("/image", lambda h: send(h, 200, b"\x89PNG\r\n\x1a\n", "image/png"))
    routes.add("/missing", lambda h: send(h, 404, b"not here"))
    routes.add("/no-location", lambda h: send(h, 302, b""))
    routes.add("/loop", redirect("/loop"))
    routes.add("/to-private", redirect("http://10.0.0.1/secret"))
    routes.add("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/"))
    routes.add("/to-file", redirect("file:///etc/passwd"))
    routes.add("/gzip", lambda h: send(h, 200, gzip.compress(ARTICLE_HTML.encode()), headers={"Content-Encoding": "gzip"}))
    for n in range(1, 6):
        routes.add(f"/hop/{n}", redirect(f"/hop/{n - 1}" if n > 1 else "/article", 301 if n % 2 else 307))

    def declared_big(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(500 * 2**20))
        h.end_headers()

    def streamed_big(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        chunk = b"<p>" + b"word " * 2000 + b"</p>"
        try:
            for _ in range(400):  # about 4 MB, no Content-Length
                h.wfile.write(chunk)
        except OSError:
            pass

    def gzip_bomb(h):
        body = gzip.compress(b"\0" * (64 * 2**20), compresslevel=9)
        send(h, 200, body, headers={"Content-Encoding": "gzip"})

    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        try:
            for _ in range(200):
                h.wfile.write(b"<")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def trickle_headers(h):
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def stall(h):
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        h.wfile.write(b"<html><body><p>The first words arrive, then")
        h.wfile.flush()
        time.sleep(3)

    routes.add("/stall", stall)
    routes.add("/declared-big", declared_big)
    routes.add("/streamed-big", streamed_big)
    routes.add("/gzip-bomb", gzip_bomb)
    routes.add("/trickle", trickle)
    routes.add("/trickle-headers", trickle_headers)


@contextmanager
def web_server() -> Iterator[tuple[str, Routes]]:
    """Serve Routes on 127.0.0.1 (a free port) in a thread; yields (base URL, routes)."""
    routes = Routes()
    default_routes(routes)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            routes.hits.append(self.path)
            action = routes.table.get(self.path.split("?")[0])
            if action is None:
                send(self, 404, b"unknown")
            else:
                action(self)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
