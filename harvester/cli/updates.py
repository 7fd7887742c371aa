"""`harvester updates [--since DATE] [--source S]`: the update job once, by hand (issue 16)."""

from __future__ import annotations

from typing import Annotated

import typer

from harvester.cli.common import Options, date_option, exit_codes
from harvester.errors import ConfigError


def updates(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Read notices indexed since this UTC day (YYYY-MM-DD)"),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Only this source (crossref, pubmed, openalex)")
    ] = None,
) -> None:
    """Fetch the retraction / correction / expression-of-concern notices indexed since the last
    run and apply them to stored works (a notice about a work not stored yet waits for it)."""
    from harvester.app import build_app
    from harvester.harvesting.updates import NOTICE_SOURCES, run_updates

    options: Options = ctx.obj
    with exit_codes(options):
        start = date_option("--since", since)
        if source is not None and source not in NOTICE_SOURCES:
            raise ConfigError(
                f"--source: {source!r} lists no notices; known: {', '.join(NOTICE_SOURCES)}"
            )
        service = build_app(options.settings())
        try:
            runs = run_updates(service, sources=[source] if source else None, since=start)
        finally:
            service.close()
    if not runs:
        typer.echo(
            "no configured topic uses a source that lists notices: " + ", ".join(NOTICE_SOURCES)
        )
    for r in runs:
        window = f"{r.window.start:%Y-%m-%d %H:%M} → {r.window.end:%Y-%m-%d %H:%M} UTC"
        if r.status == "claimed":
            typer.echo(f"{r.source}: claimed by another process, skipped")
            continue
        line = (
            f"{r.source}: {r.status}; {r.notices} notices read ({window}), "
            f"{r.applied} new updates to stored works, {r.pending} waiting for their study, "
            f"{r.requests} requests"
        )
        if r.skipped:
            line += f", {r.skipped} records skipped"
        if r.error:
            line += f" ({r.error})"
        typer.echo(options.redact(line))
    if any(r.status == "failed" for r in runs):
        raise typer.Exit(1)
