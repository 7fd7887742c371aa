"""The commands that ask the APIs: ``harvest``, ``backfill``, ``try``, and ``parse`` (what a
source reads from a saved response)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from harvester.cli.common import (
    Options,
    SourceList,
    date_option,
    exit_codes,
    fail,
    log,
    source_name,
)
from harvester.errors import ConfigError, ParseError


def harvest(
    ctx: typer.Context,
    topics: Annotated[list[str] | None, typer.Argument(help="Topics (default: all)")] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", parser=source_name, help="Only this source"),
    ] = None,
) -> None:
    """One harvest pass now (from each topic's watermark to now), then exit."""
    from harvester.app import build_app

    options: Options = ctx.obj
    with exit_codes(options):
        settings = options.settings()
        selected = [settings.topic(name) for name in topics] if topics else list(settings.topics)
        if not selected:
            raise ConfigError(f"{settings.path}: no topics configured")
        service = build_app(settings)
        try:
            results = service.harvest_all(selected, only_source=source)
        finally:
            service.close()
    if not results:
        fail(f"no topic uses source {source!r}", 2)
    for r in results:
        c = r.counts
        if r.status == "claimed":
            typer.echo(f"{r.topic} × {r.source}: claimed by another process, skipped")
            continue
        summary = (
            f"{r.topic} × {r.source}: {r.status}; {c.records} records, {c.matched} on topic, "
            f"{c.new_works} new works, {c.new_hits} new for the topic, {c.duplicates} already known"
        )
        if c.skipped:
            first = f": {r.skip_reasons[0]}" if r.skip_reasons else ""
            summary += f", {c.skipped} records skipped{first}"
        if c.errors:
            summary += f", {c.errors} errors ({r.error})"
        typer.echo(options.redact(summary))
    ran = [r for r in results if r.status != "claimed"]
    if ran and not any(r.counts.new_hits for r in ran):
        typer.echo("nothing new")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def backfill(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic")],
    since: Annotated[str, typer.Option("--since", help="First day (YYYY-MM-DD)")],
    until: Annotated[str | None, typer.Option("--until", help="Last day (default: today)")] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", parser=source_name, help="Only this source"),
    ] = None,
    notify: Annotated[
        bool, typer.Option("--notify", help="Send the backfilled studies in digests too")
    ] = False,
    slice_days: Annotated[int, typer.Option("--slice-days", min=1, help="Days per slice")] = 30,
) -> None:
    """Harvest a topic's history in date slices; rerun to resume after an interruption."""
    import signal
    import threading

    from harvester.app import build_app
    from harvester.harvesting.backfill import backfill as run_backfill
    from harvester.harvesting.backfill import backfill_window
    from harvester.harvesting.progress import progress_reporter

    options: Options = ctx.obj
    with exit_codes():
        settings = options.settings()
        chosen = settings.topic(topic)
        start = date_option("--since", since)
        end = date_option("--until", until)
        assert start is not None
        first, last = backfill_window(
            start.date(), end.date() if end else None, today=datetime.now(UTC).date()
        )
        if source is not None and source not in chosen.sources:
            raise ConfigError(
                f"--source: topic {topic!r} does not use {source!r}; "
                f"it uses {', '.join(chosen.sources)}"
            )
        sources = (source,) if source else chosen.sources
        stop = threading.Event()

        def handle(signum: int, _frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        service = build_app(settings)
        try:
            with progress_reporter(sys.stderr) as report:
                results = run_backfill(
                    service,
                    chosen,
                    since=first,
                    until=last,
                    sources=sources,
                    notify=notify,
                    slice_days=slice_days,
                    should_stop=stop.is_set,
                    on_progress=report,
                )
        finally:
            service.close()
    for r in results:
        new = sum(run.counts.new_works for run in r.runs)
        state = "complete" if r.complete and not stop.is_set() else "incomplete (rerun to resume)"
        typer.echo(
            f"{topic} × {r.source}: {state}; {r.slices_total} slices "
            f"({r.slices_skipped} done before), {new} new works"
        )
    if stop.is_set() or not all(r.complete for r in results):
        raise typer.Exit(1)


class TryFormat(StrEnum):
    text = "text"
    json = "json"


def try_(
    ctx: typer.Context,
    topic: Annotated[str | None, typer.Argument(help="A configured topic")] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="A portable query instead of a topic")
    ] = None,
    sources: Annotated[
        SourceList | None,
        typer.Option(
            "--sources",
            parser=SourceList.parse,
            metavar="<str>",
            help="Comma-separated sources [default: the topic's]",
        ),
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="The last N days [default: 30]")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From DATE (YYYY-MM-DD) to now")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Studies to show")] = 10,
    pages: Annotated[
        int, typer.Option("--pages", min=1, help="Request budget: pages per source")
    ] = 3,
    format: Annotated[TryFormat, typer.Option("--format", help="text or json")] = TryFormat.text,
) -> None:
    """What a query brings per source, merged: nothing stored, nothing sent."""
    from harvester.config import parse_settings
    from harvester.errors import QuerySyntaxError
    from harvester.harvesting.trial import Connectors, run_trial, trial_window
    from harvester.harvesting.trial_report import render_trial
    from harvester.query.syntax import parse_query

    options: Options = ctx.obj
    with exit_codes():
        if (topic is None) == (query is None):
            raise ConfigError("give a TOPIC or --query 'QUERY' (one of them)")
        if days is not None and since is not None:
            raise ConfigError("give --days or --since, not both")
        if topic is None and not options.config.exists():
            settings = parse_settings({}, path=str(options.config))  # a query needs no config
        else:
            settings = options.settings()
        raw_queries: dict[str, str] = {}
        if topic is not None:
            chosen = settings.topic(topic)
            parsed, default_sources = chosen.parsed_query, chosen.sources
            raw_queries = dict(chosen.raw_queries)
        else:
            assert query is not None
            try:
                parsed = parse_query(query)
            except QuerySyntaxError as e:
                raise ConfigError(f"--query: query syntax error: {e}") from None
            used = [n for t in settings.topics for n in t.sources]
            default_sources = tuple(dict.fromkeys(used)) or ("pubmed",)
        wanted = sources.names if sources is not None else ()
        start = date_option("--since", since)
        window = trial_window(datetime.now(UTC), days=days, since=start)
        connectors = Connectors.build(settings)
        try:
            result = run_trial(
                connectors,
                parsed,
                wanted or default_sources,
                window,
                raw_queries=raw_queries,
                pages=pages,
                limit=limit,
            )
        finally:
            connectors.close()
    if format is TryFormat.json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(render_trial(result), nl=False)
    if result.sources and all(s.error is not None for s in result.sources):
        raise typer.Exit(1)


def parse(
    files: Annotated[list[Path], typer.Argument(help="Raw API responses as saved from the API")],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            parser=source_name,
            help="The API the files came from",
        ),
    ],
) -> None:
    """Print one JSON Record per line for raw API responses."""
    from harvester.sources import SOURCES, Page

    parser = SOURCES[source]
    failed = False
    out = sys.stdout
    for path in files:
        try:
            body = path.read_bytes()
        except OSError as e:
            fail(f"{path}: cannot read: {e.strerror}", 2)
        try:
            result = parser.parse(Page(source=source, url=str(path), body=body))
        except ParseError as e:
            typer.echo(f"harvester: {path}: {e}", err=True)
            failed = True
            continue
        except RecursionError:  # json recurses once per nesting level: a hostile file
            typer.echo(f"harvester: {path}: nesting too deep", err=True)
            failed = True
            continue
        for skipped in result.skipped:
            log.warning(
                "record skipped", file=str(path), source_id=skipped.source_id, reason=skipped.reason
            )
        for record in result.records:
            out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    if failed:
        raise typer.Exit(1)
