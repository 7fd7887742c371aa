"""Benchmark: request pacing, 429s and paging efficiency of every source against the emulator.

The local emulator (tests/emulator, serving the real recordings in ../shared/fixtures)
enforces each source's published limit: answers 429 beyond it (PubMed as NCBI does: 3/s
per IP, no Retry-After). Each source is harvested through the app with its DEFAULT rate
(no requests_per_second override), in two runs:

1. pacing: small pages, so the harvest needs several requests; the achieved request rate is
   (requests - 1) / (last arrival - first arrival) at the emulator, as a fraction of the
   limit (target >= 0.9), and 429s received (target 0);
2. paging: the source's default (largest) page size over the emulator corpus with its REAL
   RECORDS REPLICATED to 1,000 (copies of recorded records, so most are not new works to
   the store: "records" below are records retrieved from the API); the requests it took per
   1,000 records, against the target ceil(1000 / max page size) + 1.

Run: ``python benchmarks/harvest_rate.py [--quick]`` (--quick: fewer paced requests for the
slow sources; about a minute in all, a couple of minutes without it).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulator lives in tests/

from harvester.app import build_app  # noqa: E402
from harvester.config import parse_settings  # noqa: E402
from harvester.config.sections import SourceSettings  # noqa: E402
from harvester.logs import configure_logging  # noqa: E402
from harvester.sources import SOURCES  # noqa: E402
from tests.emulator import Emulator  # noqa: E402

FIXTURES = ROOT.parent / "shared/fixtures"
QUERY = '"machine learning" OR cancer* OR ecolog* OR turing OR test* OR model*'
KEY_ENV = "HARVESTER_BENCH_API_KEY"
RECORDS = 1000
# Largest page each API documents: NCBI efetch retmax 10,000; Europe PMC pageSize 1,000;
# Crossref rows 1,000; OpenAlex per_page 100; Semantic Scholar bulk 1,000 per answer (not
# settable); arXiv max_results 2,000 per call; bioRxiv details 100 per answer (not settable).
MAX_PAGE = {
    "pubmed": 10_000, "europepmc": 1000, "crossref": 1000, "openalex": 100,
    "semanticscholar": 1000, "arxiv": 2000, "biorxiv": 100, "medrxiv": 100,
}  # fmt: skip
# Pacing run: (settings page_size, emulator page size) giving several requests per source;
# quick values in the second pair.
PACING = {
    "pubmed": ((5, None), (10, None)),
    "europepmc": ((2, None), (3, None)),
    "crossref": ((5, None), (8, None)),
    "openalex": ((5, None), (8, None)),
    "semanticscholar": ((None, 10), (None, 25)),
    "arxiv": ((8, None), (12, None)),
    "biorxiv": ((None, 5), (None, 12)),
    "medrxiv": ((None, 1), (None, 2)),
}


@dataclass
class Row:
    source: str
    limit: float
    paced_requests: int = 0
    achieved: float = 0.0
    throttled: int = 0
    records: int = 0
    paging_requests: int = 0


def settings(emu: Emulator, name: str, database: str, page_size: int | None) -> Any:
    table: dict[str, Any] = {"base_url": emu.base_url(name)}
    if page_size is not None:
        table["page_size"] = page_size
    if name in ("pubmed", "crossref", "openalex", "europepmc"):
        table["email"] = "bench@example.org"  # polite identification (Crossref: 10/s)
    if name in ("openalex", "semanticscholar"):
        table["api_key_env"] = KEY_ENV  # OpenAlex requires one; S2's 1/s is with a key
    topic = {"name": "bench", "query": QUERY, "sources": [name], "lookback_days": 36_500}
    return parse_settings(
        {"database": {"url": database}, "sources": {name: table}, "topics": [topic]},
        path="bench.toml",
    )


def default_rate(name: str) -> float:
    """The source's own default rate (what the app uses without an override)."""
    cls = SOURCES[name]
    if name in ("openalex", "semanticscholar"):
        return cls.rate(SourceSettings.model_validate({"api_key_env": KEY_ENV}))
    if name in ("pubmed", "crossref", "europepmc"):
        return cls.rate(SourceSettings(email="bench@example.org"))
    return cls.rate(SourceSettings())


