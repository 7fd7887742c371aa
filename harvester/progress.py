"""Backfill progress: a rich progress bar per source on a terminal, log lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

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

from harvester.backfill import Progress as BackfillProgress

log = structlog.get_logger(__name__)


@contextmanager
def progress_reporter(
    stream: TextIO, *, log_every: float = 10.0, clock: Callable[[], float] = time.monotonic
) -> Iterator[Callable[[BackfillProgress], None]]:
    """A callback for :func:`harvester.backfill.backfill`'s ``on_progress``."""
    if stream.isatty():
        with Progress(
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
        ) as bar:
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
            log.info(
                "backfill progress",
                source=p.source,
                slices_done=p.slices_done,
                slices_total=p.slices_total,
                pages=p.pages,
                records=p.records,
                new_works=p.new_works,
            )

    yield log_line
