"""api.biorxiv.org ``details`` served from the real records in the fixtures, per server.

The corpus pools every item of the ``collection`` of each ``biorxiv/details_*.json`` (the
interval listing, truncated by its collector to 50 items, and the per-DOI answers), one per
(server, DOI, version), in recorded order; an item's ``server`` field ("bioRxiv"/"medRxiv")
says which server lists it. bioRxiv and medRxiv share one host, so both emulated sources
(``/biorxiv`` and ``/medrxiv``) answer for both servers, chosen by the path as the API does.

Mirrored API behaviour (https://api.biorxiv.org/):
- ``/details/{server}/{YYYY-MM-DD}/{YYYY-MM-DD}/{cursor}[/json]`` lists the items whose
  ``date`` is in the interval (both ends inclusive), ``page_size`` (100) at a time from
  ``cursor``; ``messages[0]`` carries cursor, count, and count_new_papers/total as strings;
- past the end, an empty collection with ``status: "no posts found"``;
- ``/details/{server}/{doi}`` lists every version of one DOI.
``total_override`` replaces the announced total (the API's total is not to be trusted).
"""

from __future__ import annotations

import functools
import json
import re
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from tests.emulator.base import Reply, Request

SERVERS = {"biorxiv": "bioRxiv", "medrxiv": "medRxiv"}
CONTENT_TYPE = "application/json; charset=UTF-8"
PAGE_SIZE = 100  # the API's page size
_INTERVAL = re.compile(
    r"^/details/(?P<server>[^/]+)/(?P<start>\d{4}-\d{2}-\d{2})/(?P<end>\d{4}-\d{2}-\d{2})"
    r"(?:/(?P<cursor>[^/]+))?(?:/(?P<format>json))?/?$"
)
_DOI = re.compile(r"^/details/(?P<server>[^/]+)/(?P<doi>10\.\d{4,9}/[^/]+)(?:/json)?/?$")


@functools.cache
def load_corpus(fixtures_dir: Path) -> dict[str, tuple[dict[str, Any], ...]]:
    """Every recorded item per server name (``biorxiv``/``medrxiv``), in recorded order."""
    found: dict[str, dict[tuple[str, str], dict[str, Any]]] = {s: {} for s in SERVERS}
    for path in sorted((fixtures_dir / "biorxiv").glob("details_*.json")):
        for item in json.loads(path.read_bytes())["collection"]:
            server = str(item.get("server", "")).lower()
            if server in found:
                found[server].setdefault((item["doi"], item["version"]), item)
    return {server: tuple(items.values()) for server, items in found.items()}


def answer(messages: list[dict[str, Any]], collection: list[dict[str, Any]]) -> Reply:
    body = json.dumps({"messages": messages, "collection": collection}, indent=2)
    return Reply(200, body.encode(), CONTENT_TYPE)


class BiorxivRoutes:
    """``/details`` of api.biorxiv.org (both servers)."""

    name: ClassVar[str] = "biorxiv"
    base_path: ClassVar[str] = ""

    def __init__(self, fixtures_dir: Path, *, page_size: int = PAGE_SIZE) -> None:
        self.corpus = load_corpus(fixtures_dir)
        self.page_size = page_size
        self.total_override: int | None = None

    def handle(self, request: Request) -> Reply:
        if match := _INTERVAL.match(request.path):
            return self.interval(match.group("server"), match, match.group("cursor") or "0")
        if match := _DOI.match(request.path):
            return self.by_doi(match.group("server"), match.group("doi"))
        return Reply(404, b"Not Found", content_type="text/plain")

    def interval(self, server: str, match: re.Match[str], cursor_text: str) -> Reply:
        if server not in SERVERS:
            return answer([{"status": "no posts found"}], [])
        try:
            start, end = date.fromisoformat(match["start"]), date.fromisoformat(match["end"])
            cursor = int(cursor_text)
        except ValueError:
            return answer([{"status": "invalid cursor or date"}], [])
        listed = [
            item for item in self.corpus[server] if start <= date.fromisoformat(item["date"]) <= end
        ]
        page = listed[cursor : cursor + self.page_size]
        if not page:
            return answer([{"status": "no posts found"}], [])
        total = len(listed) if self.total_override is None else self.total_override
        message = {
            "status": "ok",
            "category": "all",
            "interval": f"{start}:{end}",
            "funder": "all",
            "cursor": cursor,
            "count": len(page),
            "count_new_papers": str(sum(item["version"] == "1" for item in listed)),
            "total": str(total),
        }
        return answer([message], page)

    def by_doi(self, server: str, doi: str) -> Reply:
        items = [i for i in self.corpus.get(server, ()) if i["doi"].lower() == doi.lower()]
        if not items:
            return answer([{"status": "no posts found"}], [])
        return answer([{"status": "ok", "category": "all"}], items)


class MedrxivRoutes(BiorxivRoutes):
    """The same API reached as the ``medrxiv`` source (one host serves both servers)."""

    name: ClassVar[str] = "medrxiv"
