"""Article extraction quality: our `index.ingestion.extraction.extract_html` on 181 real news and blog pages.

The data is scrapinghub's article-extraction-benchmark (../shared/data/README.md): `html/<key>.html.gz`
and `ground-truth.json` ({key: {articleBody, url}}). Scoring is exactly the benchmark's
evaluate.py: the text is split into `\\w+` tokens, each page's predicted and true article bodies
are compared as multisets of word 4-gram shingles (true positives = shared shingles counted with
multiplicity), precision and recall are computed per page (a page with nothing predicted is left
out of the precision average, and scores recall 0), averaged over pages, and F1 = 2PR/(P+R) of
the two averages. ± is 1.96 standard deviations over bootstrap resamples of the pages, as there.

Beside ours, in the same run: plain `trafilatura.extract` with its default settings (what a
user of the library gets), the configuration behind the published trafilatura figure
(`include_comments=False`), and ablations of our own choices (no pre-cleaning, aria-hidden
elements kept, elements with hiding utility classes kept, trafilatura's Markdown with its
inline marks, the headline kept as the text's first line). The published figures of other
extractors (same method) are printed for reference; they were not re-run here.

    .venv/bin/python -m bench.extraction_quality ../shared/data/article-extraction

Writes bench/results/extraction_quality.json (or --json). Nothing else is written.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.machine import median, print_load, print_machine
from bench.results import results_path, write_results
from index.ingestion.extraction import (
    ExtractionError,
    ExtractLimits,
    HtmlVariant,
    extract_bounded,
    extract_html_variant,
)

# F1 with this method, from ../shared/data/README.md (not re-run here).
PUBLISHED = {
    "trafilatura 2.0.0": 0.958,
    "newspaper4k": 0.949,
    "readability-lxml": 0.922,
    "goose3": 0.896,
}
OURS = "ours: extract_html"
_TOKEN = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)


# ---------------------------------------------------------------------------------------------
# The benchmark's scoring (evaluate.py of scrapinghub/article-extraction-benchmark)


def shingles(text: str, n: int = 4) -> Counter:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n])


def shingle_matching(true: str, pred: str) -> tuple[float, float, float]:
    """(tp, fp, fn) of one page, normalised to sum to 1 as in evaluate.py (P and R are unaffected)."""
    truth, predicted = shingles(true), shingles(pred)
    tp = sum((truth & predicted).values())
    fp = sum((predicted - truth).values())
    fn = sum((truth - predicted).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def precision_score(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    if tp == fp == 0:
        return 0.0
    return tp / (tp + fp)


def recall_score(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    if tp == fn == 0:
        return 0.0
    return tp / (tp + fn)


def metrics(rows: list[tuple[float, float, float]]) -> dict[str, float]:
    precision = statistics.mean(precision_score(*row) for row in rows if row[0] + row[1] > 0)
    recall = statistics.mean(recall_score(*row) for row in rows if row[0] + row[2] > 0)
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall)}


def with_confidence(rows: list[tuple[float, float, float]], resamples: int) -> dict[str, float]:
    """The metrics and their ± (1.96 standard deviations over bootstrap resamples of the pages)."""
    result = metrics(rows)
    chance = random.Random(0)
    samples: dict[str, list[float]] = {key: [] for key in result}
    for _ in range(resamples):
        sample = metrics([rows[chance.randrange(len(rows))] for _ in rows])
        for key, value in sample.items():
            samples[key].append(value)
    for key, values in samples.items():
        result[f"{key}_ci"] = 1.96 * statistics.stdev(values) if len(values) > 1 else 0.0
    return result


def page_f1(row: tuple[float, float, float]) -> tuple[float, float, float]:
    precision, recall = precision_score(*row), recall_score(*row)
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


# ---------------------------------------------------------------------------------------------
# The extractors compared


def trafilatura_default(page: bytes) -> str:
    import trafilatura

    # As the benchmark's own runner: the page decoded as UTF-8 text.
    return trafilatura.extract(page.decode("utf-8")) or ""


def trafilatura_published(page: bytes) -> str:
    import trafilatura

    return trafilatura.extract(page.decode("utf-8"), include_comments=False) or ""


def ours(variant: HtmlVariant) -> Callable[[bytes], str]:
    limits = ExtractLimits()

    def run(page: bytes) -> str:
        try:
            # The page's bytes, as an upload arrives: our own charset handling decodes them.
            return extract_html_variant(page, "", limits, variant).text
        except ExtractionError:
            return ""

    return run


NO_CLEANING = HtmlVariant(
    comments=False, unseen_tags=False, hidden_attribute=False, aria_hidden=False, hidden_style=False, hiding_classes=False
)
EXTRACTORS: tuple[tuple[str, Callable[[bytes], str]], ...] = (
    ("trafilatura.extract(), default settings", trafilatura_default),
    ("trafilatura.extract(include_comments=False)", trafilatura_published),
    (OURS, ours(HtmlVariant())),
    ("ours without pre-cleaning", ours(NO_CLEANING)),
    ("ours keeping aria-hidden elements", ours(HtmlVariant(aria_hidden=False))),
    ("ours keeping elements with hiding classes", ours(HtmlVariant(hiding_classes=False))),
    ("ours with Markdown inline marks", ours(HtmlVariant(inline_markup=True))),
    ("ours keeping the title as first heading", ours(HtmlVariant(title_heading=True))),
)


def why(precision: float, recall: float, text: str) -> str:
    """A first guess at what went wrong on a page, from its scores (the docs have the looked-at reasons)."""
    if not text:
        return "nothing extracted (refused or empty)"
    if recall < 0.5 and precision >= 0.8:
        return "most of the article missed"
    if precision < 0.5 and recall >= 0.8:
        return "much extra text around the article"
    if precision < recall:
        return "extra text (boilerplate, related links, captions)"
    return "parts of the article missed"


def load(data_dir: Path) -> tuple[dict, dict[str, bytes]]:
    truth = json.loads((data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {key: gzip.decompress((data_dir / "html" / f"{key}.html.gz").read_bytes()) for key in truth}
    return truth, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the article-extraction folder (ground-truth.json, html/)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for ± (default 1000)")
    parser.add_argument("--bounded", type=int, default=20, help="pages to read through extract_bounded to time the child process")
    parser.add_argument("--json", type=Path, default=results_path("extraction_quality"), help="where to write the results")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # trafilatura logs every discarded candidate

    info = print_machine("article extraction quality (scrapinghub article-extraction-benchmark)")
    import trafilatura

    truth, pages = load(args.data)
    keys = sorted(truth)
    print(f"{len(keys)} pages from {args.data}; trafilatura {trafilatura.__version__}\n", flush=True)

    results: dict = {"pages": len(keys), "trafilatura": trafilatura.__version__, "extractors": {}}
    outputs: dict[str, dict[str, str]] = {}
    rows_by_name: dict[str, list[tuple[float, float, float]]] = {}
    for name, extractor in EXTRACTORS:
        texts, seconds = {}, []
        for key in keys:
            started = time.perf_counter()
            texts[key] = extractor(pages[key])
            seconds.append(time.perf_counter() - started)
        rows = [shingle_matching(truth[key].get("articleBody", ""), texts[key]) for key in keys]
        scores = with_confidence(rows, args.bootstrap)
        scores["median_seconds"] = median(seconds)
        scores["total_seconds"] = sum(seconds)
        scores["empty_pages"] = sum(1 for key in keys if not texts[key])
        results["extractors"][name] = scores
        outputs[name], rows_by_name[name] = texts, rows
        print(f"  measured {name}: F1 {scores['f1']:.3f} in {scores['total_seconds']:.1f} s", flush=True)

    print(f"\n{'extractor':<46} {'precision':>15} {'recall':>15} {'F1':>15} {'median/page':>12} {'empty':>6}")
    for name, scores in results["extractors"].items():
        print(
            f"{name:<46} {scores['precision']:>7.3f} ± {scores['precision_ci']:.3f} {scores['recall']:>7.3f} ± {scores['recall_ci']:.3f} "
            f"{scores['f1']:>7.3f} ± {scores['f1_ci']:.3f} {scores['median_seconds'] * 1000:>9.1f} ms {scores['empty_pages']:>6}"
        )
    for name, f1 in PUBLISHED.items():
        print(f"{name + ' (published)':<46} {'—':>15} {'—':>15} {f1:>7.3f}{'':>8} {'—':>12} {'—':>6}")
    ours_f1 = results["extractors"][OURS]["f1"]
    for name in results["extractors"]:
        if name != OURS:
            print(f"  ours minus {name}: F1 {ours_f1 - results['extractors'][name]['f1']:+.4f}")

    # The pages where ours does worst, to look at.
    worst = sorted(keys, key=lambda key: page_f1(rows_by_name[OURS][keys.index(key)])[2])[:10]
    results["worst"] = []
    print("\nworst ten pages for ours (by per-page F1):")
    for rank, key in enumerate(worst, start=1):
        precision, recall, f1 = page_f1(rows_by_name[OURS][keys.index(key)])
        text = outputs[OURS][key]
        shown = " ".join(text[:300].split())
        guess = why(precision, recall, text)
        print(f"{rank:>2}. {truth[key].get('url', '')}\n    key {key[:12]}  P {precision:.2f} R {recall:.2f} F1 {f1:.2f} — {guess}")
        print(f"    indexed: {shown!r}")
        results["worst"].append(
            {
                "key": key,
                "url": truth[key].get("url", ""),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "guess": guess,
                "indexed_start": text[:300],
                "truth_start": truth[key].get("articleBody", "")[:300],
            }
        )

    if args.bounded:
        sample = keys[: args.bounded]
        in_process, bounded = [], []
        for key in sample:
            started = time.perf_counter()
            ours(HtmlVariant())(pages[key])
            in_process.append(time.perf_counter() - started)
            started = time.perf_counter()
            try:
                extract_bounded("html", pages[key], "")
            except ExtractionError:
                pass
            bounded.append(time.perf_counter() - started)
        overhead = [b - a for a, b in zip(in_process, bounded)]
        # (No peak-RSS figure here: a child's ru_maxrss includes this process's memory from
        # before exec, which is torch-sized once bench.machine has imported torch.)
        results["bounded"] = {
            "pages": len(sample),
            "median_in_process_seconds": median(in_process),
            "median_bounded_seconds": median(bounded),
            "median_overhead_seconds": median(overhead),
            "max_bounded_seconds": max(bounded),
        }
        print(
            f"\nchild process (extract_bounded) on {len(sample)} pages: median {median(bounded) * 1000:.0f} ms per page "
            f"vs {median(in_process) * 1000:.0f} ms in process; overhead median {median(overhead) * 1000:.0f} ms, "
            f"slowest {max(bounded) * 1000:.0f} ms"
        )

    results["busy_at_end"] = print_load()
    path = write_results("extraction_quality", results, info, args.json)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
