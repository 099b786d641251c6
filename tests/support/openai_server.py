"""A small scripted OpenAI-compatible server for tests: real HTTP on 127.0.0.1, a random port.

It speaks POST /v1/chat/completions and GET /v1/models. What the "model" says is scripted:
queue Reply objects (`server.script(Reply("… [1]"), Reply(status=500))`) or set a responder,
a function from the request body to a Reply. Every request is recorded (path, headers, body)
so tests can assert on the prompt. Nothing listens beyond 127.0.0.1.

    with OpenAIServer() as server:
        server.script(Reply("Reservoirs are at a third of capacity. [1]"))
        client = LLMClient(server.base_url, "test-model")
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """One scripted reply: assistant text, or an HTTP status, a raw body, a delay."""

    content: str | None = ""
    status: int = 200
    # Seconds to wait before answering (a slow model); cut short when the server stops.
    delay: float = 0.0
    # Sent verbatim instead of a well-formed completion (malformed JSON, wrong shapes).
    raw: bytes | None = None
    finish_reason: str = "stop"
    # Send the body in pieces this many seconds apart (a server that trickles bytes).
    trickle: float = 0.0


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict | None = None

    @property
    def messages(self) -> list[dict]:
        return (self.body or {}).get("messages", [])


def completion(content: str | None, model: str, finish_reason: str = "stop") -> dict:
    """A chat.completion object shaped like OpenAI's."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class OpenAIServer:
    """Scripted /v1/chat/completions and /v1/models on 127.0.0.1 in a background thread."""

    def __init__(self, model: str = "test-model"):
        self.model = model
        self.requests: list[Request] = []
        self.replies: deque[Reply] = deque()
        self.responder: Callable[[dict], Reply] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply | str) -> OpenAIServer:
        """Queue replies for the next requests, in order (a str is a plain 200 reply)."""
        with self._lock:
            self.replies.extend(Reply(r) if isinstance(r, str) else r for r in replies)
        return self

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_reply(self, body: dict) -> Reply:
        with self._lock:
            if self.replies:
                return self.replies.popleft()
        if self.responder is not None:
            return self.responder(body)
        return Reply(raw=b'{"error": {"message": "no reply scripted"}}', status=500)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # keep test output quiet
                pass

            def _send(self, status: int, payload: bytes, content_type: str = "application/json", trickle: float = 0.0) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    if not trickle:
                        self.wfile.write(payload)
                        return
                    for offset in range(0, len(payload), 16):
                        self.wfile.write(payload[offset : offset + 16])
                        self.wfile.flush()
                        if server._stopping.wait(trickle):
                            return
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def do_GET(self):
                server.requests.append(Request("GET", self.path, dict(self.headers.items())))
                if self.path.rstrip("/") == "/v1/models":
                    body = {"object": "list", "data": [{"id": server.model, "object": "model", "owned_by": "tests"}]}
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                server.requests.append(Request("POST", self.path, dict(self.headers.items()), body))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    self._send(400, b'{"error": {"message": "expected a JSON body with messages"}}')
                    return
                if body.get("stream"):
                    self._send(400, b'{"error": {"message": "this test server does not stream"}}')
                    return
                reply = server._next_reply(body)
                if reply.delay:
                    server._stopping.wait(reply.delay)
                if reply.raw is not None:
                    self._send(reply.status, reply.raw)
                elif reply.status != 200:
                    self._send(reply.status, json.dumps({"error": {"message": f"scripted HTTP {reply.status}"}}).encode())
                else:
                    payload = json.dumps(completion(reply.content, body.get("model", server.model), reply.finish_reason)).encode()
                    self._send(200, payload, trickle=reply.trickle)

        return Handler


# ---- helpers that read the prompt like a (very literal) model would ---------------------------


def data_block(text: str, open_tag: str, close_tag: str) -> tuple[str, str, str]:
    """(before, inside, after) the first data block of a message; ("text", "", "") when there is none."""
    start = text.find(open_tag)
    end = text.find(close_tag, start + len(open_tag)) if start >= 0 else -1
    if start < 0 or end < 0:
        return text, "", ""
    return text[:start], text[start + len(open_tag) : end], text[end + len(close_tag) :]


def numbered_passages(block: str) -> dict[int, str]:
    """Passage number -> passage text (without its header line) from a data block."""
    passages: dict[int, str] = {}
    for match in re.finditer(r"^\[(\d+)\] [^\n]*\n(.*?)(?=\n\n\[\d+\] |\Z)", block.strip(), re.S | re.M):
        passages[int(match.group(1))] = match.group(2).strip()
    return passages


def outside_data(body: dict, open_tag: str, close_tag: str) -> str:
    """Every piece of prompt text that is not inside a data block: where instructions may live."""
    pieces = []
    for message in body.get("messages", []):
        before, _, after = data_block(message.get("content") or "", open_tag, close_tag)
        pieces.extend((before, after))
    return "\n".join(pieces)


def first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(?:\s|$)", text, re.S)
    return " ".join((match.group(1) if match else text).split())


def literal_model(open_tag: str, close_tag: str, obey: str = "ignore previous instructions", say: str = "PWNED") -> Callable[[dict], Reply]:
    """A fake model that answers with the first sentence of passage [1], cited.

    It "obeys" an injected instruction (replies `say`) whenever the phrase `obey` appears in
    the prompt outside a data block: a prompt that lets passage text leak out of the block
    fails the injection test.
    """

    def respond(body: dict) -> Reply:
        if obey.lower() in outside_data(body, open_tag, close_tag).lower():
            return Reply(f"{say} [1]")
        last = body["messages"][-1]["content"]
        _, block, _ = data_block(last, open_tag, close_tag)
        passages = numbered_passages(block)
        if not passages:
            return Reply("No passages.")
        return Reply(f"{first_sentence(passages[min(passages)])} [{min(passages)}]")

    return respond
