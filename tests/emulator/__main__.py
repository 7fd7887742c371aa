"""Run the emulator by hand: ``python -m tests.emulator --fixtures ../shared/fixtures``."""

from __future__ import annotations

import argparse
import contextlib
import threading
from pathlib import Path

from tests.emulator.server import SOURCES, Emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulator",
        description="Serve the emulated bibliographic APIs on 127.0.0.1.",
    )
    parser.add_argument("--fixtures", type=Path, default=Path("../shared/fixtures"))
    parser.add_argument("--port", type=int, default=8750)
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="SOURCE=PER_SECOND|ncbi",
        help="enforce a request rate on a source (repeatable), e.g. pubmed=ncbi",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    if not (args.fixtures / "PROVENANCE.md").is_file():
        parser.error(f"--fixtures: {args.fixtures} is not the shared fixtures directory")

    emulator = Emulator(args.fixtures, port=args.port, verbose=not args.quiet)
    for spec in args.rate_limit:
        source, _, rate = spec.partition("=")
        if source not in SOURCES or not rate:
            parser.error(f"--rate-limit: expected SOURCE=PER_SECOND|ncbi, got {spec!r}")
        if rate == "ncbi":
            emulator.set_rate_limit(source, ncbi=True)
        else:
            emulator.set_rate_limit(source, float(rate))
    with emulator:
        for name in SOURCES:
            print(f"{name}: {emulator.base_url(name)}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it
            threading.Event().wait()


if __name__ == "__main__":
    main()
