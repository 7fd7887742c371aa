"""Matching many topics against a day's records: every pair (before) and indexed (after).

Usage::

    python benchmarks/matching.py [--topics 10,100,1000,10000] [--records 110000]
        [--check-pairs 1000000] [--baseline-pairs 20000] [--seed 13]

**Records.** ``--records`` records derived from the real ones: every record the sources'
parsers read from ../shared/fixtures (3,467 distinct records, all seven parsers), taken source
by source in turn; the first copy of each is the record itself, later copies have 20 % of
their title and abstract words replaced by title words of the recordings, drawn as often as
titles use them (tests/topic_queries.py ``varied``). Lengths, abstract sections, other-
language abstracts and keywords stay the real ones.

**Topics.** Generated portable queries built from the recordings' title vocabulary
(``generate_queries``): words (half drawn uniformly, half as often as titles use them),
phrases of 2-3 adjacent title words, truncation stems of 4+ letters, OR groups of 1-4 of
those, ANDed concepts, a NOT on 30 %, a top-level OR on 15 %. Size N uses the first N.

**Before.** Every pair evaluated by ``Query.match``: timed on ``--baseline-pairs`` random
(record, topic) pairs, both as ``harvest.py`` calls it today (the Record: tokenized again for
each topic) and on a record tokenized once (``index_record``, tokenizing timed apart, once per
record), then EXTRAPOLATED to N × records pairs.

**After.** ``TopicIndex.build`` over the N topics, then for every record: tokenize it once
and ``index.matching`` it (inverted index of the queries' words → candidate topics → screen
on the record's words → exact evaluator where the screen is not certain). Prints the build
time, tokenize and match time (wall and this process's CPU time: one core), pairs filed,
screened and evaluated against N × records, and matches. Then the CHECK: on random records
covering at least ``--check-pairs`` pairs (all pairs when fewer), the index's topics equal
evaluating every topic's query on the record; any difference is printed and fails the run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harvester.query.match import index_record  # noqa: E402
from harvester.query.presearch import MatchStats, TopicIndex  # noqa: E402
from harvester.query.syntax import Query  # noqa: E402
from harvester.records import Record  # noqa: E402
from tests.topic_queries import generate_queries, recorded_records, varied  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
TARGET_SECONDS = 600  # issue 13: 10,000 topics × 110,000 records in ≤ 10 minutes on one core
CHUNK = 5_000  # records tokenized, then matched, at a time (a day's records, page by page)


class Clock:
    """Wall and CPU seconds of a block, added up."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def fmt_seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s"


def baseline(
    records: list[Record], queries: list[Query], pairs: int, rng: random.Random
) -> tuple[float, float, float]:
    """Seconds per pair re-tokenizing, per pair pre-tokenized, and per record tokenizing."""
    sample = [(rng.randrange(len(records)), rng.randrange(len(queries))) for _ in range(pairs)]
    with Clock() as again:
        for r, q in sample:
            queries[q].match(records[r])
    distinct = sorted({r for r, _ in sample})
    with Clock() as tokenize:
        tokens = {r: index_record(records[r]) for r in distinct}
    with Clock() as once:
        for r, q in sample:
            queries[q].match(tokens[r])
    return again.cpu / pairs, once.cpu / pairs, tokenize.cpu / len(distinct)


def indexed(records: list[Record], topics: dict[int, Query]) -> dict[str, float | int]:
    with Clock() as build:
        index = TopicIndex.build(topics)
    stats = MatchStats()
    tokenize, match = Clock(), Clock()
    for start in range(0, len(records), CHUNK):
        with tokenize:
            chunk = [index_record(r) for r in records[start : start + CHUNK]]
        with match:
            for tokens in chunk:
                index.matching(tokens, stats)
    return {
        "build": build.cpu,
        "tokenize_cpu": tokenize.cpu,
        "match_cpu": match.cpu,
        "wall": build.wall + tokenize.wall + match.wall,
        "filed": stats.filed,
        "screened": stats.screened,
        "evaluated": stats.evaluated,
        "matched": stats.matched,
    }


