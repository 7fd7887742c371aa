"""A fake PubMed source for pipeline and daemon tests: no HTTP, real recorded pages.

``fetch`` yields, for each window, the bodies a test chooses (a recorded efetch page, a page
derived from it, or an exception to raise in place of a page); ``parse`` is the real PubMed
parser unless the test gives another. ``windows`` records what was asked for, and ``gate``
(if set) holds ``fetch`` until the test releases it: a source that never answers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from harvester.query.syntax import Query
from harvester.sources.base import Page, ParseResult, Window
from harvester.sources.pubmed import parse_efetch
from tests.conftest import require_shared

# Two real PubMed records: 12091962 ("The treatment of AIDS behind the walls ...") and 9997
# ("Magnetic studies of Chromatium flavocytochrome C552 ... heme-flavin interaction").
TWO_RECORDS = "pubmed/efetch_pubmed_rettype_abstract_2_records.xml"
TWO_RECORDS_QUERY = "heme OR AIDS"  # the local query accepts both
NCBI_ERROR = "pubmed/esummary_error_no_id.xml"  # a real NCBI error document


def recorded(name: str = TWO_RECORDS) -> bytes:
    return (require_shared() / name).read_bytes()


def with_unreadable_pmid(body: bytes) -> bytes:
    """The recorded page with its first record's PMID made unreadable (derived from the real
    page): the parser skips that record, with a reason, and keeps the other."""
    return re.sub(
        rb'<PMID Version="1">\d+</PMID>', b'<PMID Version="1">not-a-pmid</PMID>', body, count=1
    )


PageSpec = bytes | BaseException


class RecordedSource:
    name = "pubmed"

    def __init__(
        self,
        pages: Callable[[Window], Sequence[PageSpec]],
        *,
        parse: Callable[[Page], ParseResult] | None = None,
        server_date: Callable[[], datetime | None] = lambda: None,
        gate: threading.Event | None = None,
    ) -> None:
        self.pages = pages
        self._parse = parse
        self.server_date = server_date
        self.gate = gate
        self.windows: list[Window] = []
        self.fetching = threading.Event()

    def translate(self, query: Query) -> str:
        return "recorded"

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        self.windows.append(window)
        self.fetching.set()
        if self.gate is not None:
            self.gate.wait()
        for number, spec in enumerate(self.pages(window), 1):
            if isinstance(spec, BaseException):
                raise spec
            when = self.server_date()
            yield Page(
                source=self.name,
                url=f"recorded://efetch/{number}",
                body=spec,
                number=number,
                **({"server_date": when} if when is not None else {}),
            )

    def parse(self, page: Page) -> ParseResult:
        if self._parse is not None:
            return self._parse(page)
        return parse_efetch(page.body, url=page.url)