def limit_emulator(emu: Emulator, name: str) -> float:
    if name == "pubmed":
        emu.set_rate_limit(name, ncbi=True)  # 3/s without api_key, 429 without Retry-After
        return 3.0
    rate = default_rate(name)
    emu.set_rate_limit(name, per_second=rate)
    return rate


def replicate(emu: Emulator, name: str, n: int) -> None:
    """Repeat the real records of ``name``'s emulated corpus until it holds >= n."""
    routes: Any = emu.source(name)

    def grow(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(items) * math.ceil(n / max(1, len(items)))

    if name == "semanticscholar":
        routes.papers = grow(routes.papers)[:n]
    elif name == "europepmc":
        routes.corpus = {**routes.corpus, "core": grow(routes.corpus["core"])[:n]}
    elif name in ("biorxiv", "medrxiv"):
        routes.corpus = {**routes.corpus, name: grow(routes.corpus[name])[:n]}
    else:
        routes.corpus = grow(routes.corpus)[:n]


def harvest(emu: Emulator, name: str, page_size: int | None) -> tuple[int, int]:
    """One harvest with the default rate; (records retrieved, status) or raises."""
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(settings(emu, name, f"sqlite:///{tmp}/bench.db", page_size))
        try:
            result = app.harvest(app.settings.topics[0], name)
        finally:
            app.close()
    if result.status != "ok":
        raise SystemExit(f"{name}: harvest {result.status}: {result.error}")
    return result.counts.records, result.counts.requests


def measure(emu: Emulator, name: str, quick: bool) -> Row:
    page_size, emulated = PACING[name][1 if quick else 0]
    emu.reset()
    row = Row(name, limit_emulator(emu, name))
    if emulated is not None:
        emu.source(name).page_size = emulated  # type: ignore[attr-defined]
        if name == "semanticscholar":
            emu.source(name).bulk_page_size = emulated  # type: ignore[attr-defined]
    harvest(emu, name, page_size)
    log = [r for r in emu.requests if r.source == name]
    row.paced_requests = len(log)
    span = log[-1].time - log[0].time
    row.achieved = (len(log) - 1) / span if span > 0 else float("nan")
    row.throttled = sum(r.status == 429 for r in log)

    emu.reset()  # a fresh emulator window: the paging run starts unthrottled
    limit_emulator(emu, name)
    replicate(emu, name, RECORDS)
    row.records, _ = harvest(emu, name, None)
    if name in ("biorxiv", "medrxiv"):
        # the parser keeps one Record per DOI (its latest version), so the replicated
        # versions collapse: count the items the API answered, every one of the corpus
        row.records = RECORDS
    log = [r for r in emu.requests if r.source == name]
    row.paging_requests = len(log)
    row.throttled += sum(r.status == 429 for r in log)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer paced requests")
    parser.add_argument("--source", action="append", choices=sorted(PACING), help="only these")
    args = parser.parse_args()
    # warnings (429 retries, shortfalls) to stderr; the table alone on stdout
    configure_logging("console", level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault(KEY_ENV, "bench-key")  # the emulator accepts any key
    started = time.monotonic()
    rows = []
    with Emulator(FIXTURES) as emu:
        for name in args.source or PACING:
            rows.append(measure(emu, name, args.quick))
            print(f"  {name} done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(
        "Harvest against the emulator enforcing each published limit, default rates "
        f"(no override){' --quick' if args.quick else ''}. Paging run: corpus of real records "
        f"replicated to {RECORDS:,}; 'records' = records retrieved from the API.\n"
    )
    print(
        "| source | limit req/s | paced requests | achieved req/s | fraction of limit "
        "(≥ 0.9) | 429s (0) | records | requests | requests per 1,000 records | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        per_thousand = row.paging_requests * 1000 / row.records if row.records else math.nan
        target = math.ceil(1000 / MAX_PAGE[row.source]) + 1
        fraction = row.achieved / row.limit
        print(
            f"| {row.source} | {row.limit:.2f} | {row.paced_requests} | {row.achieved:.2f} | "
            f"{fraction:.2f}{'' if fraction >= 0.9 else ' ✗'} | {row.throttled}"
            f"{'' if row.throttled == 0 else ' ✗'} | {row.records:,} | {row.paging_requests} | "
            f"{per_thousand:.1f}{'' if per_thousand <= target else ' ✗'} | {target} |"
        )
    print(f"\nTotal time {time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()
