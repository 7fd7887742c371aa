"""PubMed E-utilities (ESearch, EFetch) served from the real records in the fixtures.

The corpus is every ``<PubmedArticle>`` of ``pubmed/efetch_*.xml``, kept byte for byte
as NCBI sent it. ESearch selects records by Entrez date only: the emulator cannot run
PubMed's search engine, so the ``term`` is echoed but not evaluated (harvester matches
the topic's query locally anyway). One exception, handy for exact tests: ``NNN[pmid]``
(or ``[uid]``) tokens in the term restrict the result to those PMIDs.

Mirrored NCBI behaviour (https://www.ncbi.nlm.nih.gov/books/NBK25499/):
- results sorted by Entrez date, newest first; ``usehistory=y`` stores them server-side
  under ``WebEnv``/``QueryKey`` for EFetch to page through;
- only the first ``max_retrievable`` (9,999) records of a result can be retrieved: a
  page crossing that boundary is clamped silently, ``retstart`` beyond it is an ERROR;
- errors are ``<ERROR>`` bodies in the utility's own result element;
- an unknown WebEnv gives EFetch's "Unable to obtain query #N".
Requests must carry ``tool`` and ``email`` (NCBI's usage policy) unless
``require_identification`` is switched off.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import ClassVar
from xml.sax.saxutils import escape

from lxml import etree

from tests.emulator import notices
from tests.emulator.base import Reply, Request

_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)
_PMID_TERM = re.compile(r"(\d+)\s*\[(?:pmid|uid)\]", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})(?:/(\d{1,2})(?:/(\d{1,2}))?)?$")

# The header of every EFetch answer, as in pubmed/efetch_pubmed_empty_articleset.xml.
EFETCH_HEAD = (
    b'<?xml version="1.0" ?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN"'
    b' "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
_DOCTYPES = {
    "eSearchResult": '"-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd"',
    "eFetchResult": '"-//NLM//DTD efetch 20131226//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20131226/efetch.dtd"',
}
_DOCTYPE_NAMES = {"eSearchResult": "eSearchResult", "eFetchResult": "eEfetchResult"}
_MAX_RETMAX = 10_000  # NCBI: "up to a maximum of 10,000"

_Handler = Callable[[Request, int, int], Reply]


@dataclass(frozen=True, slots=True)
class Article:
    pmid: str
    entrez: datetime
    xml: bytes


@functools.cache
def load_corpus(fixtures_dir: Path) -> tuple[Article, ...]:
    """Every ``<PubmedArticle>`` of the recorded EFetch answers, newest Entrez date first."""
    articles: dict[str, Article] = {}
    for path in sorted((fixtures_dir / "pubmed").glob("efetch_*.xml")):
        for match in _ARTICLE.finditer(path.read_bytes()):
            raw = match.group(0)
            element = etree.fromstring(raw)
            pmid = element.findtext("MedlineCitation/PMID")
            entrez = element.find('PubmedData/History/PubMedPubDate[@PubStatus="entrez"]')
            if pmid is None or entrez is None:
                continue
            year, month, day, hour, minute = (
                int(entrez.findtext(tag) or 0) for tag in ("Year", "Month", "Day", "Hour", "Minute")
            )
            when = datetime(year, month, day, hour, minute)
            articles.setdefault(pmid, Article(pmid, when, raw))
    return tuple(sorted(articles.values(), key=lambda a: (a.entrez, int(a.pmid)), reverse=True))


def error_body(root: str, message: str) -> bytes:
    """An NCBI error document, shaped like pubmed/esummary_error_no_id.xml."""
    doctype = _DOCTYPES.get(root)
    head = '<?xml version="1.0" encoding="UTF-8" ?>\n'
    if doctype is not None:
        head += f"<!DOCTYPE {_DOCTYPE_NAMES[root]} PUBLIC {doctype}>\n"
    return f"{head}<{root}>\n\t<ERROR>{escape(message)}</ERROR>\n</{root}>\n".encode()


class PubMedRoutes:
    """ESearch and EFetch of PubMed E-utilities."""

    name: ClassVar[str] = "pubmed"
    base_path: ClassVar[str] = "/entrez/eutils"

    def __init__(
        self,
        fixtures_dir: Path,
        *,
        max_retrievable: int = 9_999,
        beyond_cap_status: int = 400,
        require_identification: bool = True,
    ) -> None:
        self.corpus = load_corpus(fixtures_dir)
        self._by_pmid = {a.pmid: a for a in self.corpus}
        self.max_retrievable = max_retrievable
        # Reports differ (HTTP 400 or 200 with the same ERROR); 400 is the common one.
        self.beyond_cap_status = beyond_cap_status
        self.require_identification = require_identification
        self._history: dict[str, dict[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self._fixtures_dir = fixtures_dir

    def include_updates(self) -> None:
        """Serve the recorded articles of ``updates/pubmed`` too (see tests/emulator/notices)."""
        extra = [
            Article(p, when, raw) for p, when, raw in notices.pubmed_articles(self._fixtures_dir)
        ]
        self._set_corpus([*self.corpus, *(a for a in extra if a.pmid not in self._by_pmid)])

    def enter(self, pmid: str, when: datetime) -> None:
        """Serve ``pmid`` as entered (Entrez date) at ``when``: "a day of notices"."""
        self._set_corpus(
            [Article(a.pmid, when, a.xml) if a.pmid == pmid else a for a in self.corpus]
        )

    def _set_corpus(self, articles: list[Article]) -> None:
        self.corpus = tuple(sorted(articles, key=lambda a: (a.entrez, int(a.pmid)), reverse=True))
        self._by_pmid = {a.pmid: a for a in self.corpus}

    def handle(self, request: Request) -> Reply:
        if request.path == "/esearch.fcgi":
            return self._checked(request, "eSearchResult", self.esearch)
        if request.path == "/efetch.fcgi":
            return self._checked(request, "eFetchResult", self.efetch)
        return Reply(404, b"Not Found", content_type="text/plain")

    def history(self, webenv: str, query_key: str) -> tuple[str, ...] | None:
        """The PMIDs stored under ``webenv``/``query_key``, if any."""
        with self._lock:
            return self._history.get(webenv, {}).get(query_key)

    def _checked(self, request: Request, root: str, answer: _Handler) -> Reply:
        params = request.params
        if self.require_identification and not (params.get("tool") and params.get("email")):
            message = "emulator: E-utilities requests must carry tool and email (NCBI policy)"
            return Reply(400, error_body(root, message))
        if params.get("db", "") != "pubmed":
            return Reply(200, error_body(root, f"Invalid db name specified: {params.get('db')}"))
        if params.get("retmode", "xml") != "xml":
            return Reply(400, error_body(root, "emulator: only retmode=xml is served"))
        try:
            retstart = int(params.get("retstart", "0"))
            retmax = int(params.get("retmax", "20"))
        except ValueError:
            return Reply(400, error_body(root, "emulator: retstart/retmax must be integers"))
        if retstart > self.max_retrievable - 1:
            return Reply(self.beyond_cap_status, error_body(root, self._cap_message()))
        return answer(request, retstart, max(0, min(retmax, _MAX_RETMAX)))

    def _cap_message(self) -> str:
        cap = self.max_retrievable
        return (
            f"Search Backend failed: Exception:\n'retstart' cannot be larger than {cap - 1}."
            f" For PubMed, ESearch can only retrieve the first {cap:,} records matching the"
            f" query. To obtain more than {cap:,} PubMed records, consider using EDirect that"
            " contains additional logic to batch PubMed search results automatically so that"
            " an arbitrary number can be retrieved. For details see"
            " https://www.ncbi.nlm.nih.gov/books/NBK25499/"
        )

    def _page(self, ids: tuple[str, ...], retstart: int, retmax: int) -> tuple[str, ...]:
        end = min(retstart + retmax, self.max_retrievable)  # clamped without a word
        return ids[retstart:end]

    def esearch(self, request: Request, retstart: int, retmax: int) -> Reply:
        params = request.params
        term = params.get("term", "").strip()
        if not term:
            message = "Empty term and query_key - nothing todo"
            return Reply(200, error_body("eSearchResult", message))
        try:
            window = _window(params)
        except ValueError as e:
            return Reply(400, error_body("eSearchResult", f"emulator: {e}"))
        pmids = {m.group(1) for m in _PMID_TERM.finditer(term)}
        types = notices.pt_terms(term)  # "…"[pt] is evaluated: the update job's notices
        ids = tuple(
            a.pmid
            for a in self.corpus
            if (not pmids or a.pmid in pmids)
            and (not types or notices.publication_types(a.xml) & types)
            and (window is None or window[0] <= a.entrez.date() <= window[1])
        )
        history = ""
        if params.get("usehistory") == "y":
            webenv, query_key = self._store(params.get("WebEnv"), ids)
            history = f"<QueryKey>{query_key}</QueryKey><WebEnv>{webenv}</WebEnv>"
        page = self._page(ids, retstart, retmax)
        id_list = "<IdList>\n" + "".join(f"<Id>{i}</Id>\n" for i in page) + "</IdList>"
        translation = f"({escape(term)})"
        if window is not None:
            translation += f" AND {window[0]:%Y/%m/%d}:{window[1]:%Y/%m/%d}[Date - Entry]"
        warning = (
            "<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>"
            if not ids
            else ""
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8" ?>\n'
            f"<!DOCTYPE eSearchResult PUBLIC {_DOCTYPES['eSearchResult']}>\n"
            f"<eSearchResult><Count>{len(ids)}</Count><RetMax>{len(page)}</RetMax>"
            f"<RetStart>{retstart}</RetStart>{history}"
            f"{id_list if page else '<IdList/>'}<TranslationSet/>"
            f"<QueryTranslation>{translation}</QueryTranslation>{warning}</eSearchResult>\n"
        )
        return Reply(200, body.encode())

    def efetch(self, request: Request, retstart: int, retmax: int) -> Reply:
        params = request.params
        if params.get("rettype", "xml") not in ("xml", "abstract", ""):
            return Reply(400, error_body("eFetchResult", "emulator: only rettype=xml is served"))
        if params.get("id"):
            wanted = dict.fromkeys(i.strip() for i in params["id"].split(",") if i.strip())
            articles = [self._by_pmid[i] for i in wanted if i in self._by_pmid]
        elif params.get("WebEnv") and params.get("query_key"):
            query_key = params["query_key"]
            ids = self.history(params["WebEnv"], query_key)
            if ids is None:
                message = f"Unable to obtain query #{query_key}"
                return Reply(200, error_body("eFetchResult", message))
            articles = [self._by_pmid[i] for i in self._page(ids, retstart, retmax)]
        else:
            return Reply(200, error_body("eFetchResult", "Empty id list - nothing todo"))
        body = EFETCH_HEAD + b"<PubmedArticleSet>\n"
        body += b"".join(a.xml for a in articles) + b"</PubmedArticleSet>"
        return Reply(200, body)

    def _store(self, webenv: str | None, ids: tuple[str, ...]) -> tuple[str, str]:
        with self._lock:
            if webenv is None or webenv not in self._history:
                webenv = "MCID_" + secrets.token_hex(12)
                self._history[webenv] = {}
            queries = self._history[webenv]
            query_key = str(len(queries) + 1)
            queries[query_key] = ids
            return webenv, query_key


def _window(params: Mapping[str, str]) -> tuple[date, date] | None:
    mindate, maxdate = params.get("mindate"), params.get("maxdate")
    if mindate is None and maxdate is None:
        return None
    if mindate is None or maxdate is None:
        raise ValueError("mindate and maxdate must be used together")
    datetype = params.get("datetype")
    if datetype != "edat":
        raise ValueError(f"only datetype=edat is emulated, not {datetype!r}")
    return _date(mindate, last=False), _date(maxdate, last=True)


def _date(value: str, *, last: bool) -> date:
    """NCBI dates: YYYY, YYYY/MM or YYYY/MM/DD; a partial maxdate means its last day."""
    match = _DATE.match(value.strip())
    if match is None:
        raise ValueError(f"invalid date {value!r}, expected YYYY/MM/DD")
    year, month, day = match.groups()
    if month is None:
        return date(int(year), 12 if last else 1, 31 if last else 1)
    if day is None:
        start = date(int(year), int(month), 1)
        if not last:
            return start
        following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        return date.fromordinal(following.toordinal() - 1)
    return date(int(year), int(month), int(day))
