"""A web server on 127.0.0.1 and hostile documents, for the benchmarks that add articles.

Why benchmarks import test support, and only here: adding an article by URL needs a web server
that serves pages (and misbehaves: gzip bombs, trickling bodies, redirect loops), and the
hostile-input benchmark needs the PDF, Word and YAML bombs the tests are built on. Both live in
tests/support (web_server.py, hostile_files.py), checked by the tests; copying them into bench/
would give two versions to keep in step, and neither is part of the bot, so no public API of
bot/ or index/ offers them. This module is the one place in bench/ that imports them
(bench.add_url_latency and bench.hostile_inputs use them through here); bench.discord_world
does the same for the Discord emulator.

The imports happen inside the functions, so a process that never serves a page or makes a
file (a hostile-input child trying one input) does not load them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from types import ModuleType
from typing import Any


@contextmanager
def web_server() -> Iterator[tuple[str, Any]]:
    """tests/support/web_server.py's server on 127.0.0.1 (a free port) with its misbehaving routes; yields (base URL, routes)."""
    from tests.support.web_server import web_server as serve

    with serve() as (base, routes):
        yield base, routes


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    content_type: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> None:
    """A complete response with a Content-Length (tests/support/web_server.send)."""
    from tests.support.web_server import send as respond

    respond(handler, status, body, content_type, headers)


def hostile_files() -> ModuleType:
    """tests/support/hostile_files: generators of hostile and normal documents (PDF, Word, Markdown, pages)."""
    from tests.support import hostile_files as module

    return module
