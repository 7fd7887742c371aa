"""The API emulator: PubMed E-utilities from the recorded records, faults, rate limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from lxml import etree

from tests.emulator import FIXTURES_DIR, Emulator
from tests.emulator.pubmed import PubMedRoutes, load_corpus

pytestmark = pytest.mark.integration

POLITE = {"db": "pubmed", "tool": "harvester-tests", "email": "tests@example.org"}
DECEMBER_2022 = {"datetype": "edat", "mindate": "2022/12/01", "maxdate": "2022/12/31"}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def pubmed(emu: Emulator) -> PubMedRoutes:
    routes = emu.source("pubmed")
    assert isinstance(routes, PubMedRoutes)
    return routes


def esearch(emu: Emulator, client: httpx.Client, **params: str | int) -> etree._Element:
    url = emu.base_url("pubmed") + "/esearch.fcgi"
    response = client.get(url, params={**POLITE, "term": "anything", **params})
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content)


def efetch(emu: Emulator, client: httpx.Client, **params: str | int) -> httpx.Response:
    return client.get(emu.base_url("pubmed") + "/efetch.fcgi", params={**POLITE, **params})


def ids(result: etree._Element) -> list[str]:
    return [i.text or "" for i in result.iterfind("IdList/Id")]


def entrez_dates() -> dict[str, date]:
    """Each recorded PMID's Entrez date, read independently of the emulator."""
    found: dict[str, date] = {}
    for path in (FIXTURES_DIR / "pubmed").glob("efetch_*.xml"):
        for article in etree.parse(str(path)).iterfind("PubmedArticle"):
            pubdate = article.find('PubmedData/History/PubMedPubDate[@PubStatus="entrez"]')
            assert pubdate is not None
            day = date(*(int(pubdate.findtext(t) or 0) for t in ("Year", "Month", "Day")))
            found[article.findtext("MedlineCitation/PMID") or ""] = day
    return found


def test_the_corpus_is_every_recorded_article_byte_for_byte() -> None:
    corpus = load_corpus(FIXTURES_DIR)
    recorded = b"".join(p.read_bytes() for p in (FIXTURES_DIR / "pubmed").glob("efetch_*.xml"))

    assert len(corpus) == len(entrez_dates()) == 56
    assert {a.pmid for a in corpus} == set(entrez_dates())
    assert all(a.xml.startswith(b"<PubmedArticle>") and a.xml in recorded for a in corpus)
    assert [a.entrez for a in corpus] == sorted((a.entrez for a in corpus), reverse=True)


def test_esearch_counts_the_records_entered_in_the_window(
    emu: Emulator, client: httpx.Client
) -> None:
    expected = {
        p for p, d in entrez_dates().items() if date(2022, 12, 1) <= d <= date(2022, 12, 31)
    }

    result = esearch(emu, client, **DECEMBER_2022, retmax=100)

    assert int(result.findtext("Count") or -1) == len(expected) == 11
    assert set(ids(result)) == expected
    assert "2022/12/01:2022/12/31[Date - Entry]" in (result.findtext("QueryTranslation") or "")
    assert result.find("WebEnv") is None  # no history unless asked


def test_esearch_pages_cover_the_window_newest_first(emu: Emulator, client: httpx.Client) -> None:
    whole = ids(esearch(emu, client, **DECEMBER_2022, retmax=100))
    pages = [esearch(emu, client, **DECEMBER_2022, retstart=s, retmax=4) for s in (0, 4, 8, 12)]

    assert [p.findtext("RetStart") for p in pages] == ["0", "4", "8", "12"]
    assert [p.findtext("RetMax") for p in pages] == ["4", "4", "3", "0"]
    assert [i for p in pages for i in ids(p)] == whole
    dates = entrez_dates()
    assert [dates[i] for i in whole] == sorted((dates[i] for i in whole), reverse=True)


def test_esearch_without_dates_and_with_no_hits(emu: Emulator, client: httpx.Client) -> None:
    assert esearch(emu, client).findtext("Count") == "56"
    empty = esearch(emu, client, datetype="edat", mindate="2030", maxdate="2031")
    assert empty.findtext("Count") == "0"
    assert empty.find("IdList") is not None and ids(empty) == []
    assert empty.findtext("WarningList/OutputMessage") == "No items found."


