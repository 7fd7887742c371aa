"""OpenAlex ``/works`` served from the real works in the fixtures.

The corpus is every work of the recorded listings in ``openalex/`` plus the recorded single
work, each as OpenAlex sent it (re-serialized by ``json.dumps``: the values are the API's,
the whitespace is not). Listings are built from that corpus with the API's own paging:

- ``cursor=*`` starts, each page carries ``meta.next_cursor``, and as in the recording
  ``works_filter_openalex_ids_cursor_end_empty.json`` the page after the last result has
  ``results: []`` and ``next_cursor: null``. The cursor strings are the emulator's own
  (base64, opaque like OpenAlex's); without ``cursor`` the ``page`` parameter pages instead.
- the recorded requests give the recorded works in the recorded order: a filter clause of a
  recording that cannot be evaluated here (``cited_by:…``) selects that recording's results;
- ``from_publication_date``/``to_publication_date``, ``publication_year``, ``type``,
  ``openalex``/``ids.openalex`` and ``doi`` are evaluated; ``*.search`` clauses are echoed
  but not evaluated (harvester matches the topic's query locally); any other field is the
  recorded 400 "is not a valid field" error;
- ``per_page`` (the current docs' spelling) or ``per-page`` (the older docs') is 1 to
  ``per_page_limit``, else 400 with OpenAlex's body ("per-page parameter must be between 1 and
  100"): the limit is 100 as the current docs ("Page through results") give it; 200 emulates
  the older API. ``max_per_page`` below the limit makes the emulator accept less without an
  error and say so in ``meta.per_page``, as a server under load might.

Keys (documented guess): since 13 February 2026 OpenAlex requires ``api_key``; keyless
callers get a budget of $0.01/day and then 429s. The emulator spends that budget at once
(``keyless_requests=0``): a request without ``api_key`` gets 429 with an OpenAlex-style
error body naming the missing key. Every answer carries the documented credit headers
``X-RateLimit-Limit/-Remaining/-Credits-Used/-Reset``; when ``daily_credits`` are spent the
answer is 429.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from tests.emulator.base import Reply, Request

JSON = "application/json"
# OpenAlex, "Page through results": per_page 1-100 (older docs: per-page 1-200).
PER_PAGE_LIMIT = 100
# Filter clauses whose results are the recording's, since the emulator cannot evaluate them.
RECORDED_FILTERS = {
    "cited_by:W3046863325|W3045921891": "works_filter_cited_by_cursor_start_38_results.json",
}
_EVALUATED = frozenset(
    {
        "from_publication_date", "to_publication_date", "publication_year", "type",
        "openalex", "ids.openalex", "doi", "is_retracted", "from_updated_date",
    }
)  # fmt: skip


@functools.cache
def load_works(fixtures_dir: Path) -> tuple[dict[str, Any], ...]:
    """Every recorded work, in file order then recorded order, each once."""
    works: dict[str, dict[str, Any]] = {}
    for path in sorted((fixtures_dir / "openalex").glob("*.json")):
        data = json.loads(path.read_bytes())
        if isinstance(data.get("results"), list):
            found = data["results"]
        elif str(data.get("id", "")).startswith("https://openalex.org/W"):
            found = [data]
        else:
            continue
        for work in found:
            works.setdefault(short_id(work["id"]), work)
    return tuple(works.values())


def short_id(url: str) -> str:
    return url.rsplit("/", 1)[-1].upper()


def error(status: int, message: str, kind: str = "Invalid query parameters error.") -> Reply:
    body = json.dumps({"error": kind, "message": message}).encode()
    return Reply(status, body, content_type=JSON)


def encode_cursor(offset: int) -> str:
    return base64.b64encode(json.dumps(["emulator", offset]).encode()).decode()


def decode_cursor(cursor: str) -> int | None:
    try:
        tag, offset = json.loads(base64.b64decode(cursor, validate=True))
    except (binascii.Error, ValueError, TypeError):
        return None
    return offset if tag == "emulator" and isinstance(offset, int) and offset >= 0 else None


class OpenAlexRoutes:
    """``/works`` (listing) and ``/works/W…`` (one work) of the OpenAlex API."""

    name: ClassVar[str] = "openalex"
    base_path: ClassVar[str] = ""

    def __init__(
        self,
        fixtures_dir: Path,
        *,
        keyless_requests: int = 0,
        daily_credits: int = 100_000,
        list_cost: int = 1,
        per_page_limit: int = PER_PAGE_LIMIT,
        max_per_page: int | None = None,
    ) -> None:
        self.fixtures_dir = fixtures_dir
        self.corpus = load_works(fixtures_dir)
        self._by_id = {short_id(w["id"]): w for w in self.corpus}
        self.keyless_requests = keyless_requests
        self.daily_credits = daily_credits
        self.credits_left = daily_credits
        self.list_cost = list_cost
        self.per_page_limit = per_page_limit
        self.max_per_page = max_per_page
        self._lock = threading.Lock()

    def include_updates(self) -> None:
        """Serve the recorded works of ``updates/openalex`` too (see tests/emulator/notices)."""
        extra = load_works(self.fixtures_dir / "updates")
        self.corpus = (*self.corpus, *(w for w in extra if short_id(w["id"]) not in self._by_id))
        self._by_id = {short_id(w["id"]): w for w in self.corpus}

    def handle(self, request: Request) -> Reply:
        cost = self.list_cost if request.path == "/works" else 0  # singletons are free
        refused = self._spend(request, cost)
        if refused is not None:
            return refused
        if request.path == "/works":
            reply = self.works(request)
        elif request.path.startswith("/works/"):
            reply = self.work(request.path.removeprefix("/works/"))
        else:
            reply = error(404, f"emulator: no route for {request.path}", "Not found")
        return Reply(reply.status, reply.body, reply.content_type, self._credit_headers(cost))

    def _spend(self, request: Request, cost: int) -> Reply | None:
        with self._lock:
            if not request.params.get("api_key"):
                if self.keyless_requests <= 0:
                    message = (
                        "An API key is required: add api_key=YOUR_KEY to your request "
                        "(free at https://openalex.org/settings/api)"
                    )
                    return error(429, message, "Rate limit exceeded")
                self.keyless_requests -= 1
            elif self.credits_left < cost:
                reply = error(429, "Daily credit limit exceeded", "Rate limit exceeded")
                return Reply(429, reply.body, JSON, self._credit_headers(cost))
            self.credits_left -= cost
        return None

    def _credit_headers(self, cost: int) -> dict[str, str]:
        midnight = 86_400 - int(time.time()) % 86_400
        return {
            "X-RateLimit-Limit": str(self.daily_credits),
            "X-RateLimit-Remaining": str(max(0, self.credits_left)),
            "X-RateLimit-Credits-Used": str(cost),
            "X-RateLimit-Reset": str(midnight),
        }

    def work(self, work_id: str) -> Reply:
        work = self._by_id.get(work_id.upper())
        if work is None:
            return error(404, f"Work {work_id} not found", "Not found")
        return Reply(200, json.dumps(work).encode(), content_type=JSON)

    def works(self, request: Request) -> Reply:
        params = request.params
        spelling = "per_page" if "per_page" in params else "per-page"
        size_text = params.get(spelling, "25")
        if not size_text.isdigit() or not 1 <= int(size_text) <= self.per_page_limit:
            message = f"{spelling} parameter must be between 1 and {self.per_page_limit}"
            return error(400, message)
        per_page = min(int(size_text), self.max_per_page or self.per_page_limit)
        selected = self._select(params.get("filter", ""))
        if isinstance(selected, Reply):
            return selected
        meta: dict[str, Any] = {"count": len(selected), "db_response_time_ms": 1}
        if "cursor" in params:
            offset = 0 if params["cursor"] == "*" else decode_cursor(params["cursor"])
            if offset is None:
                return error(400, f"cursor {params['cursor']!r} is not valid")
            results = selected[offset : offset + per_page]
            next_cursor = encode_cursor(offset + len(results)) if results else None
            meta.update(page=None, per_page=per_page, next_cursor=next_cursor)
        else:
            page_text = params.get("page", "1")
            if not page_text.isdigit() or int(page_text) < 1:
                return error(400, f"page is {page_text!r}; it must be a positive integer")
            page = int(page_text)
            results = selected[(page - 1) * per_page : page * per_page]
            meta.update(page=page, per_page=per_page)
        meta["groups_count"] = None
        body = {"meta": meta, "results": results, "group_by": []}
        return Reply(200, json.dumps(body).encode(), content_type=JSON)

    def _select(self, filter_text: str) -> list[dict[str, Any]] | Reply:
        works = list(self.corpus)
        for clause in (c.strip() for c in filter_text.split(",") if c.strip()):
            key, _, value = clause.partition(":")
            key = key.strip().lower().replace("-", "_")
            if clause in RECORDED_FILTERS:
                recorded = json.loads(
                    (self.fixtures_dir / "openalex" / RECORDED_FILTERS[clause]).read_bytes()
                )
                kept = {short_id(w["id"]) for w in works}
                wanted = [short_id(w["id"]) for w in recorded["results"]]
                works = [self._by_id[i] for i in wanted if i in kept]
            elif key.endswith(".search") or key == "search":
                continue  # not evaluated: harvester applies the topic's query locally
            elif key in _EVALUATED:
                works = [w for w in works if _matches(w, key, value)]
            else:
                return self._invalid_field(key)
        return works

    def _invalid_field(self, key: str) -> Reply:
        # The recorded 400 answer, naming this field instead of the recorded one.
        recorded = json.loads(
            (self.fixtures_dir / "openalex" / "works_400_invalid_filter_field.json").read_bytes()
        )
        message = str(recorded["message"]).replace("DOESNTEXIST", key, 1)
        return error(400, message, str(recorded["error"]))


def _matches(work: dict[str, Any], key: str, value: str) -> bool:
    date = str(work.get("publication_date") or "")
    if key == "from_publication_date":
        return bool(date) and date >= value
    if key == "to_publication_date":
        return bool(date) and date <= value
    if key == "is_retracted":  # the update job's listing (tests/emulator/notices.py)
        return str(work.get("is_retracted")).lower() == value.lower()
    if key == "from_updated_date":
        return str(work.get("updated_date") or "")[:10] >= value
    if key == "publication_year":
        return str(work.get("publication_year")) in value.split("|")
    if key == "type":
        return str(work.get("type")) in value.split("|")
    if key in ("openalex", "ids.openalex"):
        return short_id(str(work.get("id"))) in {short_id(v) for v in value.split("|")}
    doi = str(work.get("doi") or "").lower().removeprefix("https://doi.org/")
    return doi in {v.lower().removeprefix("https://doi.org/") for v in value.split("|")}
