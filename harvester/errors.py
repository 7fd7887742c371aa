"""The exception tree of harvester.

::

    HarvesterError
     ├── ConfigError          bad configuration: names the file, the key path, the problem
     ├── QuerySyntaxError     a portable query that does not parse (position and reason)
     ├── SourceError          something went wrong talking to or reading a bibliographic API
     │    ├── FetchError      the request failed (network, HTTP status, API error body)
     │    │    ├── RateLimited    the API said "too many requests" and retries ran out
     │    │    └── Interrupted    a stop request ended the request or its wait (a daemon stopping)
     │    └── ParseError      a response could not be read (malformed, truncated, unexpected shape)
     ├── StoreError           the database refused or is not usable
     └── NotifyError          a channel (SMTP, Slack) did not accept a digest

Errors are wrapped at the boundary with their cause kept (``raise ParseError(...) from e``).
"""

from __future__ import annotations


class HarvesterError(Exception):
    """Base class of every error harvester raises on purpose."""


class ConfigError(HarvesterError):
    """The configuration is invalid; the message names the file, key path and problem."""


_CONTEXT = 60  # characters of a long query shown on each side of a syntax error


class QuerySyntaxError(HarvesterError):
    """A portable query does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, *, query: str, position: int) -> None:
        # a long query is shown only around the problem, so the message stays one short line
        before, after = query[:position], query[position:]
        if len(query) > 2 * _CONTEXT:
            before = before if len(before) <= _CONTEXT else "…" + before[-_CONTEXT:]
            after = after if len(after) <= _CONTEXT else after[:_CONTEXT] + "…"
        super().__init__(f"{message} at position {position}: {before}⟨here⟩{after}")
        self.reason = message
        self.query = query
        self.position = position


class SourceError(HarvesterError):
    """Base for problems with a bibliographic API."""


class FetchError(SourceError):
    """A request to an API failed; ``url`` has secrets removed."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message if url is None else f"{message} ({url})")
        self.url = url
        self.status = status


class RateLimited(FetchError):
    """The API kept answering 429 (or its equivalent) after every retry."""


class Interrupted(FetchError):
    """A stop was requested (the daemon is shutting down): no further request was sent, or
    a back-off or read was cut short. A harvest that meets it ends ``interrupted``."""


class ParseError(SourceError):
    """A response body could not be read."""


class StoreError(HarvesterError):
    """The database could not be used."""


class NotifyError(HarvesterError):
    """A notification channel did not accept a message."""
