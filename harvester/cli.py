"""The command line: parses arguments, calls the app, prints. Nothing else.

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import structlog
import typer

from harvester import __version__
from harvester.config import Settings, default_config_path, load_settings
from harvester.errors import ConfigError, HarvesterError, ParseError
from harvester.logs import SecretRedactor, configure_logging

if TYPE_CHECKING:
    from harvester.digests.delivery import DeliveryResult
    from harvester.store.locks import DaemonLock

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="harvester: new studies on your topics from the public bibliographic APIs.",
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")

log = structlog.get_logger(__name__)


class LogFormat(StrEnum):
    json = "json"
    console = "console"


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    ris = "ris"
    bibtex = "bibtex"
    csljson = "csljson"


@dataclass
class Options:
    config: Path
    database_url: str | None
    log_format: LogFormat | None
    # the configured secrets, once read: what a command prints is cleaned of them
    redactor: SecretRedactor | None = None
    command: str | None = None  # the subcommand, and whether it sends (secrets only where used)
    sending: bool = False

    def settings(self, *, sending: bool | None = None) -> Settings:
        """The validated settings; ``sending`` (default: whether the subcommand sends) asks
        for every channel secret and leaves the ``dry_run`` subscriptions out."""
        if sending is not None:
            self.sending = sending
        settings = load_settings(self.config, database_url=self.database_url)
        configure_logging(
            self.log_format.value if self.log_format else None, secrets=settings.secret_values()
        )
        self.redactor = SecretRedactor(settings.secret_values())
        _secrets_for_command(settings, self.command, sending=self.sending)
        if self.sending:
            settings = _without_dry_run(settings, self.command)
        return settings

    def redact(self, text: str) -> str:
        return self.redactor.redact(text) if self.redactor is not None else text


# Secrets only where used: these commands send digests, so they need every channel secret;
# these harvest, so an unset API key is worth a warning (the source runs without it, or is
# skipped when it needs one). Everything else reads only.
_SENDING = frozenset({"run", "digest"})
_HARVESTING = frozenset({"run", "harvest", "backfill"})


def _secrets_for_command(settings: Settings, command: str | None, *, sending: bool) -> None:
    if command in _HARVESTING:
        for missing in settings.missing_secrets():
            if missing.used_by == "source":
                log.warning(
                    "api key not set", key=missing.key, variable=missing.variable,
                    hint="the source runs without it (or is skipped if it needs one)",
                )  # fmt: skip
    if command == "run":  # the daemon, once at start (`check` lists these too)
        from harvester.harvesting.check import is_placeholder

        for name, src in settings.sources.items():
            if is_placeholder(src.contact):
                log.warning(
                    "placeholder contact address", source=name, address=src.contact,
                    hint=f"put your own address in [sources.{name}]: the API may block you",
                )  # fmt: skip
    if sending:
        settings.require_channel_secrets()


def _without_dry_run(settings: Settings, command: str | None) -> Settings:
    """For the commands that send: the settings without the ``dry_run`` subscriptions, each
    named in a warning; when nothing is left to send, a ConfigError that says how to send."""
    held = [(i, s) for i, s in enumerate(settings.subscriptions) if s.dry_run]
    if not held:
        return settings
    for i, sub in held:
        log.warning(
            "subscription not sent: dry_run = true", subscription=f"subscriptions[{i}]",
            key=sub.key, hint="preview with `harvester digest --dry-run`",
        )  # fmt: skip
    kept = tuple(s for s in settings.subscriptions if not s.dry_run)
    if not kept and command == "digest":
        i = held[0][0]
        raise ConfigError(
            f"{settings.path}: subscriptions[{i}].dry_run: this subscription only previews "
            "(`harvester digest --dry-run`); to send it, put your own addresses in `to`, "
            "fill in [channels.email] and delete `dry_run = true`"
        )
    return settings.model_copy(update={"subscriptions": kept})


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"harvester: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _writing(path: Path | None) -> Iterator[None]:
    """Around the code that writes ``path`` (a file, or a directory of files): a path that
    cannot be written is the user's to fix, so it is one line and exit 2, not a traceback.
    ``None`` (stdout) passes errors on unchanged."""
    try:
        yield
    except OSError as e:
        if path is None:
            raise
        _fail(f"cannot write {e.filename or path}: {e.strerror or e}", 2)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"harvester {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Configuration file [default: $HARVESTER_CONFIG or config/harvester.toml]",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Database URL [default: $HARVESTER_DATABASE_URL or the config]"
        ),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--log-format", help="json or console [default: console on a terminal]"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    configure_logging(log_format.value if log_format else None)
    # the group callback knows the subcommand but not its options: `digest --dry-run` says
    # itself that it sends nothing (Options.settings(sending=False))
    command = ctx.invoked_subcommand
    sending = command in _SENDING
    ctx.obj = Options(
        config or default_config_path(), database_url, log_format, command=command, sending=sending
    )


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Project directory")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config")] = False,
) -> None:
    """Write a commented example configuration to DIR/config/harvester.toml."""
    target = directory / "config" / "harvester.toml"
    if target.exists() and not force:
        _fail(f"{target} exists; use --force to overwrite it", 2)
    example = resources.files("harvester").joinpath("harvester.example.toml")
    with _writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    typer.echo(f"wrote {target}: edit the topic, then run `harvester harvest`")


@app.command()
def harvest(
    ctx: typer.Context,
    topics: Annotated[list[str] | None, typer.Argument(help="Topics (default: all)")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source")] = None,
) -> None:
    """One harvest pass now (from each topic's watermark to now), then exit."""
    from harvester.app import build_app
    from harvester.config import SOURCE_NAMES

    options: Options = ctx.obj
    with _errors(options):
        settings = options.settings()
        if source is not None and source not in SOURCE_NAMES:
            raise ConfigError(
                f"--source: unknown source {source!r}; known: {', '.join(SOURCE_NAMES)}"
            )
        selected = [settings.topic(name) for name in topics] if topics else list(settings.topics)
        if not selected:
            raise ConfigError(f"{settings.path}: no topics configured")
        service = build_app(settings)
        try:
            results = service.harvest_all(selected, only_source=source)
        finally:
            service.close()
    if not results:
        _fail(f"no topic uses source {source!r}", 2)
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


@app.command()
def parse(
    files: Annotated[list[Path], typer.Argument(help="Raw API responses as saved from the API")],
    source: Annotated[str, typer.Option("--source", help="The API the files came from")],
) -> None:
    """Print one JSON Record per line for raw API responses."""
    from harvester.sources import SOURCES, Page

    if source not in SOURCES:
        _fail(f"--source: unknown source {source!r}; known: {', '.join(SOURCES)}", 2)
    parser = SOURCES[source]
    failed = False
    out = sys.stdout
    for path in files:
        try:
            body = path.read_bytes()
        except OSError as e:
            _fail(f"{path}: cannot read: {e.strerror}", 2)
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


@app.command()
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
    from harvester.store.database import open_engine
    from harvester.store.repository import Repository

    options: Options = ctx.obj
    with _errors():
        settings = options.settings()
        if topic is not None:
            settings.topic(topic)
        start = _date_option("--since", since)
        engine = open_engine(settings.database.url)
        try:
            works = Repository(engine, clock=lambda: datetime.now(UTC)).works(topic, since=start)
        finally:
            engine.dispose()
    writer = EXPORTERS[format.value]
    if output is None:
        writer(works, sys.stdout)
    else:
        with _writing(output), output.open("w", encoding="utf-8", newline="") as fh:
            count = writer(works, fh)
        typer.echo(f"wrote {count} works to {output}", err=True)


@app.command()
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
    from harvester.store.database import open_engine
    from harvester.store.repository import Repository

    options: Options = ctx.obj
    with _errors():
        settings = options.settings()
        settings.topic(topic)
        now = datetime.now(UTC)
        engine = open_engine(settings.database.url)
        try:
            works = Repository(engine, clock=lambda: now).works(
                topic, since=now - timedelta(days=days)
            )
        finally:
            engine.dispose()
    newest = sorted(works, key=lambda w: (w.first_seen or now, w.id))[-limit:]
    with _errors():
        data = atom_feed(topic, newest, now=now, self_url=self_url)
    with _writing(output):
        output.write_bytes(data)
    typer.echo(f"wrote {len(newest)} entries to {output}", err=True)


@app.command()
def digest(
    ctx: typer.Context,
    topics: Annotated[list[str] | None, typer.Argument(help="Topics (default: all)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the digests instead of sending them")
    ] = False,
    preview_dir: Annotated[
        Path, typer.Option("--preview-dir", help="Where --dry-run writes the HTML and Slack JSON")
    ] = Path("digest-preview"),
) -> None:
    """Send unsent digests now (oldest first), then the new studies; --dry-run shows them.

    Each subscription is claimed as the daemon claims it, so a command beside a running
    daemon never sends a digest the daemon is sending."""
    from harvester.app import build_app
    from harvester.digests.delivery import deliver, notifier_for, preview
    from harvester.digests.render import write_preview

    options: Options = ctx.obj
    with _errors():
        settings = options.settings(sending=not dry_run)
        wanted = set(topics or [t.name for t in settings.topics])
        for name in wanted:
            settings.topic(name)
        subscriptions = [s for s in settings.subscriptions if wanted & set(s.topics)]
        if not subscriptions:
            raise ConfigError(
                f"{settings.path}: no subscription covers {', '.join(sorted(wanted))}"
            )
        service = build_app(settings)
        failed = False
        try:
            for sub in subscriptions:
                if dry_run:
                    built, rendered = preview(service, sub)
                    with _writing(preview_dir):
                        files = write_preview(rendered, preview_dir)
                    typer.echo(f"── {sub.key}: {len(built.items)} studies; would send: ──")
                    typer.echo(f"Subject: {rendered.subject}\n")
                    typer.echo(rendered.text)
                    typer.echo("written: " + ", ".join(str(f) for f in files))
                    continue
                with service.claim_for(f"digest:{sub.key}") as mine:
                    if not mine:
                        typer.echo(
                            f"{sub.key}: skipped: another harvester process is sending its "
                            "digests right now"
                        )
                        continue
                    # a person asked: unsent digests go now, whatever their back-off
                    result = deliver(service, sub, notifier_for(service, sub), ignore_backoff=True)
                failed = failed or bool(result.failed)
                typer.echo(_delivery_report(sub.key, result))
        finally:
            service.close()
    if failed:
        raise typer.Exit(1)


def _delivery_report(key: str, result: DeliveryResult) -> str:
    """One line per subscription: what was sent, what is still unsent and when it is retried,
    how many studies wait for later digests."""
    if result.sent:
        state = f"sent {len(result.sent)} digest(s), {result.items} studies"
    elif result.empty_sent:
        state = "sent 'nothing new'"
    elif result.unsent:
        state = "nothing sent"
    else:
        state = "nothing to send"
    for unsent in result.unsent:
        when = (
            unsent.retry_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            if unsent.retry_at is not None
            else "the next tick"
        )
        why = f"not accepted ({unsent.error})" if unsent.tried else "waiting"
        state += (
            f"; digest #{unsent.digest_id} ({unsent.items} studies) "
            f"still unsent, {why}, after {unsent.attempts} attempt(s); the daemon retries it "
            f"at {when}, or run `harvester digest` again"
        )
    if result.waiting:
        state += f"; {result.waiting} more studies wait for the next digests"
    return f"{key}: {state}"


@app.command()
def run(
    ctx: typer.Context,
    health_port: Annotated[
        int | None, typer.Option("--health-port", help="Serve /healthz on this port")
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option("--http-port", help="Serve the web interface (and /healthz) on this port"),
    ] = None,
    http_host: Annotated[
        str, typer.Option("--http-host", help="Address the web interface listens on")
    ] = "0.0.0.0",
) -> None:
    """The daemon: schedule every harvest and digest; stop cleanly on SIGTERM/SIGINT."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from harvester.app import build_app
    from harvester.digests.delivery import deliverer
    from harvester.harvesting.scheduler import Daemon
    from harvester.health import HealthServer, daemon_check

    options: Options = ctx.obj
    with _errors():
        settings = options.settings()
        if not settings.topics:
            raise ConfigError(f"{settings.path}: no topics configured")
        # the lock before the engine: closing a refused lock's descriptor of the database
        # file would drop SQLite's own locks on it in this process (see DaemonLock)
        lock = _sqlite_daemon_lock(settings.database.url)
        try:
            service = build_app(settings)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        d = settings.daemon
        daemon = Daemon(
            service,
            BlockingScheduler(),
            deliver=deliverer(service),
            jitter=d.jitter_seconds or None,
            misfire_grace=d.misfire_grace_seconds,
            heartbeat_seconds=d.heartbeat_seconds,
            digest_retry_seconds=d.digest_retry_seconds,
            max_run_seconds=d.max_run_seconds,
            run_retention_days=d.run_retention_days,
        )
        health = None
        if health_port is not None:
            health = HealthServer(daemon_check(daemon, service.engine), port=health_port)
            health.start()
        web_server = None
        if http_port is not None:
            from harvester.web.serve import WebServer
            from harvester.web.server import create_app

            asgi = create_app(service, health=daemon_check(daemon, service.engine))
            web_server = WebServer(asgi, host=http_host, port=http_port)
            web_server.start()
            typer.echo(f"harvester web: http://{http_host}:{web_server.port}/", err=True)
        daemon.install_signal_handlers()
        try:
            daemon.run()
        finally:
            if web_server is not None:
                web_server.stop()
            if health is not None:
                health.stop()
            service.close()
            if lock is not None:
                lock.release()


def _sqlite_daemon_lock(url: str) -> DaemonLock | None:
    """On SQLite, refuse a second daemon on the same file (StoreError names the lock)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from harvester.store.locks import DaemonLock

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # build_app reports the bad URL
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    lock = DaemonLock(Path(parsed.database).resolve())
    lock.acquire()
    return lock


@app.command()
def status(ctx: typer.Context) -> None:
    """Each topic's sources: last run, next scheduled run; pending digests; daemons."""
    from harvester.app import build_app
    from harvester.harvesting.status import render_status

    options: Options = ctx.obj
    with _errors(options):
        service = build_app(options.settings())
        try:
            typer.echo(options.redact(render_status(service)), nl=False)
        finally:
            service.close()


@app.command()
def backfill(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic")],
    since: Annotated[str, typer.Option("--since", help="First day (YYYY-MM-DD)")],
    until: Annotated[str | None, typer.Option("--until", help="Last day (default: today)")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source")] = None,
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
    with _errors():
        settings = options.settings()
        chosen = settings.topic(topic)
        start = _date_option("--since", since)
        end = _date_option("--until", until)
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


@app.command()
def dedup(
    input: Annotated[Path, typer.Argument(help="CSV, RIS or JSONL records")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: stdout)")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="csv, ris or jsonl (default: from the file)")
    ] = None,
) -> None:
    """Deduplicate a reference file: the same records back, with duplicate_id and version_of."""
    from harvester.dedup.files import dedup_file

    if format is not None and format not in ("csv", "ris", "jsonl"):
        _fail(f"--format: unknown format {format!r}; use csv, ris or jsonl", 2)
    if not input.is_file():
        _fail(f"{input}: no such file", 2)
    try:
        with _writing(output):
            summary = dedup_file(input, output, format=format)
    except ParseError as e:  # the user's own file: exit 2, like any input they gave
        _fail(str(e), 2)
    typer.echo(
        f"{input}: {summary.records} records, {summary.works} works, "
        f"{summary.duplicates} duplicates removed, {summary.linked} version links",
        err=True,
    )


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the database migrations."""
    from harvester.store.database import create, upgrade

    options: Options = ctx.obj
    with _errors():
        if options.config.exists():
            url = options.settings().database.url
        else:
            # a database can be migrated without a config: the URL comes from the option/env
            url = options.database_url or _env_database_url()
        engine = create(url)
        try:
            revision = upgrade(engine)
        finally:
            engine.dispose()
    typer.echo(f"database at revision {revision}")


class TryFormat(StrEnum):
    text = "text"
    json = "json"


@app.command("try")
def try_(
    ctx: typer.Context,
    topic: Annotated[str | None, typer.Argument(help="A configured topic")] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="A portable query instead of a topic")
    ] = None,
    sources: Annotated[
        str | None,
        typer.Option("--sources", help="Comma-separated sources [default: the topic's]"),
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
    from harvester.config import SOURCE_NAMES, parse_settings
    from harvester.errors import QuerySyntaxError
    from harvester.harvesting.trial import Connectors, run_trial, trial_window
    from harvester.harvesting.trial_report import render_trial
    from harvester.query.syntax import parse_query

    options: Options = ctx.obj
    with _errors():
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
        wanted = tuple(n.strip() for n in sources.split(",") if n.strip()) if sources else ()
        for name in wanted:
            if name not in SOURCE_NAMES:
                raise ConfigError(
                    f"--sources: unknown source {name!r}; known: {', '.join(SOURCE_NAMES)}"
                )
        start = _date_option("--since", since)
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


@app.command()
def check(
    ctx: typer.Context,
    connect: Annotated[
        bool,
        typer.Option("--connect", help="Reach each source, the SMTP server, the Slack webhooks"),
    ] = False,
    send_test: Annotated[
        bool,
        typer.Option("--send-test", help="With --connect: post one Slack test, send one email"),
    ] = False,
) -> None:
    """Validate the config and its secrets; --connect reaches every server it needs."""
    from harvester.harvesting.check import config_items, connect_items, send_tests
    from harvester.harvesting.trial import Connectors

    options: Options = ctx.obj
    with _errors():
        settings = options.settings()
    items = config_items(settings, connect=connect)
    if connect or send_test:
        connectors = Connectors.build(settings)
        try:
            items += connect_items(settings, connectors, now=datetime.now(UTC))
            if send_test:
                items += send_tests(settings, connectors)
        finally:
            connectors.close()
    for item in items:
        typer.echo(item.line())
    failed = [i for i in items if i.status == "fail"]
    if any(i.label.startswith(("channels.", "subscriptions[")) for i in failed):
        raise typer.Exit(2)  # a secret sending needs is not set: the configuration's to fix
    if failed:
        raise typer.Exit(1)


def _env_database_url() -> str:
    import os

    from harvester.config import DEFAULT_DATABASE_URL

    return os.environ.get("HARVESTER_DATABASE_URL") or DEFAULT_DATABASE_URL


def _date_option(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{name}: not a date (YYYY-MM-DD): {value!r}") from None


class _errors:
    """Turn harvester errors into messages and exit codes (2 configuration, 1 runtime);
    with the command's options, the message is cleaned of the configured secrets."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Literal[False]:
        clean = self.options.redact if self.options is not None else str
        if isinstance(exc, ConfigError):
            _fail(clean(str(exc)), 2)
        if isinstance(exc, HarvesterError):
            _fail(clean(str(exc)), 1)
        return False


@app.command()
def web(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the web interface: dashboard, topic and study pages, unsubscribe and feedback."""
    import secrets

    import uvicorn

    from harvester.app import build_app
    from harvester.web.server import create_app

    options: Options = ctx.obj
    with _errors(options):
        service = build_app(options.settings())
        try:
            web = service.settings.web
            secret = web.secret()
            if secret is None:
                # a first look on loopback works without setup; a deployment sets the secret
                secret = secrets.token_urlsafe(32)
                typer.echo(
                    f"warning: {web.secret_env} ([web] secret_env) is not set: this process "
                    "signs with a secret of its own, so sessions end when it stops and links "
                    "in digests are not accepted",
                    err=True,
                )
            if not web.public_read and web.admin_password() is None:
                typer.echo(
                    f"reading pages needs a login: set {web.admin_password_env} "
                    "([web] admin_password_env), or [web] public_read = true",
                    err=True,
                )
            asgi = create_app(service, secret=secret)
            shown = f"[{host}]" if ":" in host else host
            typer.echo(f"harvester web: http://{shown}:{port}/", err=True)
            base = web.base_url
            if base:
                typer.echo(f"public address ([web] base_url): {base}/", err=True)
            uvicorn.run(asgi, host=host, port=port, log_level="warning", proxy_headers=True)
        finally:
            service.close()


def main() -> None:
    app(prog_name="harvester")


if __name__ == "__main__":
    main()
