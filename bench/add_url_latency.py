"""Time from `/add url:` to the article being answerable, for articles served by a local web server.

    .venv/bin/python -m bench.add_url_latency ../shared/data/ungdc/ungdc_2015_2024.jsonl [--articles 6] [--json FILE]

Each article is a 2024 UN General Debate speech served as an HTML page (navigation, footer
and article markup around the text) from a web server on 127.0.0.1. For each one: `/add url:`
through the Discord emulator as an admin, until the final "Added …" message; then `/ask` a
question built from one of its sentences, until the answer cites it. Baseline in the same run:
`/add file:` with the same article as a Markdown file (no fetch, no HTML extraction). Each
article is removed again (`/remove`) before it is added the other way, so the two ways index
the same text into the same index. Writes bench/results/add_url_latency.json (or --json).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import tempfile
import time
from pathlib import Path

from bench.discord_world import SEED_CORPUS, bench_settings, connected_bot, emulator_problems, prepare_library
from bench.local_web import send, web_server
from bench.machine import median, print_load, print_machine
from bench.results import write_results
from bench.speeches import load_speeches, speech_markdown
from bot.services import load_embedder


def speech_page(row: dict) -> str:
    """A speech as a news-like web page: navigation, the article, a footer."""
    paragraphs = "".join(f"<p>{html.escape(p.strip())}</p>\n" for p in row["text"].split("\n") if p.strip())
    title = html.escape(row["title"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title} | UN Watch</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/speeches'>Speeches</a> <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1>\n{paragraphs}</article>"
        "<footer>© UN Watch · <a href='/subscribe'>Subscribe</a> · <a href='/privacy'>Privacy</a></footer></body></html>"
    )


def question_from(row: dict) -> tuple[str, str]:
    """A question whose answer is a distinctive sentence of the speech, and a phrase that shows it was cited."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", row["text"]) if 12 <= len(s.split()) <= 30]
    sentence = sentences[len(sentences) // 3]
    words = re.findall(r"\w+", sentence)
    return f"What did {row['title'].split(',')[0]} say about {' '.join(words[3:11])}?", row["title"]


async def add_then_ask(emulator, admin, command: str, options: dict, question: str, title: str) -> dict:
    """One /add (url or file) then one /ask; seconds for each phase and whether the answer cites the article."""
    started = time.perf_counter()
    added = await emulator.slash("add", options, subcommand=command, user=admin)
    final = await added.wait_final(lambda m: m["content"].startswith(("Added", "Updated", "Nothing", "Sorry")), timeout=300)
    added_at = time.perf_counter()
    if not final["content"].startswith(("Added", "Updated")):
        raise RuntimeError(f"/add {command} failed: {final['content']}")
    asked = await emulator.slash("ask", {"question": question}, user=admin)
    answer = await asked.wait_final(timeout=120)
    answered_at = time.perf_counter()
    cited = any(title in (field.get("value") or "") for embed in answer["embeds"] for field in embed.get("fields") or [])
    removed = await emulator.slash("remove", {"article": title}, user=admin)
    await removed.wait_final(lambda m: m["content"].startswith(("Removed", "Nothing")), timeout=300)
    return {"add_s": added_at - started, "ask_s": answered_at - added_at, "total_s": answered_at - started, "cited": cited}


async def measure(rows: list[dict], settings, embedder) -> dict:
    """Add each article by URL and, as the baseline, by file, alternating; collect the timings."""
    results: dict[str, list[dict]] = {"url": [], "file": []}
    with web_server() as (base, routes):
        for number, row in enumerate(rows):
            routes.add(f"/speech/{number}", lambda h, page=speech_page(row): send(h, 200, page.encode()))
        async with connected_bot(settings.with_changes(fetch_allow_loopback=True), embedder) as (emulator, bot, _):
            for number, row in enumerate(rows):
                question, title = question_from(row)
                # Alternate which way goes first, so neither always meets a warmer cache.
                ways = ["url", "file"] if number % 2 == 0 else ["file", "url"]
                for way in ways:
                    if way == "url":
                        options = {"url": f"{base}/speech/{number}"}
                    else:
                        options = {"file": emulator.add_attachment(f"speech-{number}.md", speech_markdown(row).encode())}
                    results[way].append(await add_then_ask(emulator, emulator.admin, way, options, question, title))
            problems = emulator_problems(emulator)
    return {"results": results, "problems": problems}


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("speeches", type=Path, help="ungdc_2015_2024.jsonl")
    parser.add_argument("--articles", type=int, default=6)
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/add_url_latency.json)")
    args = parser.parse_args()
    machine = print_machine("/add url: → answerable")
    rows = load_speeches(args.speeches, years=[2024])[: args.articles]
    settings = bench_settings(SEED_CORPUS, Path("unused"))
    embedder = load_embedder(settings)
    with tempfile.TemporaryDirectory(prefix="policybot-add-url-") as work:
        corpus, index_dir = prepare_library(SEED_CORPUS, Path(work), embedder)
        measured = asyncio.run(measure(rows, settings.with_changes(corpus_dir=corpus, index_dir=index_dir), embedder))
    print(f"{len(rows)} articles (2024 UN speeches served as web pages from 127.0.0.1), medians:")
    print(f"{'way':6} {'add (s)':>8} {'then ask (s)':>13} {'answerable (s)':>15} {'answer cites it':>16}")
    for way, rows_done in measured["results"].items():
        cited = sum(r["cited"] for r in rows_done)
        print(
            f"{way:6} {median([r['add_s'] for r in rows_done]):8.2f} {median([r['ask_s'] for r in rows_done]):13.2f} "
            f"{median([r['total_s'] for r in rows_done]):15.2f} {cited:>10}/{len(rows_done)}"
        )
    url_total = median([r["total_s"] for r in measured["results"]["url"]])
    file_total = median([r["total_s"] for r in measured["results"]["file"]])
    print(f"fetch + extraction cost: {url_total - file_total:+.2f} s ({url_total / file_total:.2f}x the file baseline)")
    if measured["problems"]:
        print("emulator problems:", *measured["problems"], sep="\n  ")
    load = print_load()
    path = write_results("add_url_latency", {**measured, "load_end": load}, machine, args.json)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
