"""Turn uploaded web pages, PDFs and Word documents into article text, safely.

Uploaded files are hostile until read: a page may hide text meant only for the bot, a PDF may
unpack to gigabytes, a .docx may be a zip bomb or carry an XML entity bomb. So:

* indexed text is data: HTML comments, scripts, styles and hidden elements are removed from
  the page before trafilatura looks for the article, and never reach the index;
* every size is bounded before it is reached (file bytes, PDF pages and unpacked streams,
  unpacked zip members), and `extract_bounded` reads the file in a child process with a
  memory and CPU limit and a wall-clock timeout, so a bomb costs a child process, not the bot;
* a file whose name and content disagree (a "report.pdf" that is a web page) is refused.

Run as `python -m index.ingestion.extraction.sandbox`, the module is that child: it reads a JSON header line and the
file's bytes on stdin and writes one JSON object on stdout. It imports only the standard library
at import time; trafilatura, pypdf and python-docx are imported when a file of their kind is read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from index.ingestion.extraction.common import (
    ExtractedArticle,
    ExtractionError,
    ExtractLimits,
    check_size,
    human_size,
)
from index.ingestion.extraction.docx import extract_docx
from index.ingestion.extraction.html import extract_html
from index.ingestion.extraction.pdf import extract_pdf
from index.ingestion.extraction.sniffing import kind_for, sniff

LOGGER = logging.getLogger("policybot." + __name__)
PROJECT_ROOT = Path(__file__).resolve().parents[3]
# ---------------------------------------------------------------------------------------------
# Dispatch, in this process or in a bounded child process


def _extract_kind(kind: str, data: bytes, url: str, limits: ExtractLimits) -> ExtractedArticle:
    if kind == "html":
        return extract_html(data, url, limits)
    article = extract_pdf(data, limits) if kind == "pdf" else extract_docx(data, limits)
    return dataclasses.replace(article, url=url) if url else article


def extract_document(filename: str, data: bytes, url: str = "", limits: ExtractLimits = ExtractLimits()) -> ExtractedArticle:
    """Read an uploaded file in this process by its suffix, after checking that its content matches the suffix."""
    kind = kind_for(Path(filename).suffix)
    check_size(len(data), limits)
    sniff(kind, data, filename=Path(filename).name)
    return _extract_kind(kind, data, url, limits)


def extract_bounded(kind: str, data: bytes, url: str, limits: ExtractLimits = ExtractLimits(), filename: str = "") -> ExtractedArticle:
    """extract_document in a child process limited to limits.memory_bytes and limits.seconds; blocks until done.

    `kind` is 'html', 'pdf' or 'docx' (a suffix such as '.htm' also works). Call it from a
    worker thread in async code: it waits for the child.
    """
    kind = kind_for(kind)
    check_size(len(data), limits)
    sniff(kind, data, filename=filename)
    header = json.dumps({"kind": kind, "url": url, "limits": dataclasses.asdict(limits)}).encode("utf-8")
    # -B: the child writes no bytecode files (it may not write files at all). The project root
    # as working directory makes `-m index.ingestion.extraction.sandbox` importable even without an installed package.
    command = [sys.executable, "-B", "-m", "index.ingestion.extraction.sandbox"]
    started = time.monotonic()
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        start_new_session=True,  # its own process group, so a kill reaches anything it started
    )
    try:
        output, errors = child.communicate(header + b"\n" + data, timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        _kill(child)
        child.communicate()
        raise ExtractionError(f"took longer than {limits.seconds:g} s to read; not added") from None
    finally:
        if child.poll() is None:  # an exception (KeyboardInterrupt...) while waiting: leave no child behind
            _kill(child)
            child.wait()
    return _child_result(child.returncode, output, errors, limits, time.monotonic() - started)


def _kill(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()


def _child_result(returncode: int, output: bytes, errors: bytes, limits: ExtractLimits, elapsed: float) -> ExtractedArticle:
    """The child's answer as an article, or the ExtractionError that explains why there is none."""
    memory_message = f"needed more than {human_size(limits.memory_bytes)} of memory to read; not added"
    if returncode == 0:
        try:
            reply = json.loads(output)
        except ValueError:
            reply = {}
        if "article" in reply:
            return ExtractedArticle(**reply["article"])
        if "error" in reply:
            raise ExtractionError(reply["error"])
        if reply.get("failure") == "memory":
            raise ExtractionError(memory_message)
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise ExtractionError(f"took longer than {limits.seconds:g} s to read; not added")
    if b"MemoryError" in errors or b"Cannot allocate memory" in errors or b"std::bad_alloc" in errors:
        raise ExtractionError(memory_message)
    stderr_tail = errors[-2000:].decode("utf-8", "replace")
    LOGGER.warning("document reader exited with %s after %.1f s: %s", returncode, elapsed, stderr_tail)
    raise ExtractionError(f"the file could not be read (the reader stopped unexpectedly, exit status {returncode}); not added")


def _limit_own_resources(limits: ExtractLimits) -> None:
    """Cap this (child) process: address space, CPU seconds, no core dumps, no files written."""
    try:
        import resource
    except ImportError:  # not on POSIX: the parent's wall-clock timeout still applies
        return

    def cap(which: int, soft: int, hard: int | None = None) -> None:
        _, current_hard = resource.getrlimit(which)
        hard = soft if hard is None else hard
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))

    cap(resource.RLIMIT_AS, int(limits.memory_bytes))
    cpu = max(1, math.ceil(limits.seconds))
    # SIGXCPU at the soft limit ends the child; the kernel's SIGKILL a second later is the backstop.
    cap(resource.RLIMIT_CPU, cpu, cpu + 1)
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_FSIZE, 0)


def _address_space_exhausted(limits: ExtractLimits) -> bool:
    """Whether this process's peak virtual memory (VmPeak) reached 75 % of its RLIMIT_AS."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024 >= 0.75 * limits.memory_bytes
    except (OSError, ValueError, MemoryError):
        pass
    return False


def _child_main() -> int:
    """The child side of extract_bounded: header line and bytes on stdin, one JSON object on stdout."""
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    # Whatever the libraries print goes to stderr; stdout carries only the answer.
    os.dup2(2, 1)
    logging.disable(logging.WARNING)  # pypdf warns once per damaged object; the parent needs only the answer
    header = json.loads(sys.stdin.buffer.readline())
    limits = ExtractLimits(**header["limits"])
    _limit_own_resources(limits)
    # Freed when reading fails, so that telling out-of-memory from other failures has memory to work with.
    reserve = bytearray(1 << 20)
    try:
        data = sys.stdin.buffer.read()
        article = _extract_kind(kind_for(header["kind"]), data, header.get("url", ""), limits)
        reply: dict[str, Any] = {"article": dataclasses.asdict(article)}
    except ExtractionError as exc:
        reply = {"error": str(exc)}
    except MemoryError:
        reply = {"failure": "memory"}
    except Exception as exc:
        # Out of address space, CPython sometimes fails with SystemError ("error return without
        # exception set", mid-import) or ImportError ("failed to map segment") instead of
        # MemoryError. A SystemError under the cap is that; for the rest, a peak near the limit
        # tells the two apart (a failed large mapping never counts toward the peak, hence 75 %).
        del reserve
        if not isinstance(exc, SystemError) and not _address_space_exhausted(limits):
            raise
        reply = {"failure": "memory"}
    json.dump(reply, answer)
    answer.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
