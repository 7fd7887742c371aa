"""structlog set-up: readable console lines on a terminal, JSON lines otherwise.

Configured once, from the command line. Secrets are redacted by a processor: values of keys that
look secret, and any registered secret value wherever it appears in a line.
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

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
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
            SecretRedactor(secrets),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
