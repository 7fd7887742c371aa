"""structlog set-up: readable console lines on a terminal, JSON lines otherwise.

Configured once, from the command line. Secrets are redacted by a processor: values of keys that
look secret, and any registered secret value wherever it appears in a line, tracebacks
included. The standard library's loggers (APScheduler's job exceptions, httpx, SQLAlchemy) go
through the same chain, so nothing reaches stderr raw. :meth:`SecretRedactor.redact` cleans
text that is stored or printed rather than logged (a run's error, a skip reason).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

SECRET_KEYS = frozenset(
    {"api_key", "apikey", "password", "token", "secret", "webhook_url", "authorization"}
)
REDACTED = "REDACTED"


class SecretRedactor:
    """A structlog processor that hides secret values (by key and by value)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # short values would redact ordinary words; real keys and passwords are longer
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``REDACTED``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        return value

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            if key.lower() in SECRET_KEYS and event_dict[key] is not None:
                event_dict[key] = REDACTED
            elif self._secrets:
                event_dict[key] = self._clean(event_dict[key])
        return event_dict


class _ToStructlog(logging.Handler):
    """Hands standard-library log records (APScheduler, httpx, SQLAlchemy) to structlog, so
    they come out as one structured, redacted line each, tracebacks included."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger = structlog.get_logger(record.name)
            method = getattr(logger, record.levelname.lower(), logger.error)
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["exc_info"] = record.exc_info
            method(" ".join(record.getMessage().split()), **fields)
        except Exception:  # a log line must never break the job that wrote it
            self.handleError(record)


def route_stdlib_logging(level: int = logging.WARNING) -> None:
    """Send every standard-library logger through structlog (once; idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ToStructlog):
            root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    root.setLevel(level)
    # APScheduler logs every job start and finish at INFO: only its warnings (misfires)
    # and errors (a job that raised) are worth a line
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def configure_logging(
    fmt: Literal["json", "console"] | None = None,
    *,
    level: int = logging.INFO,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Set up structlog for the process. ``fmt=None`` picks console on a TTY, JSON otherwise."""
    out = stream or sys.stderr
    if fmt is None:
        fmt = "console" if out.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # after the traceback is rendered to text, so a secret in an exception's
            # message is redacted there too
            structlog.processors.format_exc_info,
            SecretRedactor(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    route_stdlib_logging()
