"""Semantic Scholar Graph API search served from the recordings in ``semanticscholar/``.

- ``/paper/search/bulk`` with a query containing "kubernetes" replays the three recorded
  pages byte for byte, chained by their own tokens: no token → page 1, page 1's token →
  page 2, page 2's token → page 3 (``"token": null``). Those recordings asked only for
  ``fields=title`` and no date range, so they are served whatever ``fields`` and
  ``publicationDateOrYear`` say.
- any other bulk query is answered from the full-field recorded papers (the relevance
  search ``paper_search_turing_all_fields_with_abstracts.json`` and the non-null entries of
  the batch recording), filtered by ``publicationDateOrYear``, projected to ``fields``, in
  pages of ``bulk_page_size`` (1,000, like the API) chained by the emulator's own tokens.
  The query is not evaluated (harvester applies the topic's query locally).
- ``/paper/search`` (relevance) replays the recorded "turing" pages by ``offset``; any other
  query gets the recorded empty answer ``{"total": 0, "offset": 0}``.
- ``/paper/{id}``: a recorded paper, or the recorded 404 shape ``{"error": "Paper with id …
  not found"}``; an unknown field anywhere is the recorded 400 "Unrecognized or
  unsupported fields".
The key is optional, as in the API; ``api_keys`` makes the emulator refuse other keys with
403 ``{"message": "Forbidden"}`` (a documented guess at what the API says to a bad key).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from pathlib import Path
from typing import Any, ClassVar

from tests.emulator.base import Reply, Request

JSON = "application/json"
BULK_PAGES = (
    "paper_search_bulk_kubernetes_page1_token.json",
    "paper_search_bulk_kubernetes_page2_token.json",
    "paper_search_bulk_kubernetes_page3_last_no_token.json",
)
RELEVANCE_PAGES = {
    0: "paper_search_turing_offset0_limit100.json",
    100: "paper_search_turing_offset100_limit100.json",
}
FULL_FIELDS = "paper_search_turing_all_fields_with_abstracts.json"
BATCH = "paper_batch_post_with_null_entry.json"
_EXTRA_FIELDS = frozenset({"tldr", "embedding", "textAvailability", "citations", "references"})


@functools.cache
def load_papers(fixtures_dir: Path) -> tuple[dict[str, Any], ...]:
    """The recorded papers that have every field, each once."""
    folder = fixtures_dir / "semanticscholar"
    papers: dict[str, dict[str, Any]] = {}
    found = json.loads((folder / FULL_FIELDS).read_bytes())["data"]
    found += [p for p in json.loads((folder / BATCH).read_bytes()) if p is not None]
    for paper in found:
        papers.setdefault(paper["paperId"], paper)
    return tuple(papers.values())


def error(status: int, message: str) -> Reply:
    return Reply(status, json.dumps({"error": message}).encode(), content_type=JSON)


def encode_token(offset: int) -> str:
    return "EMU" + base64.b32encode(str(offset).encode()).decode().rstrip("=")


def decode_token(token: str) -> int | None:
    if not token.startswith("EMU"):
        return None
    text = token[3:]
    try:
        value = base64.b32decode(text + "=" * (-len(text) % 8)).decode()
    except (binascii.Error, ValueError):
        return None
    return int(value) if value.isdigit() else None


class SemanticScholarRoutes:
    """Paper search (bulk and relevance) and paper lookup of the Graph API."""

    name: ClassVar[str] = "semanticscholar"
    base_path: ClassVar[str] = "/graph/v1"

    def __init__(
        self,
        fixtures_dir: Path,
        *,
        api_keys: frozenset[str] | None = None,
        bulk_page_size: int = 1000,
    ) -> None:
        self.folder = fixtures_dir / "semanticscholar"
        self.papers = load_papers(fixtures_dir)
        self.known_fields = frozenset(k for p in self.papers for k in p) | _EXTRA_FIELDS
        self.api_keys = api_keys
        self.bulk_page_size = bulk_page_size
        self._recorded = [self.folder / name for name in BULK_PAGES]
        # token of page N -> page N + 1
        self._next_page = {
            json.loads(path.read_bytes())["token"]: following
            for path, following in zip(self._recorded, self._recorded[1:], strict=False)
        }

    def handle(self, request: Request) -> Reply:
        key = request.headers.get("x-api-key")
        if self.api_keys is not None and key is not None and key not in self.api_keys:
            return Reply(403, b'{"message":"Forbidden"}', content_type=JSON)
        fields = [f for f in request.params.get("fields", "title").split(",") if f]
        unknown = [f for f in fields if f not in self.known_fields]
        if unknown:
            return error(400, f"Unrecognized or unsupported fields: [{', '.join(unknown)}]")
        if request.path == "/paper/search/bulk":
            return self.bulk(request, fields)
        if request.path == "/paper/search":
            return self.relevance(request)
        if request.path.startswith("/paper/") and request.method == "GET":
            return self.paper(request.path.removeprefix("/paper/"), fields)
        return Reply(404, b'{"message":"Not Found"}', content_type=JSON)

    def bulk(self, request: Request, fields: list[str]) -> Reply:
        params = request.params
        token = params.get("token")
        if "kubernetes" in params.get("query", "").lower():
            if not token:
                return self._file(self._recorded[0])
            if token in self._next_page:
                return self._file(self._next_page[token])
            return error(400, f"Invalid token: {token}")
        offset = 0 if not token else decode_token(token)
        if offset is None:
            return error(400, f"Invalid token: {token}")
        try:
            papers = self._dated(params.get("publicationDateOrYear"))
        except ValueError as e:
            return error(400, str(e))
        page = papers[offset : offset + self.bulk_page_size]
        end = offset + len(page)
        body = {
            "total": len(papers),
            "token": encode_token(end) if end < len(papers) else None,
            "data": [_project(p, fields) for p in page],
        }
        return Reply(200, json.dumps(body).encode(), content_type=JSON)

    def relevance(self, request: Request) -> Reply:
        if "turing" not in request.params.get("query", "").lower():
            return self._file(self.folder / "paper_search_no_results.json")
        offset = request.params.get("offset", "0")
        name = RELEVANCE_PAGES.get(int(offset) if offset.isdigit() else -1)
        if name is None:
            return error(400, f"emulator: only offsets {sorted(RELEVANCE_PAGES)} are recorded")
        return self._file(self.folder / name)

    def paper(self, paper_id: str, fields: list[str]) -> Reply:
        paper = next((p for p in self.papers if p["paperId"] == paper_id), None)
        if paper is None:
            return error(404, f"Paper with id {paper_id} not found")
        return Reply(200, json.dumps(_project(paper, fields)).encode(), content_type=JSON)

    def _dated(self, window: str | None) -> list[dict[str, Any]]:
        """Papers within ``publicationDateOrYear`` (``start:end``, either side optional):
        by publication date, or by year when a paper has no date."""
        if not window:
            return list(self.papers)
        start, colon, end = window.partition(":")
        if not colon:
            start = end = window
        if any(part and len(part) not in (4, 7, 10) for part in (start, end)):
            raise ValueError(f"Invalid publicationDateOrYear: {window}")

        def inside(paper: dict[str, Any]) -> bool:
            when = paper.get("publicationDate") or str(paper.get("year") or "")
            if not when:
                return False
            # Compared at the coarser of the two precisions: a year-only paper is in any
            # window that touches its year.
            after = not start or when[: len(start)] >= start[: len(when)]
            before = not end or when[: len(end)] <= end[: len(when)]
            return after and before

        return [p for p in self.papers if inside(p)]

    def _file(self, path: Path) -> Reply:
        return Reply(200, path.read_bytes(), content_type=JSON)


def _project(paper: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """The paper with only ``paperId`` and the asked ``fields``, as the API answers."""
    return {k: v for k, v in paper.items() if k == "paperId" or k in fields}
