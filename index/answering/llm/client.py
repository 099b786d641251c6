"""A small OpenAI-compatible chat client (standard library only), with safe URLs and bounded replies.

The client is built once by the composition root and passed in; it is synchronous (the
Discord layer calls it through asyncio.to_thread). It does not stream: the whole reply must
be verified before any of it can be shown.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
import urllib.parse
from collections.abc import Sequence

from index.answering.llm.prompts import NOTES

logger = logging.getLogger("policybot." + __name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
# A reply larger than this is not an answer to a question; refuse to buffer it.
MAX_RESPONSE_BYTES = 4 * 2**20


class LLMError(RuntimeError):
    """The model endpoint did not give a usable reply; `kind` is a key of NOTES."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status

    def note(self, notes: dict[str, str] = NOTES) -> str:
        """The short sentence shown above the fallback answer."""
        return notes[self.kind].format(status=self.status)


def redact_url(url: str) -> str:
    """The URL without any user name, password, query or fragment, for logs and messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_base_url(url: str) -> str:
    """A usable base URL without its trailing slash, or ValueError saying what is wrong."""
    url = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL such as http://127.0.0.1:11434/v1, not {redact_url(url)!r}")
    if parts.username or parts.password:
        raise ValueError("must not contain a user name or password: put the key in LLM_API_KEY")
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query or fragment: {redact_url(url)!r}")
    try:
        _ = parts.port  # reading the port is what validates it
    except ValueError:
        raise ValueError(f"has an invalid port: {redact_url(url)!r}") from None
    return url


def check_api_key(key: str) -> bool:
    """True when the key can travel in an HTTP header (printable ASCII, no spaces)."""
    return all(33 <= ord(ch) <= 126 for ch in key)


class LLMClient:
    """A minimal client for POST {base_url}/chat/completions of any OpenAI-compatible server.

    Works with Ollama (http://127.0.0.1:11434/v1), vLLM, llama.cpp's server and OpenAI. One
    HTTP connection per request, so one client can serve several threads. `timeout` bounds the
    whole request (connect, send, wait, read), not each socket operation. The API key is sent
    as a Bearer token and appears in no repr, log line or error message.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.base_url = check_base_url(base_url)
        if not model.strip():
            raise ValueError("the model name must not be empty")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if api_key and not check_api_key(api_key):
            raise ValueError("the API key must be printable ASCII without spaces")
        self.model = model.strip()
        self.timeout = float(timeout)
        self._api_key = api_key or None
        parts = urllib.parse.urlsplit(self.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""  # check_base_url refused a URL without one
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")

    def __repr__(self) -> str:
        return f"LLMClient(base_url={redact_url(self.base_url)!r}, model={self.model!r}, timeout={self.timeout})"

    def chat(self, messages: Sequence[dict], max_tokens: int = 512, temperature: float = 0.0) -> str:
        """The assistant's reply text for these messages; raises LLMError on any failure."""
        body = {"model": self.model, "messages": list(messages), "temperature": temperature, "max_tokens": max_tokens, "stream": False}
        data = self._request("POST", "/chat/completions", body)
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise LLMError("malformed", "the reply has no choices[0].message") from None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers send content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if content is not None and not isinstance(content, str):
            raise LLMError("malformed", "the reply's content is not text")
        if not content or not content.strip():
            raise LLMError("empty", "the reply has no content")
        return content

    def models(self) -> list[str]:
        """The model ids the server offers (GET {base_url}/models); raises LLMError on failure."""
        data = self._request("GET", "/models")
        try:
            return [str(item["id"]) for item in data["data"]]
        except (KeyError, TypeError):
            raise LLMError("malformed", "the reply has no data[].id") from None

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        deadline = time.monotonic() + self.timeout
        headers = {"Accept": "application/json", "User-Agent": "policybot"}
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        where = redact_url(self.base_url)
        try:
            connection.request(method, self._prefix + path, body=payload, headers=headers)
            sock = connection.sock
            _set_remaining(sock, deadline)
            response = connection.getresponse()
            raw = _read_body(response, sock, deadline)
            status = response.status
        except TimeoutError:
            raise LLMError("timeout", f"no reply from {where} within {self.timeout:g} s") from None
        except (http.client.HTTPException, ssl.SSLError) as exc:
            raise LLMError("malformed", f"bad HTTP reply from {where}: {type(exc).__name__}") from None
        except OSError as exc:  # refused, reset, unknown host, unreachable network
            raise LLMError("unreachable", f"cannot reach {where}: {exc.strerror or type(exc).__name__}") from None
        finally:
            connection.close()
        if status in (401, 403):
            raise LLMError("auth", f"{where} refused the request (HTTP {status})", status)
        if not 200 <= status < 300:
            raise LLMError("http", f"{where} answered HTTP {status}", status)
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise LLMError("malformed", f"{where} sent a reply that is not JSON") from None
        if not isinstance(data, dict):
            raise LLMError("malformed", f"{where} sent JSON that is not an object")
        return data


def _set_remaining(sock: socket.socket | None, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if sock is not None:
        sock.settimeout(remaining)


def _read_body(response: http.client.HTTPResponse, sock: socket.socket | None, deadline: float) -> bytes:
    """The whole body, giving up at the deadline even if the server keeps trickling bytes."""
    pieces: list[bytes] = []
    size = 0
    while True:
        _set_remaining(sock, deadline)
        piece = response.read(65536)
        if not piece:
            return b"".join(pieces)
        size += len(piece)
        if size > MAX_RESPONSE_BYTES:
            raise http.client.HTTPException("reply too large")
        pieces.append(piece)
