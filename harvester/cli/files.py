"""The commands that write files or maintain the database: ``init`` (the example config),
``export`` and ``feed`` (stored works out), ``dedup`` (a reference file), ``db upgrade``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harvester.cli.common import (
    Options,
    date_option,
    env_database_url,
    exit_codes,
    fail,
    writing,
)
from harvester.errors import ParseError

if TYPE_CHECKING:
    from harvester.records import StoredWork


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    ris = "ris"
    bibtex = "bibtex"
    csljson = "csljson"


class DedupFormat(StrEnum):
    csv = "csv"
    ris = "ris"
    jsonl = "jsonl"


def init(
    directory: Annotated[Path, typer.Argument(help="Project directory")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config")] = False,
) -> None:
    """Write a commented example configuration to DIR/config/harvester.toml."""
    target = directory / "config" / "harvester.toml"
    if target.exists() and not force:
        fail(f"{target} exists; use --force to overwrite it", 2)
    example = resources.files("harvester").joinpath("harvester.example.toml")
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"wrote {target}: edit the topic, then run `harvester harvest`")


def export(
    ctx: typer.Context,
    topic: Annotated[str | None, typer.Argument(help="Only this topic's works")] = None,
    format: Annotated[
        ExportFormat, typer.Option("--format", help="Output format")
    ] = ExportFormat.jsonl,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only works first seen on or after DATE (YYYY-MM-DD)"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: stdout)")
    ] = None,
) -> None:
    """Write stored works as JSONL Records, CSV, RIS, BibTeX or CSL-JSON."""
    from harvester.exporters import EXPORTERS

    options: Options = ctx.obj
    with exit_codes():
        settings = options.settings()
        if topic is not None:
            settings.topic(topic)
        start = date_option("--since", since)
        works = _stored_works(settings.database.url, topic, since=start, now=datetime.now(UTC))
    writer = EXPORTERS[format.value]
    if output is None:
        writer(works, sys.stdout)
    else:
        with writing(output), output.open("w", encoding="utf-8", newline="") as fh:
            count = writer(works, fh)
        typer.echo(f"wrote {count} works to {output}", err=True)


def feed(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The Atom file to write")],
    days: Annotated[
        int, typer.Option("--days", min=1, help="Works first seen in the last N days")
    ] = 30,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many entries")] = 200,
    self_url: Annotated[
        str | None,
        typer.Option(
            "--self-url",
            help="The http(s) URL the feed is published at (its rel=self link; none if unset)",
        ),
    ] = None,
) -> None:
    """Write an Atom feed of a topic's recent works (newest first)."""
    from datetime import timedelta

    from harvester.exporters import atom_feed

    options: Options = ctx.obj
    with exit_codes():
        settings = options.settings()
        settings.topic(topic)
        now = datetime.now(UTC)
        since = now - timedelta(days=days)
        works = _stored_works(settings.database.url, topic, since=since, now=now)
    newest = sorted(works, key=lambda w: (w.first_seen or now, w.id))[-limit:]
    with exit_codes():
        data = atom_feed(topic, newest, now=now, self_url=self_url)
    with writing(output):
        output.write_bytes(data)
    typer.echo(f"wrote {len(newest)} entries to {output}", err=True)


def _stored_works(
    url: str, topic: str | None, *, since: datetime | None, now: datetime
) -> list[StoredWork]:
    """The works stored in the database at ``url`` (of ``topic``, first seen since ``since``)."""
    from harvester.store.database import open_engine
    from harvester.store.repository import Repository

    engine = open_engine(url)
    try:
        return Repository(engine, clock=lambda: now).works(topic, since=since)
    finally:
        engine.dispose()


def dedup(
    input: Annotated[Path, typer.Argument(help="CSV, RIS or JSONL records")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: stdout)")
    ] = None,
    format: Annotated[
        DedupFormat | None,
        typer.Option("--format", help="csv, ris or jsonl (default: from the file)"),
    ] = None,
) -> None:
    """Deduplicate a reference file: the same records back, with duplicate_id and version_of."""
    from harvester.dedup.files import dedup_file

    if not input.is_file():
        fail(f"{input}: no such file", 2)
    try:
        with writing(output):
            summary = dedup_file(input, output, format=format.value if format else None)
    except ParseError as e:  # the user's own file: exit 2, like any input they gave
        fail(str(e), 2)
    typer.echo(
        f"{input}: {summary.records} records, {summary.works} works, "
        f"{summary.duplicates} duplicates removed, {summary.linked} version links",
        err=True,
    )


def db_upgrade(ctx: typer.Context) -> None:
    """Apply the database migrations."""
    from harvester.store.database import create, upgrade

    options: Options = ctx.obj
    with exit_codes():
        if options.config.exists():
            url = options.settings().database.url
        else:
            # a database can be migrated without a config: the URL comes from the option/env
            url = options.database_url or env_database_url()
        engine = create(url)
        try:
            revision = upgrade(engine)
        finally:
            engine.dispose()
    typer.echo(f"database at revision {revision}")
