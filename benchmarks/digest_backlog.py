"""Benchmark: a digest's peak memory as its backlog grows (issue 13.4).

A SQLite store is filled with N waiting hits of one topic (the real PubMed records of
../shared/fixtures/pubmed/efetch_pubmed_50_records_structured_abstracts.xml that the topic
matches, replicated with distinct work ids and PMIDs; rows written straight into the tables,
as a harvest would have left them). Then, each in a fresh process so the peaks do not mix:
``deliver`` takes the new studies into a digest (``max_items`` = 50) and sends it through a
notifier that accepts and discards it, and ``preview`` builds the same digest without storing
it (``harvester digest --dry-run``). Printed per backlog: peak RSS (``ru_maxrss``) of the call
beyond the process's RSS before it, the total peak, and the seconds. Target: the peak with
100,000 waiting ≤ 1.5 × the peak with 1,000.

Run: ``python benchmarks/digest_backlog.py [--hits 1000,100000] [--code DIR]`` (``--code``: run
the calls against another checkout, e.g. the code before a change, for comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared/fixtures/pubmed/efetch_pubmed_50_records_structured_abstracts.xml"
QUERY = '"natural language processing" OR "machine learning" OR learning OR clinical'
NOW = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)


def settings_data(database: Path) -> dict[str, object]:
    return {
        "database": {"url": f"sqlite:///{database}"},
        "topics": [{"name": "nlp", "query": QUERY, "sources": ["pubmed"]}],
        "subscriptions": [
            {"topics": ["nlp"], "channel": "email", "to": ["team@example.org"], "max_items": 50}
        ],
        "channels": {
            "email": {"host": "127.0.0.1", "port": 2525, "security": "none",
                      "from": "harvester@example.org"}
        },
    }  # fmt: skip


def fill(database: Path, hits: int) -> None:
    """``hits`` waiting hits of topic nlp, oldest first, one work each."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert

    from harvester.query.syntax import parse_query
    from harvester.records import Identifiers
    from harvester.sources.pubmed import parse_efetch
    from harvester.store.database import open_engine
    from harvester.store.models import Provenance, TopicHit, Work

    query = parse_query(QUERY)
    base = [r for r in parse_efetch(FIXTURE.read_bytes()).records if query.match(r)]
    engine = open_engine(f"sqlite:///{database}")
    batch = 2000
    with engine.begin() as conn:
        for start in range(0, hits, batch):
            works, provenance, topic_hits = [], [], []
            for i in range(start, min(start + batch, hits)):
                record = base[i % len(base)]
                pmid = str(90_000_000 + i)
                record = record.with_changes(
                    source_id=pmid, ids=Identifiers(pmid=pmid, doi=f"10.9/{i}")
                )
                seen = NOW - timedelta(seconds=hits - i)
                works.append({"id": i + 1, "title": record.title, "year": record.year,
                              "record": record.to_json(), "created_at": seen,
                              "updated_at": seen})  # fmt: skip
                provenance.append({"work_id": i + 1, "source": "pubmed", "source_id": pmid,
                                   "fetched_at": seen, "record": {}})  # fmt: skip
                topic_hits.append({"topic": "nlp", "work_id": i + 1, "first_seen": seen,
                                   "backfill": False, "source": "pubmed"})  # fmt: skip
            conn.execute(insert(Work), works)
            conn.execute(insert(Provenance), provenance)
            conn.execute(insert(TopicHit), topic_hits)
    engine.dispose()


CHILD = r"""
import json, resource, sys, time
from datetime import datetime
sys.path.insert(0, sys.argv[1])
import harvester
assert harvester.__file__.startswith(sys.argv[1]), harvester.__file__
from harvester.app import build_app
from harvester.config import parse_settings
from harvester.digests.delivery import deliver, preview

class Discard:
    name = "email"
    def __init__(self): self.sent = 0
    def send(self, message, *, skip_parts=0, on_part=None): self.sent += 1

data = json.loads(sys.argv[3])
app = build_app(parse_settings(data, path="bench.toml"),
                clock=lambda: datetime.fromisoformat(sys.argv[4]))
sub = app.settings.subscriptions[0]
app.repo.pending_digests()  # the engine and its first connection before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if sys.argv[2] == "deliver":
    notifier = Discard()
    result = deliver(app, sub, notifier)
    shown, left = result.items, result.waiting
else:
    digest, _ = preview(app, sub)
    shown, left = len(digest.items), sum(s.more for s in digest.sections)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "peak_kb": peak, "seconds": seconds,
                  "shown": shown, "left": left}))
"""


def measure(code: Path, call: str, database: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(code), call, json.dumps(settings_data(database)),
         NOW.isoformat()],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hits", default="1000,100000")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure")
    args = parser.parse_args()
    counts = [int(n) for n in args.hits.split(",")]
    print(f"code: {args.code}")
    print(f"{'waiting':>8} {'call':>8} {'peak MB':>8} {'call MB':>8} {'s':>6} shown/left")
    peaks: dict[str, dict[int, float]] = {"deliver": {}, "preview": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for hits in counts:
            full = Path(tmp) / f"full-{hits}.db"
            fill(full, hits)
            for call in ("deliver", "preview"):
                database = Path(tmp) / f"run-{hits}.db"
                shutil.copy(full, database)  # deliver stores a digest: each call a fresh copy
                m = measure(args.code, call, database)
                peaks[call][hits] = m["peak_kb"] / 1024
                print(
                    f"{hits:>8,} {call:>8} {m['peak_kb'] / 1024:>8.0f} "
                    f"{(m['peak_kb'] - m['before_kb']) / 1024:>8.0f} {m['seconds']:>6.1f} "
                    f"{int(m['shown'])}/{int(m['left'])}"
                )
                database.unlink()
            full.unlink()
    if len(counts) > 1:
        low, high = min(counts), max(counts)
        for call, by in peaks.items():
            print(f"{call}: peak at {high:,} / peak at {low:,} = {by[high] / by[low]:.2f}×")


if __name__ == "__main__":
    main()
