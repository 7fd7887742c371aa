"""The arXiv API (Atom ``/api/query``) served from the real entries in the fixtures.

The corpus pools every ``<entry>`` of ``arxiv/query_*.xml`` that has a real arXiv id (the
error feed's entry is not a paper), one per id, each re-serialized by lxml from the recorded
feed (the 2016 feed's entries then carry their own namespace declarations, as that feed did
on its elements). The answer's head is copied from arxiv/query_all_testing_start0_max10.xml.

Mirrored arXiv behaviour (https://info.arxiv.org/help/api/user-manual.html):
- ``search_query`` may hold ``submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM]`` (both ends
  inclusive; the entry's ``<published>`` is its submission date); the rest of the query is
  echoed but not evaluated (harvester matches the topic locally anyway);
- ``sortBy=submittedDate`` with ``sortOrder`` ascending/descending, ``start``/``max_results``
  paging with ``opensearch:totalResults``/``startIndex``/``itemsPerPage``;
- errors are an Atom feed with one entry titled "Error", with HTTP 400.
``empty_pages = N`` makes the next N pages that should hold entries come back empty with
the true totalResults: the known arXiv flake a client must retry.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from xml.sax.saxutils import escape

from lxml import etree

from tests.emulator.base import Reply, Request

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
_SUBMITTED = re.compile(r"submittedDate:\[(\d{12}|\*) TO (\d{12}|\*)\]", re.I)
_ID = re.compile(r"abs/(.+?)(?:v\d+)?$")
MAX_RESULTS = 30_000  # user manual: results are capped at 30000 per query
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Entry:
    arxiv_id: str
    submitted: datetime
    xml: bytes


@functools.cache
def load_corpus(fixtures_dir: Path) -> tuple[Entry, ...]:
    """Every recorded paper entry, one per arXiv id, oldest submission first."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    entries: dict[str, Entry] = {}
    for path in sorted((fixtures_dir / "arxiv").glob("query_*.xml")):
        feed = etree.fromstring(path.read_bytes(), parser)
        for entry in feed.iterchildren(f"{ATOM}entry"):
            match = _ID.search(entry.findtext(f"{ATOM}id") or "")
            published = entry.findtext(f"{ATOM}published")
            if match is None or published is None:  # the error feed's entry
                continue
            when = datetime.fromisoformat(published.replace("Z", "+00:00"))
            xml = etree.tostring(entry, encoding="UTF-8", xml_declaration=False)
            entries.setdefault(match.group(1), Entry(match.group(1), when, xml))
    return tuple(sorted(entries.values(), key=lambda e: (e.submitted, e.arxiv_id)))


def feed(
    *, query: str, start: int, per_page: int, total: int, entries: list[Entry] | tuple[()] = ()
) -> bytes:
    """An Atom answer shaped like arxiv/query_all_testing_start0_max10.xml."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    title = escape(f"search_query={query}&id_list=&start={start}&max_results={per_page}")
    head = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"'
        ' xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
        "  <id>https://arxiv.org/api/emulated</id>\n"
        f"  <title>arXiv Query: {title}</title>\n"
        f"  <updated>{now}</updated>\n"
        f"  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>\n"
        f"  <opensearch:totalResults>{total}</opensearch:totalResults>\n"
        f"  <opensearch:startIndex>{start}</opensearch:startIndex>\n"
    )
    body = b"".join(b"  " + e.xml.strip() + b"\n" for e in entries)
    return head.encode() + body + b"</feed>\n"


def error_feed(message: str) -> bytes:
    """arXiv's error answer, shaped like arxiv/query_id_list_malformed_id_error_400.xml."""
    anchor = re.sub(r"\W+", "_", message)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"'
        ' xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">\n'
        "  <id>https://arxiv.org/</id>\n  <title>arXiv Search Results</title>\n"
        "  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>\n"
        "  <opensearch:totalResults>1</opensearch:totalResults>\n"
        "  <opensearch:startIndex>0</opensearch:startIndex>\n"
        f"  <entry>\n    <id>https://arxiv.org/api/errors#{anchor}</id>\n"
        "    <title>Error</title>\n"
        f"    <summary>{escape(message)}</summary>\n"
        "    <author>\n      <name>arXiv api core</name>\n    </author>\n  </entry>\n</feed>\n"
    ).encode()


class ArxivRoutes:
    """``/api/query`` of the arXiv API."""

    name: ClassVar[str] = "arxiv"
    base_path: ClassVar[str] = "/api"

    def __init__(self, fixtures_dir: Path) -> None:
        self.corpus = load_corpus(fixtures_dir)
        self.empty_pages = 0
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Reply:
        if request.path != "/query":
            return Reply(404, b"Not Found", content_type="text/plain")
        params = request.params
        try:
            start = int(params.get("start", "0"))
            per_page = int(params.get("max_results", "10"))
        except ValueError:
            return Reply(400, error_feed("start and max_results must be integers"), CONTENT_TYPE)
        if start < 0 or per_page < 0 or per_page > MAX_RESULTS:
            return Reply(400, error_feed(f"max_results must be 0..{MAX_RESULTS}"), CONTENT_TYPE)
        query = params.get("search_query", "")
        try:
            selected = self._select(query)
        except ValueError as e:
            return Reply(400, error_feed(str(e)), CONTENT_TYPE)
        if params.get("sortOrder", "descending") == "descending":
            selected.reverse()
        page = selected[start : start + per_page]
        if page and self._take_empty_page():
            page = []
        body = feed(query=query, start=start, per_page=per_page, total=len(selected), entries=page)
        return Reply(200, body, CONTENT_TYPE)

    def _take_empty_page(self) -> bool:
        with self._lock:
            if self.empty_pages <= 0:
                return False
            self.empty_pages -= 1
            return True

    def _select(self, query: str) -> list[Entry]:
        match = _SUBMITTED.search(query)
        if match is None:
            return list(self.corpus)
        low, high = (_moment(match.group(i)) for i in (1, 2))
        return [
            e
            for e in self.corpus
            if (low is None or e.submitted >= low)
            and (high is None or e.submitted < high.replace(second=0) + _MINUTE)
        ]


def _moment(value: str) -> datetime | None:
    if value == "*":
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"invalid submittedDate {value}") from None