def check(
    records: list[Record], topics: dict[int, Query], want_pairs: int, rng: random.Random
) -> tuple[int, int, int]:
    """(pairs compared, records compared, records whose answers differ)."""
    index = TopicIndex.build(topics)
    count = min(len(records), -(-want_pairs // len(topics)))
    chosen = rng.sample(range(len(records)), count)
    differ = 0
    for r in chosen:
        tokens = index_record(records[r])
        expected = [t for t, q in topics.items() if q.match(tokens) is not None]
        got = index.matching(tokens)
        if got != expected:
            differ += 1
            print(f"  DIFFERENT: record {r} {records[r].title!r}: {got} != {expected}")
    return count * len(topics), count, differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", default="10,100,1000,10000")
    parser.add_argument("--records", type=int, default=110_000)
    parser.add_argument("--check-pairs", type=int, default=1_000_000)
    parser.add_argument("--baseline-pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    sizes = [int(n) for n in args.topics.split(",")]
    rng = random.Random(args.seed)

    real = recorded_records(FIXTURES)
    records = varied(real, args.records)
    queries = generate_queries(real, max(sizes), seed=args.seed)
    print(
        f"{len(records):,} records derived from the {len(real):,} recorded ones (real first, "
        f"then copies with 20 % of title/abstract words replaced); up to {max(sizes):,} "
        "generated topics from their title vocabulary. Times are CPU seconds of this one "
        "process (one core); wall time beside them (the machine is shared).\n"
    )

    again, once, tokenize = baseline(records, queries, args.baseline_pairs, rng)
    print(
        f"Before, every pair (Query.match), EXTRAPOLATED from {args.baseline_pairs:,} random "
        f"pairs: {again * 1e6:.1f} µs/pair re-tokenizing each call (harvest.py today), "
        f"{once * 1e6:.1f} µs/pair on a record tokenized once (+ {tokenize * 1e3:.2f} ms "
        "per record to tokenize it).\n"
    )
    print(
        "| topics | pairs | before: re-tokenizing | before: tokenized once | after: build "
        "| after: tokenize | after: match | after: total (wall) | filed | screened "
        "| evaluated | matched | checked pairs | differ |"
    )
    print("|---:" * 14 + "|")
    failed = False
    largest: float | None = None
    for n in sizes:
        topics = dict(enumerate(queries[:n]))
        pairs = n * len(records)
        result = indexed(records, topics)
        checked, _, differ = check(records, topics, args.check_pairs, rng)
        failed = failed or differ > 0
        total = float(result["build"]) + float(result["tokenize_cpu"]) + float(result["match_cpu"])
        print(
            f"| {n:,} | {pairs:,} | {fmt_seconds(again * pairs)} "
            f"| {fmt_seconds(once * pairs + tokenize * len(records))} "
            f"| {fmt_seconds(float(result['build']))} "
            f"| {fmt_seconds(float(result['tokenize_cpu']))} "
            f"| {fmt_seconds(float(result['match_cpu']))} "
            f"| {fmt_seconds(total)} ({fmt_seconds(float(result['wall']))}) "
            f"| {result['filed']:,} | {result['screened']:,} | {result['evaluated']:,} "
            f"({int(result['evaluated']) / pairs:.3%}) | {result['matched']:,} "
            f"| {checked:,} | {differ} |",
            flush=True,
        )
        if n == 10_000:
            largest = total
    if largest is not None:
        verdict = "meets" if largest <= TARGET_SECONDS else "MISSES"
        print(
            f"\n10,000 topics × {len(records):,} records: {fmt_seconds(largest)} CPU, "
            f"{verdict} the {TARGET_SECONDS // 60}-minute target (set for 110,000 records)."
        )
    if failed:
        sys.exit("the index's answers differ from evaluating every pair")


if __name__ == "__main__":
    main()