def test_esearch_partial_dates_cover_whole_months_and_years(
    emu: Emulator, client: httpx.Client
) -> None:
    by_month = esearch(emu, client, datetype="edat", mindate="2022/12", maxdate="2022/12")
    by_year = esearch(emu, client, datetype="edat", mindate="2024", maxdate="2024")

    assert by_month.findtext("Count") == "11"
    dates = entrez_dates()
    assert by_year.findtext("Count") == str(sum(d.year == 2024 for d in dates.values()))


def test_pmid_tokens_in_the_term_select_those_records(emu: Emulator, client: httpx.Client) -> None:
    result = esearch(emu, client, term="9997[pmid] OR 12091962[uid] OR 1[pmid]")
    assert ids(result) == ["12091962", "9997"]


def test_efetch_by_webenv_returns_exactly_the_selected_records(
    emu: Emulator, client: httpx.Client
) -> None:
    search = esearch(emu, client, **DECEMBER_2022, usehistory="y", retmax=0)
    webenv, query_key = search.findtext("WebEnv") or "", search.findtext("QueryKey") or ""
    selected = pubmed(emu).history(webenv, query_key)
    assert webenv.startswith("MCID_") and query_key == "1" and selected is not None

    response = efetch(emu, client, WebEnv=webenv, query_key=query_key, retstart=3, retmax=5)

    assert response.status_code == 200
    assert response.content.startswith(b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet')
    document = etree.fromstring(response.content)
    pmids = [p.text for p in document.iterfind("PubmedArticle/MedlineCitation/PMID")]
    assert pmids == list(selected[3:8])
    corpus = {a.pmid: a.xml for a in load_corpus(FIXTURES_DIR)}
    assert all(corpus[p or ""] in response.content for p in pmids)


def test_efetch_by_id_keeps_the_order_and_skips_unknown_ids(
    emu: Emulator, client: httpx.Client
) -> None:
    response = efetch(emu, client, id="9997,1,12091962,9997", retmode="xml")
    document = etree.fromstring(response.content)
    assert [p.text for p in document.iterfind("PubmedArticle/MedlineCitation/PMID")] == [
        "9997",
        "12091962",
    ]
    nothing = efetch(emu, client, id="1")
    empty = (FIXTURES_DIR / "pubmed" / "efetch_pubmed_empty_articleset.xml").read_bytes()
    assert nothing.content == empty


def test_efetch_with_an_unknown_webenv_answers_an_ncbi_error(
    emu: Emulator, client: httpx.Client
) -> None:
    response = efetch(emu, client, WebEnv="MCID_unknown", query_key="1")
    document = etree.fromstring(response.content)
    assert document.tag == "eFetchResult"
    assert document.findtext("ERROR") == "Unable to obtain query #1"


def test_retrieval_stops_at_the_cap_like_ncbi(emu: Emulator, client: httpx.Client) -> None:
    pubmed(emu).max_retrievable = 5
    search = esearch(emu, client, **DECEMBER_2022, usehistory="y", retstart=3, retmax=10)
    assert search.findtext("Count") == "11"  # the whole count is still announced
    assert len(ids(search)) == 2  # a page crossing the cap is clamped silently

    url = emu.base_url("pubmed") + "/esearch.fcgi"
    beyond = client.get(url, params={**POLITE, "term": "x", **DECEMBER_2022, "retstart": 5})
    assert beyond.status_code == 400
    assert "'retstart' cannot be larger than 4" in beyond.text
    webenv = search.findtext("WebEnv") or ""
    fetched = efetch(emu, client, WebEnv=webenv, query_key="1", retstart=5, retmax=5)
    assert fetched.status_code == 400 and "<eFetchResult>" in fetched.text


def test_requests_must_identify_themselves(emu: Emulator, client: httpx.Client) -> None:
    url = emu.base_url("pubmed") + "/esearch.fcgi"
    anonymous = client.get(url, params={"db": "pubmed", "term": "x"})
    esearch(emu, client)

    assert anonymous.status_code == 400 and "tool and email" in anonymous.text
    polite = emu.requests[-1]
    assert polite.params["tool"] == "harvester-tests"
    assert polite.params["email"] == "tests@example.org"
    assert polite.path == "/pubmed/entrez/eutils/esearch.fcgi" and polite.source == "pubmed"


def test_bad_requests_get_errors_not_guesses(emu: Emulator, client: httpx.Client) -> None:
    url = emu.base_url("pubmed") + "/esearch.fcgi"
    wrong_db = client.get(url, params={**POLITE, "db": "nothing", "term": "x"})
    bad_date = client.get(url, params={**POLITE, "term": "x", **DECEMBER_2022, "mindate": "1.1."})
    pdat = client.get(url, params={**POLITE, "term": "x", **DECEMBER_2022, "datetype": "pdat"})
    no_term = client.get(url, params=POLITE)

    assert "Invalid db name specified: nothing" in wrong_db.text
    assert bad_date.status_code == 400 and pdat.status_code == 400
    assert "Empty term" in no_term.text
    assert client.get(f"{emu.url}/nowhere/x").status_code == 404


def test_status_faults_are_served_then_run_out(emu: Emulator, client: httpx.Client) -> None:
    emu.faults.add(
        source="pubmed", path_suffix="efetch.fcgi", kind="status", status=429, retry_after=2
    )
    emu.faults.add(source="pubmed", path_suffix="efetch.fcgi", kind="status", times=1)

    statuses = [efetch(emu, client, id="9997") for _ in range(3)]

    assert [r.status_code for r in statuses] == [429, 503, 200]
    assert statuses[0].headers["Retry-After"] == "2"
    assert [r.status for r in emu.requests] == [429, 503, 200]
    assert esearch(emu, client).findtext("Count") == "56"  # other paths unaffected


def test_body_fault_serves_a_recorded_error(emu: Emulator, client: httpx.Client) -> None:
    emu.faults.add(
        source="pubmed", kind="body", fixture="pubmed/esummary_error_no_id.xml", times=None
    )
    response = efetch(emu, client, id="9997")
    again = efetch(emu, client, id="9997")

    assert response.status_code == 200
    assert response.content == (FIXTURES_DIR / "pubmed/esummary_error_no_id.xml").read_bytes()
    assert again.content == response.content


@pytest.mark.parametrize("how", ["cut", "extend"])
def test_truncated_bodies_break_the_read(emu: Emulator, client: httpx.Client, how: str) -> None:
    emu.faults.add(source="pubmed", path_suffix="efetch.fcgi", kind="truncate", how=how)  # type: ignore[arg-type]
    with pytest.raises(httpx.RemoteProtocolError):
        efetch(emu, client, id="9997")
    assert efetch(emu, client, id="9997").status_code == 200


def test_slow_fault_delays_the_answer(emu: Emulator) -> None:
    emu.faults.add(source="pubmed", kind="slow", delay=0.5)
    with httpx.Client(timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        efetch(emu, impatient, id="9997")


def test_rate_limit_answers_429_with_retry_after(emu: Emulator, client: httpx.Client) -> None:
    emu.set_rate_limit("pubmed", per_second=2)
    responses = [efetch(emu, client, id="9997") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].headers["Retry-After"] == "1"


def test_ncbi_rate_limit_is_3_a_second_or_10_with_a_key(
    emu: Emulator, client: httpx.Client
) -> None:
    emu.set_rate_limit("pubmed", ncbi=True)
    anonymous = [efetch(emu, client, id="9997") for _ in range(4)]
    keyed = [efetch(emu, client, id="9997", api_key="k") for _ in range(11)]

    assert [r.status_code for r in anonymous] == [200, 200, 200, 429]
    assert "Retry-After" not in anonymous[3].headers
    assert anonymous[3].json() == {
        "error": "API rate limit exceeded",
        "api-key": "127.0.0.1",
        "count": "4",
        "limit": "3",
    }
    assert [r.status_code for r in keyed] == [200] * 10 + [429]


def test_request_log_records_arrival_times(emu: Emulator, client: httpx.Client) -> None:
    efetch(emu, client, id="9997")
    efetch(emu, client, id="12091962")
    first, second = emu.requests
    assert first.params["id"] == "9997" and first.method == "GET"
    assert first.time <= second.time
    assert re.match(r"python-httpx/", first.headers["user-agent"])
