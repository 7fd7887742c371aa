"""Benchmark: peak memory of the Fetcher against hostile responses (issue 18.5).

A loopback server (tests/hostile_server.py) answers with

1. ``big``: a 200 MB body (a real recorded PubMed efetch page repeated, streamed on the fly
   with a Content-Length);
2. ``big-chunked``: the same without a Content-Length (nothing to refuse up front);
3. ``bomb``: a gzip bomb, about 1 MB on the wire inflating to 1 GiB of zeros.

Each case is fetched in a fresh child process with the fetcher's defaults, and the child's
peak RSS (``ru_maxrss``) is reported beside its RSS before the request and the outcome.
``--code DIR`` runs the children against another checkout's ``harvester`` package (e.g. the
code before the size cap) for comparison.

Run: ``python benchmarks/hostile_response.py [--size-mb 200] [--bomb-mb 1024] [--code DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared/fixtures"
UNIT = FIXTURES / "pubmed/efetch_pubmed_50_records_structured_abstracts.xml"


def child(url: str) -> None:
    from harvester.http.fetcher import Fetcher
    from harvester.http.ratelimit import RateLimiter
    from harvester.http.transport import build_client

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.monotonic()
    with build_client(contact=None) as client:
        fetcher = Fetcher(client, RateLimiter(), max_attempts=1)
        try:
            response = fetcher.get(url)
            outcome = f"accepted {len(response.content):,} bytes"
        except Exception as e:  # the outcome is what is measured
            outcome = f"{type(e).__name__}: {str(e)[:90]}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "before_mb": before / 1024,
                "peak_mb": peak / 1024,
                "seconds": time.monotonic() - began,
                "outcome": outcome,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the big bodies")
    parser.add_argument("--bomb-mb", type=int, default=1024, help="what the gzip bomb inflates to")
    parser.add_argument("--code", type=Path, help="run the children against this checkout")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    sys.path.insert(0, str(ROOT))  # the hostile server lives in tests/
    from tests.hostile_server import HostileServer, gzip_bomb

    unit = UNIT.read_bytes() if UNIT.exists() else b"<PubmedArticle/>"
    cases = {
        "big": ("big", {"size": args.size_mb << 20, "unit": unit}),
        "big-chunked": ("big", {"size": args.size_mb << 20, "unit": unit, "chunked": True}),
        "bomb": ("gzip_bomb", {"inflated": args.bomb_mb << 20}),
    }
    env = dict(os.environ)
    if args.code is not None:
        env["PYTHONPATH"] = str(args.code.resolve())
    code = args.code or ROOT
    print(f"harvester from {code}; big bodies {args.size_mb} MB, bomb -> {args.bomb_mb} MB")
    print(f"{'case':<12} {'RSS before':>10} {'peak RSS':>9} {'seconds':>8}  outcome")
    gzip_bomb(args.bomb_mb << 20)  # compressed once, before any clock runs
    with HostileServer() as server:
        for name, (kind, options) in cases.items():
            server.behave(kind, **options)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", server.url + "/efetch.fcgi"],
                capture_output=True,
                text=True,
                env=env,
                cwd=str(code),
                timeout=600,
                check=False,
            )
            if proc.returncode != 0:
                print(f"{name:<12} child failed: {proc.stderr.strip()[-300:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"{name:<12} {r['before_mb']:>8.0f} MB {r['peak_mb']:>6.0f} MB "
                f"{r['seconds']:>8.2f}  {r['outcome']}"
            )


if __name__ == "__main__":
    main()
