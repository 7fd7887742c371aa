"""Crossref REST ``/works`` served from the real recorded items in the fixtures.

The corpus is every item of the recorded work-lists (``crossref/works_*.json`` with
``message-type`` work-list) plus the single recorded work, kept value for value and ordered
by their ``indexed`` date-time. The emulator cannot rank: ``query``/``query.bibliographic``
are echoed as ``search-terms`` but not evaluated (harvester matches locally). The filters
``from-index-date``/``until-index-date`` are applied to the items' ``indexed`` dates; any
other filter is refused, as Crossref refuses unknown ones.

Mirrored behaviour (https://api.crossref.org/swagger-ui/index.html, "deep paging"):
- ``cursor=*`` opens a server-side scroll; every page answers with the same ``next-cursor``
  (as recorded in works_query_widget_cursor_page1/2.json) and the scroll advances by
  ``rows``; the end is an answer with empty ``items``;
- ``rows`` default 20, at most 1000 (over the limit: 400 validation-failure, as recorded);
- an unknown or expired cursor: 404 resource-failure ``cursor-invalid``, exactly the body of
  works_404_cursor_invalid.json with its value; ``expire_cursors()`` expires every open
  cursor now (Crossref expires them after five minutes unused);
- ``x-rate-limit-limit``/``x-rate-limit-interval`` headers on every answer;
- ``/works/{doi}``: the work, or 404 "Resource not found." as plain text.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tests.emulator import notices
from tests.emulator.base import Reply, Request, text_reply

_MAX_ROWS = 1000
_DEFAULT_ROWS = 20
_DATE_FILTERS = ("from-index-date", "until-index-date")


@functools.cache
def load_corpus(fixtures_dir: Path) -> tuple[dict[str, Any], ...]:
    """Every recorded work, oldest ``indexed`` first (unique by DOI)."""
    works: dict[str, dict[str, Any]] = {}
    for path in sorted((fixtures_dir / "crossref").glob("works_*.json")):
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("status") != "ok":
            continue
        message = data["message"]
        items = message.get("items", [message] if data.get("message-type") == "work" else [])
        for item in items:
            works.setdefault(item["DOI"].lower(), item)
    return tuple(sorted(works.values(), key=lambda w: (w["indexed"]["date-time"], w["DOI"])))


def _failure(status: int, message_type: str, kind: str, value: str, message: str) -> Reply:
    body = {
        "status": "failed",
        "message-type": message_type,
        "message": [{"type": kind, "value": value, "message": message}],
    }
    return Reply(status, json.dumps(body).encode(), content_type="application/json")


@dataclass(slots=True)
class _Scroll:
    works: tuple[dict[str, Any], ...]
    position: int = 0


class CrossrefRoutes:
    """``/works`` and ``/works/{doi}`` of the Crossref REST API."""

    name: ClassVar[str] = "crossref"
    base_path: ClassVar[str] = ""

    def __init__(
        self, fixtures_dir: Path, *, rate_limit: int = 10, rate_interval: str = "1s"
    ) -> None:
        self.corpus = load_corpus(fixtures_dir)
        self._by_doi = {w["DOI"].lower(): w for w in self.corpus}
        self.rate_limit = rate_limit
        self.rate_interval = rate_interval
        self._scrolls: dict[str, _Scroll] = {}
        self._lock = threading.Lock()
        self._fixtures_dir = fixtures_dir
        self._index_dates: dict[str, str] = {}  # DOI -> indexed date-time a test gave it

    def include_updates(self) -> None:
        """Serve the recorded works of ``updates/crossref`` too (see tests/emulator/notices)."""
        extra = [w for w in notices.crossref_items(self._fixtures_dir)]
        works = {w["DOI"].lower(): w for w in (*self.corpus, *extra)}
        self.corpus = tuple(sorted(works.values(), key=lambda w: (self._indexed(w), w["DOI"])))
        self._by_doi = {w["DOI"].lower(): w for w in self.corpus}

    def reindex(self, doi: str, when: str) -> None:
        """Serve ``doi`` as indexed at ``when`` (ISO date-time), as after a metadata change."""
        self._index_dates[doi.lower()] = when
        self.corpus = tuple(sorted(self.corpus, key=lambda w: (self._indexed(w), w["DOI"])))

    def _indexed(self, work: dict[str, Any]) -> str:
        return self._index_dates.get(work["DOI"].lower()) or notices.indexed(work)

    def expire_cursors(self) -> None:
        """Forget every open cursor: their next use answers 404 cursor-invalid."""
        with self._lock:
            self._scrolls.clear()

    def handle(self, request: Request) -> Reply:
        reply = self._answer(request)
        headers = {
            **reply.headers,
            "x-rate-limit-limit": str(self.rate_limit),
            "x-rate-limit-interval": self.rate_interval,
        }
        return Reply(reply.status, reply.body, reply.content_type, headers)

    def _answer(self, request: Request) -> Reply:
        if request.path.startswith("/works/"):
            work = self._by_doi.get(request.path.removeprefix("/works/").lower())
            if work is None:
                return text_reply(404, "Resource not found.")
            return _ok("work", work)
        if request.path != "/works":
            return text_reply(404, "Resource not found.")
        params = request.params
        rows_text = params.get("rows", str(_DEFAULT_ROWS))
        if not rows_text.isdigit() or not 0 < int(rows_text) <= _MAX_ROWS:
            return _failure(
                400,
                "validation-failure",
                "integer-not-valid",
                rows_text,
                f"Integer specified as {rows_text} but must be a positive integer less than "
                f"or equal to {_MAX_ROWS}. ",
            )
        try:
            works = self._filtered(params.get("filter", ""))
        except ValueError as e:
            return _failure(400, "validation-failure", "filter-not-available", str(e), str(e))
        cursor = params.get("cursor")
        rows = int(rows_text)
        terms = params.get("query.bibliographic") or params.get("query")
        if cursor is None:
            return _ok("work-list", _work_list(works[:rows], len(works), rows, terms, None))
        with self._lock:
            if cursor == "*":
                cursor = secrets.token_urlsafe(24)
                self._scrolls[cursor] = _Scroll(works)
            scroll = self._scrolls.get(cursor)
            if scroll is None:
                return _failure(
                    404,
                    "resource-failure",
                    "cursor-invalid",
                    cursor,
                    "Cursor specified but it is invalid",
                )
            page = scroll.works[scroll.position : scroll.position + rows]
            scroll.position += len(page)
        return _ok("work-list", _work_list(page, len(scroll.works), rows, terms, cursor))

    def _filtered(self, filters: str) -> tuple[dict[str, Any], ...]:
        bounds: dict[str, str] = {}
        types: set[str] = set()
        for clause in filter(None, (c.strip() for c in filters.split(","))):
            name, _, value = clause.partition(":")
            if name == "update-type":  # several are ORed, as Crossref does
                types.add(value)
                continue
            if name not in _DATE_FILTERS:
                raise ValueError(f"emulator: filter {name} is not emulated")
            bounds[name] = value
        low, high = bounds.get("from-index-date", ""), bounds.get("until-index-date", "9999")
        return tuple(
            w
            for w in self.corpus
            if low <= self._indexed(w)[:10] <= high
            and (not types or notices.update_types(w) & types)
        )


def _work_list(
    items: tuple[dict[str, Any], ...], total: int, rows: int, terms: str | None, cursor: str | None
) -> dict[str, Any]:
    message: dict[str, Any] = {"facets": {}}
    if cursor is not None:
        message["next-cursor"] = cursor
    message.update(
        {
            "total-results": total,
            "items": list(items),
            "items-per-page": rows,
            "query": {"start-index": 0, "search-terms": terms},
        }
    )
    return message


def _ok(message_type: str, message: dict[str, Any]) -> Reply:
    body = {
        "status": "ok",
        "message-type": message_type,
        "message-version": "1.0.0",
        "message": message,
    }
    return Reply(200, json.dumps(body).encode(), content_type="application/json")
