"""Requests per daily tick, per source, for N topics: shared harvesting against the emulator.

The emulator (tests/emulator) serves a daily delta synthesized from the real recorded
records of ../shared/fixtures: each record copied with a new id, DOI and title suffix and
dated into the tick's window, ``VOLUMES[source] × volume`` records a day. Page sizes are
scaled by the same factor, so the number of requests is that of the full published volume
at the published page size (``--volume 1`` makes it literal, at the cost of matching time).
Topics are generated from the real titles' vocabulary (terms, phrases, truncation,
AND/OR/NOT). Every topic's watermark is a day old, as after yesterday's tick.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import re
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
# records a day, as published (README "Shared harvesting"), and the connectors' page sizes
VOLUMES = {
    "pubmed": 4500,
    "europepmc": 6000,
    "crossref": 25000,
    "arxiv": 1000,
    "biorxiv": 150,
    "medrxiv": 50,
}
PAGES = {"pubmed": 500, "europepmc": 1000, "crossref": 1000, "arxiv": 2000, "biorxiv": 100}
SOURCES = (*VOLUMES, "semanticscholar", "openalex")
OPENALEX_KEY = "emulator-key-7f3a"


def _days(source: str) -> list[datetime]:
    from harvester.sources import SOURCES as REGISTRY

    overlap = REGISTRY[source].DEFAULT_OVERLAP
    first = (NOW - timedelta(days=1) - overlap).date()
    count = (NOW.date() - first).days + 1
    return [
        datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=d)
        for d in range(count)
    ]


def synthesize(emu: Any, volume: float) -> dict[str, int]:
    """Replace the window-mode emulators' corpora with copies of their real records."""
    from tests.emulator.arxiv import Entry
    from tests.emulator.pubmed import Article

    made: dict[str, int] = {}
    serial = itertools.count(1)

    def per_day(source: str) -> int:
        return max(1, round(VOLUMES[source] * volume))

    routes = emu.source("pubmed")
    real = list(routes.corpus)
    articles = []
    for day in _days("pubmed"):
        for n in range(per_day("pubmed")):
            k, a = next(serial), real[n % len(real)]
            pmid = str(90_000_000 + k)
            xml = re.sub(rb"(<PMID[^>]*>)\d+(</PMID>)", rb"\g<1>" + pmid.encode() + rb"\2", a.xml)
            xml = re.sub(rb'(IdType="pubmed">)\d+(<)', rb"\g<1>" + pmid.encode() + rb"\2", xml)
            xml = re.sub(rb'(IdType="doi"[^>]*>)([^<]+)', rb"\1\2.s" + str(k).encode(), xml)
            xml = xml.replace(b"</ArticleTitle>", f" ({k})</ArticleTitle>".encode(), 1)
            articles.append(Article(pmid, day.replace(tzinfo=None, hour=10), xml))
    routes.corpus = tuple(sorted(articles, key=lambda a: (a.entrez, int(a.pmid)), reverse=True))
    routes._by_pmid = {a.pmid: a for a in routes.corpus}
    made["pubmed"] = len(articles)

    for server in ("biorxiv", "medrxiv"):
        routes = emu.source(server)
        real_items = list(routes.corpus[server])
        items = []
        for day in _days(server):
            for n in range(per_day(server)):
                k, item = next(serial), real_items[n % len(real_items)]
                items.append(
                    {
                        **item,
                        "doi": f"{item['doi']}.s{k}",
                        "date": day.date().isoformat(),
                        "title": f"{item.get('title', '')} ({k})",
                        "version": "1",
                    }  # fmt: skip
                )
        routes.corpus = {**routes.corpus, server: tuple(items)}
        routes.page_size = max(1, round(100 * volume))
        made[server] = len(items)

    routes = emu.source("crossref")
    works = []
    for day in _days("crossref"):
        for n in range(per_day("crossref")):
            k, w = next(serial), routes.corpus[n % len(routes.corpus)]
            stamp = f"{day.date().isoformat()}T10:00:00Z"
            title = [f"{(w.get('title') or [''])[0]} ({k})"]
            works.append({**w, "DOI": f"{w['DOI']}.s{k}", "title": title,
                          "indexed": {**w["indexed"], "date-time": stamp}})  # fmt: skip
    routes.corpus = tuple(sorted(works, key=lambda w: (w["indexed"]["date-time"], w["DOI"])))
    routes._by_doi = {w["DOI"].lower(): w for w in routes.corpus}
    made["crossref"] = len(works)

    routes = emu.source("europepmc")
    corpus = {}
    for kind, real_results in routes.corpus.items():
        results = []
        for day in _days("europepmc"):
            for n in range(per_day("europepmc")):
                k, r = next(serial), real_results[n % len(real_results)]
                results.append(
                    {
                        **r,
                        "id": f"9{k}",
                        "pmid": f"9{k}",
                        "doi": f"{r.get('doi')}.s{k}",
                        "title": f"{r.get('title', '')} ({k})",
                        "firstIndexDate": day.date().isoformat(),
                    }  # fmt: skip
                )
        corpus[kind] = tuple(sorted(results, key=lambda r: (r["firstIndexDate"], r["id"])))
    routes.corpus = corpus
    made["europepmc"] = len(corpus["core"])

    routes = emu.source("arxiv")
    real_entries = list(routes.corpus)
    entries = []
    for day in _days("arxiv"):
        for n in range(per_day("arxiv")):
            k, e = next(serial), real_entries[n % len(real_entries)]
            new = f"2601.{k:05d}"
            xml = e.xml.replace(e.arxiv_id.encode(), new.encode())
            stamp = day.replace(hour=10).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
            xml = re.sub(
                rb"<published>[^<]+</published>", b"<published>" + stamp + b"</published>", xml
            )
            xml = xml.replace(b"</title>", f" ({k})</title>".encode(), 1)
            entries.append(Entry(new, day.replace(hour=10), xml))
    routes.corpus = tuple(sorted(entries, key=lambda e: (e.submitted, e.arxiv_id)))
    made["arxiv"] = len(entries)
    return made


