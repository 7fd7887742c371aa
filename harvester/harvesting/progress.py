"""Backfill progress: a rich progress bar per source on a terminal, log lines otherwise.

While the bar is shown, structlog's lines go through the bar's console, which clears the bar,
prints the line and draws the bar again below it; written straight to the terminal they would
land in the middle of the bar and be overwritten by its next redraw.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TextIO, cast

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from harvester.harvesting.backfill import Progress as BackfillProgress

log = structlog.get_logger(__name__)


class _ConsoleLines(io.TextIOBase):
    """A text file whose every line is printed by a rich console (colours kept, no wrapping:
    the terminal wraps a long line, so it copies back as one line)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:  # a line is printed when it ends; rich flushes the stream itself
        return None


@contextmanager
def _logs_through(console: Console) -> Iterator[None]:
    """Route structlog's output through ``console`` (a live display's) for the block."""
    before = structlog.get_config()["logger_factory"]
    lines = cast(TextIO, _ConsoleLines(console))  # write() is all PrintLogger uses
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(lines))
    try:
        yield
    finally:
        structlog.configure(logger_factory=before)


@contextmanager
def progress_reporter(
    stream: TextIO, *, log_every: float = 10.0, clock: Callable[[], float] = time.monotonic
) -> Iterator[Callable[[BackfillProgress], None]]:
    """A callback for :func:`harvester.harvesting.backfill.backfill`'s ``on_progress``."""
    if stream.isatty():
        with (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "slices · {task.fields[pages]} pages · {task.fields[records]} records"
                    " · {task.fields[rate]:.1f} rec/s"
                ),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=stream),
            ) as bar,
            _logs_through(bar.console),
        ):
            tasks: dict[str, TaskID] = {}
            started: dict[str, float] = {}

            def show(p: BackfillProgress) -> None:
                if p.source not in tasks:
                    tasks[p.source] = bar.add_task(
                        p.source, total=p.slices_total, pages=0, records=0, rate=0.0
                    )
                    started[p.source] = clock()
                elapsed = max(clock() - started[p.source], 1e-9)
                bar.update(
                    tasks[p.source],
                    completed=p.slices_done,
                    pages=p.pages,
                    records=p.records,
                    rate=p.records / elapsed,
                )

            yield show
        return

    last: dict[str, float] = {}

    def log_line(p: BackfillProgress) -> None:
        now = clock()
        if now - last.get(p.source, float("-inf")) >= log_every or p.slices_done == p.slices_total:
            last[p.source] = now
            log.info("backfill progress", **asdict(p))

    yield log_line
