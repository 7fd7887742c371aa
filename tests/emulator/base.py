"""What the emulator's server and its per-source route modules share.

A source module provides one class with a ``name``, a ``base_path`` (the API's own path
below ``/<name>``) and ``handle(request) -> Reply``; ``server.SOURCES`` registers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol


@dataclass(frozen=True, slots=True)
class Request:
    """One request as a route sees it; ``path`` is relative to the source's base path."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "text/xml; charset=UTF-8"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the emulator received, for tests to assert on.

    ``time`` is ``time.monotonic()`` on arrival; ``status`` what the emulator answered.
    """

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    time: float
    source: str | None
    status: int


class SourceRoutes(Protocol):
    """The routes of one emulated API."""

    name: ClassVar[str]
    base_path: ClassVar[str]

    def __init__(self, fixtures_dir: Path) -> None: ...

    def handle(self, request: Request) -> Reply: ...


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), content_type="text/plain; charset=UTF-8")