def vocabulary() -> list[list[str]]:
    """The real titles of the fixtures, as lists of words."""
    from harvester.sources.pubmed import parse_efetch

    titles = [
        r.title
        for p in sorted((FIXTURES / "pubmed").glob("efetch_*.xml"))
        for r in parse_efetch(p.read_bytes()).records
        if r.title
    ]
    return [w for t in titles if len(w := re.findall(r"[a-z]{4,}", t.lower())) >= 2]


def topic_queries(count: int, seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    titles = vocabulary()
    words = sorted({w for t in titles for w in t})
    out = []
    for _ in range(count):
        title = rng.choice(titles)
        i = rng.randrange(len(title) - 1)
        a, b, c = rng.choice(words), rng.choice(words), rng.choice(words)
        shape = rng.randrange(4)
        if shape == 0:
            out.append(f"{a} OR {b}")
        elif shape == 1:
            out.append(f'"{title[i]} {title[i + 1]}"')
        elif shape == 2:
            out.append(f"{a[:5]}* AND {b}")
        else:
            out.append(f"({a} OR {b}) AND NOT {c}")
    return out


def settings_for(emu: Any, url: str, queries: list[str], volume: float) -> Any:
    from harvester.config import parse_settings

    tables: dict[str, dict[str, Any]] = {}
    for name in SOURCES:
        table: dict[str, Any] = {"base_url": emu.base_url(name), "requests_per_second": 1000.0}
        if name in PAGES and name != "biorxiv":
            table["page_size"] = max(1, round(PAGES[name] * volume))
        tables[name] = table
    tables["pubmed"]["email"] = "bench@example.org"
    tables["crossref"]["mailto"] = "bench@example.org"
    tables["openalex"]["api_key_env"] = "SCALE_OPENALEX_KEY"
    os.environ["SCALE_OPENALEX_KEY"] = OPENALEX_KEY
    topics = [
        {"name": f"t{n:05d}", "query": q, "sources": list(SOURCES), "lookback_days": 1}
        for n, q in enumerate(queries)
    ]
    return parse_settings(
        {"database": {"url": url}, "sources": tables, "topics": topics}, path="scale.toml"
    )


def published_rate(app: Any, name: str) -> float:
    from harvester.config.sections import SourceSettings
    from harvester.sources import SOURCES as REGISTRY

    return float(REGISTRY[name].rate(SourceSettings()))


def tick(topics: int, volume: float, *, per_topic: bool = False) -> dict[str, dict[str, float]]:
    """One daily tick of ``topics`` topics on every source: per source the requests, the
    wall time at the published rate, records fetched and matched, local seconds."""
    from harvester.app import build_app
    from harvester.sources.base import Window
    from harvester.store.batch_runs import RunEnd
    from harvester.store.sharing import SharedStore
    from harvester.store.values import RunCounts
    from tests.emulator import Emulator

    out: dict[str, dict[str, float]] = {}
    with Emulator(FIXTURES) as emu, tempfile.TemporaryDirectory() as tmp:
        emu.server_now = NOW
        synthesize(emu, volume)
        settings = settings_for(
            emu, f"sqlite:///{Path(tmp) / 's.db'}", topic_queries(topics), volume
        )
        app = build_app(settings, clock=lambda: NOW, sleep=lambda _s: None)
        store = SharedStore(app.repo)
        yesterday = NOW - timedelta(days=1)
        names = [t.name for t in settings.topics]
        for name in SOURCES:  # yesterday's tick completed every window
            runs = store.begin_runs(
                name, {t: Window(yesterday - timedelta(days=1), yesterday) for t in names}
            )
            store.finish_runs(
                name, runs, {t: RunEnd("ok", RunCounts(), watermark=yesterday) for t in names}
            )
        for name in SOURCES:
            emu.clear_requests()
            began = time.perf_counter()
            if per_topic:
                results = [app.harvest(t, name) for t in settings.topics]
            else:
                results = app.harvest_shared(list(settings.topics), name)
            took = time.perf_counter() - began
            requests = sum(1 for r in emu.requests if r.source == name)
            records = sum(w.records for w in store.windows(name))
            if per_topic:
                records = sum(r.counts.records for r in results)
            out[name] = {
                "requests": requests,
                "wall_s": requests / published_rate(app, name),
                "records": records,
                "matched": sum(r.counts.matched for r in results),
                "failed": sum(r.status == "failed" for r in results),
                "local_s": took,
            }
        app.close()
    return out


def report(counts: list[int], volume: float) -> list[str]:
    lines = [
        "| source | mode | before: requests/topic (10 topics, per topic) | "
        + " | ".join(f"after: requests at {n:,} (wall s at published rate)" for n in counts)
        + " | after: records fetched / matched at the largest N | local s at the largest N |",
        "|---|---|---:|" + "---:|" * len(counts) + "---:|---:|",
    ]
    from harvester.harvesting.shared import mode_of

    before = tick(10, volume, per_topic=True)
    after = {n: tick(n, volume) for n in counts}
    top = after[counts[-1]]
    for name in SOURCES:
        cells = [
            f"{after[n][name]['requests']:.0f} ({after[n][name]['wall_s']:.0f})" for n in counts
        ]
        lines.append(
            f"| {name} | {mode_of(name).kind} | {before[name]['requests'] / 10:.1f} | "
            + " | ".join(cells)
            + f" | {top[name]['records']:.0f} / {top[name]['matched']:.0f}"
            + f" | {top[name]['local_s']:.1f} |"
        )
    first, last = after[counts[0]], after[counts[-1]]
    ratio = [
        f"{name} {last[name]['requests'] / max(1, first[name]['requests']):.2f}×"
        for name in SOURCES
    ]
    lines.append("")
    lines.append(f"requests at {counts[-1]:,} ÷ at {counts[0]:,} topics: " + ", ".join(ratio))
    lines.append(f"(volume × {volume:g}, page sizes × {volume:g}: the requests of the full volume)")
    return lines


def per_day_note() -> str:
    return ", ".join(
        f"{s} {v:,}/day at {PAGES.get(s, 100):,}/page ≈ {math.ceil(v / PAGES.get(s, 100))} pages"
        for s, v in VOLUMES.items()
    )


def main() -> None:
    """The requests section of scale.py on its own (``scale.py --skip-tick --skip-ingest``)."""
    import argparse
    import logging

    from harvester.logs import configure_logging

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--topics", default="10,100,1000,10000", help="topic counts")
    parser.add_argument("--volume", type=float, default=0.02, help="share of published volume")
    args = parser.parse_args()
    configure_logging("json", level=logging.WARNING)
    print(f"(daily deltas synthesized from the real fixtures' records: {per_day_note()})\n")
    for line in report([int(x) for x in args.topics.split(",")], args.volume):
        print(line, flush=True)


__all__ = ["report", "tick", "synthesize", "topic_queries", "per_day_note", "replace"]

if __name__ == "__main__":
    main()
