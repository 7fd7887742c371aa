"""The long-running and looking commands: ``run`` (the daemon), ``web``, ``status`` and
``check``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harvester.cli.common import Options, exit_codes
from harvester.errors import ConfigError

if TYPE_CHECKING:
    from harvester.store.locks import DaemonLock


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
    with exit_codes():
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


def status(ctx: typer.Context) -> None:
    """Each topic's sources: last run, next scheduled run; pending digests; daemons."""
    from harvester.app import build_app
    from harvester.harvesting.status import render_status

    options: Options = ctx.obj
    with exit_codes(options):
        service = build_app(options.settings())
        try:
            typer.echo(options.redact(render_status(service)), nl=False)
        finally:
            service.close()


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
    with exit_codes():
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
    with exit_codes(options):
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
