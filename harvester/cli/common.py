"""What every command shares: the global options and the settings they load, the secrets
each command needs, the source-name option types, and how errors become exit codes
(0 success, 1 runtime failure, 2 usage or configuration error)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal, NoReturn

import structlog
import typer

from harvester import __version__
from harvester.config import Settings, load_settings
from harvester.errors import ConfigError, HarvesterError
from harvester.logs import SecretRedactor, configure_logging
from harvester.registry import SOURCE_NAMES

log = structlog.get_logger("harvester.cli")


class LogFormat(StrEnum):
    json = "json"
    console = "console"


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
        secrets_for_command(settings, self.command, sending=self.sending)
        if self.sending:
            settings = without_dry_run(settings, self.command)
        return settings

    def redact(self, text: str) -> str:
        return self.redactor.redact(text) if self.redactor is not None else text


# Secrets only where used: these commands send digests, so they need every channel secret;
# these harvest, so an unset API key is worth a warning (the source runs without it, or is
# skipped when it needs one). Everything else reads only.
SENDING = frozenset({"run", "digest"})
_HARVESTING = frozenset({"run", "harvest", "backfill"})


def secrets_for_command(settings: Settings, command: str | None, *, sending: bool) -> None:
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


def without_dry_run(settings: Settings, command: str | None) -> Settings:
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


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"harvester: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def writing(path: Path | None) -> Iterator[None]:
    """Around the code that writes ``path`` (a file, or a directory of files): a path that
    cannot be written is the user's to fix, so it is one line and exit 2, not a traceback.
    ``None`` (stdout) passes errors on unchanged."""
    try:
        yield
    except OSError as e:
        if path is None:
            raise
        fail(f"cannot write {e.filename or path}: {e.strerror or e}", 2)


def print_version(value: bool) -> None:
    if value:
        typer.echo(f"harvester {__version__}")
        raise typer.Exit(0)


# --source and --sources are checked as typer parses them: one check, against the registry
def source_name(value: str) -> str:
    """A ``--source`` value: a name from the registry, else a usage error naming it."""
    if value not in SOURCE_NAMES:
        raise ValueError(f"unknown source {value!r}; known: {', '.join(SOURCE_NAMES)}")
    return value


@dataclass(frozen=True, slots=True)
class SourceList:
    """A ``--sources a,b`` value: each name checked as :func:`source_name` checks one."""

    names: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> SourceList:
        return cls(tuple(source_name(n.strip()) for n in value.split(",") if n.strip()))


def env_database_url() -> str:
    import os

    from harvester.config.sections import DEFAULT_DATABASE_URL

    return os.environ.get("HARVESTER_DATABASE_URL") or DEFAULT_DATABASE_URL


def date_option(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{name}: not a date (YYYY-MM-DD): {value!r}") from None


class exit_codes:
    """Turn harvester errors into messages and exit codes (2 configuration, 1 runtime);
    with the command's options, the message is cleaned of the configured secrets."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Literal[False]:
        clean = self.options.redact if self.options is not None else str
        if isinstance(exc, ConfigError):
            fail(clean(str(exc)), 2)
        if isinstance(exc, HarvesterError):
            fail(clean(str(exc)), 1)
        return False
