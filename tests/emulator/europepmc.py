"""Europe PMC REST ``search`` served from the real recorded results in the fixtures.

Two corpora, each built from recorded results kept value for value:
- ``resultType=core``: the 25 core results of ``europepmc/search_cancer_core_abstracts.json``;
- ``resultType=lite`` (and ``idlist``, derived from it): the results of every recorded lite
  JSON page (``search_cancer_lite_page1.json``, ``search_cancer_pagesize100_cursor_page*.json``).
The emulator cannot run Europe PMC's search engine: the query's text is echoed, not
evaluated, except its ``FIRST_IDATE:[YYYY-MM-DD TO YYYY-MM-DD]`` clause, which filters on the
results' ``firstIndexDate`` (harvester matches the topic's query locally anyway).

Mirrored behaviour (https://europepmc.org/RestfulWebService#!/Europe32PMC32Articles32RESTful32API/search):
- ``cursorMark`` paging: ``*`` starts; every answer carries ``nextCursorMark``; the end is
  signalled, as the API does, by a ``nextCursorMark`` equal to the one sent (``end="same"``,
  the default) — or, with ``end="absent"``, by leaving it out of the last page;
- ``pageSize`` 1..1000 (default 25), results ordered by first index date then id;
- only ``format=json`` is served; an unknown cursorMark is a 400.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from tests.emulator.base import Reply, Request, text_reply

_IDATE = re.compile(r"FIRST_IDATE:\[(\d{4}-\d{2}-\d{2}) TO (\d{4}-\d{2}-\d{2})\]", re.I)
_MAX_PAGE = 1000
_DEFAULT_PAGE = 25
_LITE_FILES = (
    "search_cancer_lite_page1.json",
    "search_cancer_pagesize100_cursor_page1.json",
    "search_cancer_pagesize100_cursor_page2.json",
)


def _results(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return list(data["resultList"]["result"])


def _ordered(results: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    unique = {f"{r['source']}:{r['id']}": r for r in results}
    return tuple(sorted(unique.values(), key=lambda r: (r["firstIndexDate"], r["id"])))


@functools.cache
def load_corpus(fixtures_dir: Path) -> dict[str, tuple[dict[str, Any], ...]]:
    """The recorded results by resultType ("core", "lite"), ordered as the emulator serves them."""
    folder = fixtures_dir / "europepmc"
    lite: list[dict[str, Any]] = []
    for name in _LITE_FILES:
        lite += _results(folder / name)
    return {
        "core": _ordered(_results(folder / "search_cancer_core_abstracts.json")),
        "lite": _ordered(lite),
    }


def cursor_mark(offset: int) -> str:
    """An opaque cursorMark, base64 like the real ones ("AoIIP4ZawSg1MzEyODI1MA==")."""
    return base64.b64encode(f"AoII{offset}".encode()).decode()


def _offset(mark: str) -> int | None:
    if mark == "*":
        return 0
    try:
        text = base64.b64decode(mark.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text[4:]) if text.startswith("AoII") and text[4:].isdigit() else None


class EuropePMCRoutes:
    """``/search`` of the Europe PMC REST API."""

    name: ClassVar[str] = "europepmc"
    base_path: ClassVar[str] = "/europepmc/webservices/rest"

    def __init__(self, fixtures_dir: Path, *, end: Literal["same", "absent"] = "same") -> None:
        self.corpus = load_corpus(fixtures_dir)
        self.end = end

    def handle(self, request: Request) -> Reply:
        if request.path != "/search":
            return text_reply(404, "emulator: only /search is served")
        params = request.params
        if params.get("format", "xml") != "json":
            return text_reply(400, "emulator: only format=json is served")
        result_type = params.get("resultType", "lite").lower()
        if result_type not in ("core", "lite", "idlist"):
            return text_reply(400, f"emulator: unknown resultType {result_type!r}")
        try:
            size = max(1, min(int(params.get("pageSize", _DEFAULT_PAGE)), _MAX_PAGE))
        except ValueError:
            return text_reply(400, "emulator: pageSize must be an integer")
        mark = params.get("cursorMark", "*")
        offset = _offset(mark)
        if offset is None:
            return text_reply(400, f"emulator: invalid cursorMark {mark!r}")
        query = params.get("query", "")
        results = self.select(query, result_type)
        page = results[offset : offset + size]
        if result_type == "idlist":
            page = [{k: r[k] for k in ("id", "source", "pmid", "pmcid") if k in r} for r in page]
        body: dict[str, Any] = {"version": "6.9", "hitCount": len(results)}
        following = offset + len(page)
        if page and following < len(results):
            body["nextCursorMark"] = cursor_mark(following)
        elif self.end == "same":
            # The answer at (or past) the end repeats the cursorMark it was sent.
            body["nextCursorMark"] = mark if not page else cursor_mark(following)
        body["request"] = {
            "queryString": query,
            "resultType": result_type,
            "cursorMark": mark,
            "pageSize": size,
            "sort": "",
            "synonym": False,
        }
        body["resultList"] = {"result": list(page)}
        return Reply(200, json.dumps(body).encode(), content_type="application/json")

    def select(self, query: str, result_type: str) -> list[dict[str, Any]]:
        corpus = self.corpus["core" if result_type == "core" else "lite"]
        window = _IDATE.search(query)
        if window is None:
            return list(corpus)
        first, last = window.groups()
        return [r for r in corpus if first <= r["firstIndexDate"] <= last]
