"""PubMed parsing, replayed from the real E-utilities responses in ../shared/fixtures/pubmed
(see PROVENANCE.md there). Where a test needs a body no recording has (a broken article,
a deletion notice, a truncated page), it says how it derives one from a real fixture.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from harvester.errors import ParseError
from harvester.records import ID_SCHEMES, Record, join_sections
from harvester.sources.base import ParseResult, Skipped
from harvester.sources.pubmed import ESearchResult, parse_efetch, parse_esearch
from harvester.sources.pubmed import cutter as pubmed_records

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures" / "pubmed"
if not FIXTURES.is_dir():
    pytest.skip(f"../shared not found at {SHARED}", allow_module_level=True)

FIFTY = "efetch_pubmed_50_records_structured_abstracts.xml"
URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/efetch.fcgi?db=pubmed&id=1"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fetch(name: str) -> list[Record]:
    result = parse_efetch(body(name), url=name)
    assert result.skipped == ()
    return list(result.records)


def one(name: str) -> Record:
    (record,) = fetch(name)
    return record


def by_pmid(name: str, pmid: str) -> Record:
    return next(r for r in fetch(name) if r.source_id == pmid)


def edited(name: str, edit: Any) -> bytes:
    """A real fixture, parsed, changed by ``edit(root)`` and serialized again."""
    root = etree.fromstring(body(name), etree.XMLParser(resolve_entities=False, no_network=True))
    edit(root)
    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return result


# --- the 50-record page ----------------------------------------------------------------------


def test_fifty_records_with_22_structured_abstracts_and_one_without() -> None:
    records = fetch(FIFTY)
    assert len(records) == 50
    assert sum(1 for r in records if any(s.label for s in r.abstract_sections)) == 22
    (no_abstract,) = (r for r in records if r.abstract is None)
    assert no_abstract.source_id == "36550327"
    assert no_abstract.abstract_sections == ()
    assert no_abstract.title == (
        "ASO Author Reflections: Development of Natural Language Processing-Based "
        "Machine-Learning Algorithms to Identify Pathologic Complete Response from Surgical "
        "Pathology Reports."
    )


def test_fifty_records_are_the_pmids_the_matching_esearch_returned() -> None:
    # PROVENANCE: the efetch was requested with the 50 PMIDs of the recorded esearch JSON.
    search = parse_esearch(body("esearch_pubmed_retmode_json.json"))
    assert {r.source_id for r in fetch(FIFTY)} == set(search.ids)


def test_spanish_other_abstract_is_kept_apart() -> None:
    record = by_pmid(FIFTY, "38799249")
    (other,) = record.other_abstracts
    assert other.language == "es"
    assert other.text.startswith("El control del uso del suelo el local y sumamente variado.")
    assert record.abstract is not None
    assert record.abstract.startswith("Land-use control is local and highly varied.")
    assert "El control" not in record.abstract
    assert record.ids.doi == "10.1177/0739456x21995890"
    assert record.ids.pmcid == "PMC11114038"
    assert record.title == (
        "What Is in a Plan? Using Natural Language Processing to Read 461 California City "
        "General Plans."
    )


def test_plain_language_summary_goes_to_other_abstracts() -> None:
    record = by_pmid(FIFTY, "38654755")
    (summary,) = record.other_abstracts
    assert summary.language == "en"
    assert summary.text.startswith("Software engineers usually spends a lot of time")
    assert record.abstract is not None
    assert "Software engineers usually" not in record.abstract


def test_markup_in_titles_and_abstracts_becomes_text() -> None:
    titles = {r.title for r in fetch(FIFTY)}
    assert (
        # <sup>6</sup> in the recording: written as a superscript, not flattened to "m6A"
        "MTTLm⁶A: A multi-task transfer learning approach for base-resolution mRNA m⁶A site "
        "prediction based on an improved transformer."
    ) in titles
    texts = [t for r in fetch(FIFTY) for t in (r.title, r.abstract) if t is not None]
    assert not [t for t in texts if re.search(r"<[A-Za-z/!]|&#|&[a-z]+;", t)]
    # A literal "<" in the recorded text is kept as text ("p &lt; 0.001" in the XML).
    assert any("p < 0.001" in t for t in texts)


def test_doi_never_comes_from_the_reference_list() -> None:
    # Derived from the real 50-record page: the first article with DOIs in its ReferenceList
    # loses its own DOI (ArticleIdList and ELocationID); its references keep theirs.
    chosen: dict[str, str] = {}

    def drop_own_doi(root: Any) -> None:
        article = next(
            a
            for a in root.iterfind("PubmedArticle")
            if a.find("PubmedData/ReferenceList//ArticleId[@IdType='doi']") is not None
        )
        chosen["pmid"] = article.findtext("MedlineCitation/PMID")
        for node in article.iterfind("PubmedData/ArticleIdList/ArticleId[@IdType='doi']"):
            node.getparent().remove(node)
        for node in article.iterfind("MedlineCitation/Article/ELocationID[@EIdType='doi']"):
            node.getparent().remove(node)

    result = parse_efetch(edited(FIFTY, drop_own_doi))
    record = next(r for r in result.records if r.source_id == chosen["pmid"])
    assert record.ids.doi is None
    assert record.ids.pmid == chosen["pmid"]


# --- single-record recordings ----------------------------------------------------------------


def test_collective_author_and_structured_abstract() -> None:
    record = one("efetch_pubmed_collective_author_structured_abstract.xml")
    assert record.source_id == "38534005"
    assert [s.label for s in record.abstract_sections] == [
        "BACKGROUND",
        "RECOMMENDATIONS",
        "MEDICAL NEEDS AND TEST REQUISITION",
        "SPECIMEN COLLECTION",
        "CHEMISTRY",
        "PARTICLES",
        "BACTERIOLOGY",
    ]
    assert record.abstract == join_sections(record.abstract_sections)
    assert record.abstract is not None
    assert record.abstract.startswith("BACKGROUND: The EFLM Task and Finish Group Urinalysis")
    assert "\n\nRECOMMENDATIONS: Graded recommendations were built in the following areas." in (
        record.abstract
    )
    assert "urine albumin and α1-microglobulin" in record.abstract
    assert "Aerococcus urinae, A. sanguinicola and Actinotignum schaalii" in record.abstract
    assert "Walter de Gruyter" not in record.abstract  # CopyrightInformation is not abstract
    assert record.authors[0].to_json() == {
        "family": "Kouri",
        "given": "Timo T",
        "orcid": "0000-0002-3282-232X",
    }
    assert record.authors[1].orcid is None
    assert record.authors[-1].to_json() == {
        "collective": "Task and Finish Group for Urinalysis (TFG-U), European Federation of "
        "Clinical Chemistry and Laboratory Medicine (EFLM)"
    }
    assert len(record.authors) == 9
    assert (record.venue, record.volume, record.issue, record.pages) == (
        "Clinical chemistry and laboratory medicine",
        "62",
        "9",
        "1653-1786",
    )
    assert (record.year, record.published) == (2024, "2024-08-27")
    assert record.ids.to_json() == {"doi": "10.1515/cclm-2024-0070", "pmid": "38534005"}
    assert record.url == "https://pubmed.ncbi.nlm.nih.gov/38534005/"
    assert record.keywords[:2] == ("Humans", "Urinalysis")
    assert "bacteriological techniques" in record.keywords


def test_mathml_abstract_reads_as_text() -> None:
    record = one("efetch_pubmed_collective_author_mathml.xml")
    assert record.source_id == "29963580"
    (section,) = record.abstract_sections
    assert section.label is None
    assert record.abstract == section.text
    assert "(1) inhaled ³He/¹²⁹Xe MRI ventilation and apparent diffusion coefficients" in (
        section.text
    )
    assert "ultrashort echo-time ¹H MRI proton density" in section.text
    assert "mml" not in section.text and "<" not in section.text
    assert {"collective": "Canadian Respiratory Research Network"} in [
        a.to_json() for a in record.authors
    ]
    # The 2019 recording gives this ORCID as a URL.
    assert [a.orcid for a in record.authors if a.orcid] == [
        "0000-0002-4590-7461",
        "0000-0003-3525-2788",
    ]
    assert record.ids.to_json() == {
        "doi": "10.1117/1.jmi.5.2.026002",
        "pmid": "29963580",
        "pmcid": "PMC6022861",
    }
    assert (record.pages, record.published, record.year) == ("026002", "2018-04", 2018)


def test_german_record_without_abstract() -> None:
    record = one("efetch_pubmed_german_vernacular_title_no_abstract.xml")
    assert record.language == "de"
    assert record.abstract is None
    assert record.abstract_sections == ()
    # NLM's [brackets] around a translated title are dropped; its closing period is kept.
    assert record.title == "A Broader Scope - Bio-Psycho-Social Medicine In Global Focus."
    assert record.type == "editorial"
    assert (record.year, record.published, record.pages) == (2023, "2023-12", "487-488")
    assert record.ids.doi == "10.1055/a-2189-0166"


def test_not_available_title_falls_back_to_the_vernacular_title() -> None:
    # Derived: the German record's ArticleTitle replaced by NLM's "[Not Available]." marker.
    def untitle(root: Any) -> None:
        root.find(".//ArticleTitle").text = "[Not Available]."

    (record,) = parse_efetch(
        edited("efetch_pubmed_german_vernacular_title_no_abstract.xml", untitle)
    ).records
    assert record.title == "A Broader Scope \u2013 Bio-psycho-soziale Medizin im globalen Fokus."


def test_forty_three_authors() -> None:
    record = one("efetch_pubmed_43_authors.xml")
    assert record.source_id == "39142283"
    assert len(record.authors) == 43
    assert (record.authors[0].family, record.authors[0].given) == ("Parsons", "Michael T")
    assert (record.authors[-1].family, record.authors[-1].given) == ("Spurdle", "Amanda B")
    assert record.published == "2024-09-05"


def test_season_date_review_type_and_medline_pages() -> None:
    old, newer = fetch("efetch_pubmed_rettype_abstract_2_records.xml")
    assert (old.source_id, old.published, old.year) == ("12091962", "1990-03", 1990)  # Spring
    assert old.type == "review"
    assert old.pages == "113-125"
    assert old.ids.to_json() == {"pmid": "12091962"}
    assert old.authors[0].to_json() == {"family": "Olivero", "given": "J Michael", "orcid": None}
    assert (newer.source_id, newer.published, newer.pages) == ("9997", "1976-09-28", "179-191")
    assert newer.type == "journal-article"


def test_empty_articleset_is_an_empty_page() -> None:
    result = parse_efetch(body("efetch_pubmed_empty_articleset.xml"))
    assert result.records == () and result.skipped == ()


# --- every record matches the Record schema --------------------------------------------------

EFETCH_FILES = sorted(p.name for p in FIXTURES.glob("efetch_*.xml"))


def _no_empty_strings(value: Any, path: str = "record") -> None:
    if isinstance(value, str):
        assert value.strip(), f"{path} is an empty string"
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_empty_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_empty_strings(item, f"{path}[{index}]")


@pytest.mark.parametrize("name", EFETCH_FILES)
def test_every_record_matches_the_schema(name: str) -> None:
    for record in fetch(name):
        data = record.to_json()
        json.dumps(data)  # serializable as one JSON line
        _no_empty_strings(data)
        assert data["source"] == "pubmed"
        assert set(data["ids"]) <= set(ID_SCHEMES)
        assert record.source_id is not None and record.source_id.isdigit()
        assert data["ids"]["pmid"] == record.source_id
        assert data["url"] == f"https://pubmed.ncbi.nlm.nih.gov/{record.source_id}/"
        assert data["year"] is None or isinstance(data["year"], int)
        if data["published"] is not None:
            assert data["published"][:4] == str(data["year"])
        assert data["abstract"] == join_sections(record.abstract_sections)
        for author in data["authors"]:
            assert set(author) in ({"collective"}, {"family", "given", "orcid"})
        assert data["language"] is None or len(data["language"]) in (2, 3)
        assert Record.from_json(data) == record


# --- one bad article, error bodies, truncation -----------------------------------------------


def test_a_broken_article_is_skipped_and_the_rest_kept() -> None:
    # Derived from the real 50-record page: the third article loses its <Article> element,
    # and a <DeleteCitation> (as NCBI sends for deleted PMIDs; PubMed DTD) is appended.
    broken: dict[str, str] = {}

    def damage(root: Any) -> None:
        third = root.findall("PubmedArticle")[2]
        broken["pmid"] = third.findtext("MedlineCitation/PMID")
        citation = third.find("MedlineCitation")
        citation.remove(citation.find("Article"))
        deleted = etree.SubElement(root, "DeleteCitation")
        etree.SubElement(deleted, "PMID", Version="1").text = "12345678"

    result = parse_efetch(edited(FIFTY, damage))
    assert len(result.records) == 49
    assert broken["pmid"] not in {r.source_id for r in result.records}
    assert result.skipped == (
        Skipped(source_id=broken["pmid"], reason="no <Article> in <MedlineCitation>"),
        Skipped(source_id="12345678", reason="deleted from PubMed"),
    )


def test_an_article_without_pmid_is_skipped() -> None:
    # Derived: the German record's PMID emptied.
    def blank(root: Any) -> None:
        root.find(".//MedlineCitation/PMID").text = ""

    result = parse_efetch(edited("efetch_pubmed_german_vernacular_title_no_abstract.xml", blank))
    assert result.records == ()
    assert result.skipped == (Skipped(source_id=None, reason="missing or invalid PMID ''"),)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("esummary_error_no_id.xml", "Neither query_key nor id specified"),
        ("epost_error_invalid_db.xml", "Invalid db name specified: nothing"),
    ],
)
def test_ncbi_error_bodies_raise_parse_error(name: str, message: str) -> None:
    for parse in (parse_efetch, parse_esearch):
        with pytest.raises(ParseError, match=message) as caught:
            parse(body(name), url=URL)
        assert URL in str(caught.value)


def test_truncated_body_raises_parse_error() -> None:
    # The first 5000 bytes of the real 50-record page: cut off inside the first article.
    with pytest.raises(ParseError, match="truncated") as caught:
        parse_efetch(body(FIFTY)[:5000], url=URL)
    assert URL in str(caught.value)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty body"),
        (b"  \n", "empty body"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "expected <PubmedArticleSet>"),
        # NCBI's rate-limit answer as its documentation quotes it (no recording exists).
        (b'{"error":"API rate limit exceeded","count":"11"}', "API rate limit exceeded"),
        (body("esearch_pubmed_term_biopython.xml"), "got <eSearchResult>"),
    ],
)
def test_bodies_that_are_not_an_article_set_raise(payload: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_efetch(payload, url=URL)


def test_book_article() -> None:
    # No recording holds a PubmedBookArticle; this one is hand-built after the PubMed DTD.
    xml = b"""<PubmedArticleSet><PubmedBookArticle><BookDocument>
      <PMID Version="1">20301295</PMID>
      <ArticleIdList><ArticleId IdType="bookaccession">NBK1116</ArticleId></ArticleIdList>
      <Book><Publisher><PublisherName>University of Washington</PublisherName></Publisher>
        <BookTitle book="gene">GeneReviews<sup>\xc2\xae</sup></BookTitle>
        <PubDate><Year>1993</Year></PubDate>
        <AuthorList Type="editors"><Author><LastName>Adam</LastName><ForeName>Margaret P</ForeName>
        </Author></AuthorList></Book>
      <ArticleTitle book="gene" part="brca1">BRCA1- and BRCA2-Associated Cancer</ArticleTitle>
      <Language>eng</Language>
      <AuthorList Type="authors"><Author><LastName>Petrucelli</LastName>
        <ForeName>Nancie</ForeName></Author></AuthorList>
      <Abstract><AbstractText Label="CLINICAL CHARACTERISTICS">Text.</AbstractText></Abstract>
    </BookDocument><PubmedBookData><ArticleIdList>
      <ArticleId IdType="pubmed">20301295</ArticleId></ArticleIdList></PubmedBookData>
    </PubmedBookArticle></PubmedArticleSet>"""
    (record,) = parse_efetch(xml).records
    assert (record.title, record.venue, record.type) == (
        "BRCA1- and BRCA2-Associated Cancer",
        "GeneReviews®",
        "book-chapter",
    )
    assert [a.family for a in record.authors] == ["Petrucelli"]  # not the editors
    assert (record.year, record.language, record.abstract) == (
        1993,
        "en",
        "CLINICAL CHARACTERISTICS: Text.",
    )


# --- esearch ---------------------------------------------------------------------------------


def test_esearch_with_history() -> None:
    result = parse_esearch(body("esearch_pubmed_usehistory.xml"))
    assert (result.count, result.retmax, result.retstart) == (42249, 100, 0)
    assert (result.query_key, result.webenv) == ("1", "MCID_6927d6e7fee3e90f880ec190")
    assert len(result.ids) == 100
    assert (result.ids[0], result.ids[-1]) == ("41297076", "41296368")
    assert result.errors == () and result.warnings == ()


def test_esearch_default_paging() -> None:
    result = parse_esearch(body("esearch_pubmed_term_biopython.xml"))
    assert (result.count, result.retmax, len(result.ids)) == (63, 20, 20)
    assert (result.query_key, result.webenv) == (None, None)
    assert result.query_translation == '"biopython"[All Fields]'


def test_esearch_no_results_reports_errors_and_warnings() -> None:
    assert parse_esearch(body("esearch_no_results_phrase_not_found.xml")) == ESearchResult(
        count=0,
        retmax=0,
        retstart=0,
        ids=(),
        query_translation="(abcXYZ[All Fields])",
        errors=("PhraseNotFound: abcXYZ",),
        warnings=("OutputMessage: No items found.",),
    )


def test_esearch_json() -> None:
    result = parse_esearch(body("esearch_pubmed_retmode_json.json"))
    assert (result.count, result.retmax, result.retstart) == (1834, 50, 0)
    assert len(result.ids) == 50 and result.ids[:2] == ("36006759", "38799249")
    assert (result.query_key, result.webenv) == (None, None)


def test_esearch_json_error_raises() -> None:
    # The recorded JSON with its result replaced by an ERROR entry, as NCBI writes one.
    data = json.loads(body("esearch_pubmed_retmode_json.json"))
    data["esearchresult"] = {"ERROR": "Invalid query"}
    with pytest.raises(ParseError, match="Invalid query"):
        parse_esearch(json.dumps(data).encode(), url=URL)


def test_esearch_truncated_and_wrong_bodies_raise() -> None:
    with pytest.raises(ParseError, match="truncated"):
        parse_esearch(body("esearch_pubmed_usehistory.xml")[:400])
    with pytest.raises(ParseError, match="malformed JSON"):
        parse_esearch(body("esearch_pubmed_retmode_json.json")[:300])
    with pytest.raises(ParseError, match="expected <eSearchResult>"):
        parse_esearch(body(FIFTY))


# --- the two ways through a page -------------------------------------------------------------
# parse_efetch reads a plain page in pieces cut at article ends (records._parse_in_pieces) and
# anything else with the streaming parser (records._parse_streaming). Both must give the same.


def _both(data: bytes) -> tuple[object, object]:
    """What the piecewise reader and the streaming parser make of ``data`` (a result, None
    when the piecewise reader declines, or the ParseError message)."""

    def run(parse: Any) -> object:
        try:
            return parse()
        except ParseError as error:
            return f"ParseError: {error}"

    return run(lambda: pubmed_records._parse_in_pieces(data)), run(
        lambda: pubmed_records._parse_streaming(data, "")
    )


@pytest.mark.parametrize("name", EFETCH_FILES)
def test_recorded_pages_are_read_in_pieces_with_the_streaming_result(name: str) -> None:
    pieces, streamed = _both(body(name))
    assert pieces is not None, "a page as NCBI sends it takes the quick path"
    assert pieces == streamed


def test_a_page_of_many_pieces_gives_the_streaming_result() -> None:
    # Derived: the 50 real articles of the page repeated 20 times (1,000 articles, ~15 MB, as
    # one efetch batch), so the page is cut into dozens of pieces.
    data = body(FIFTY)
    start, end = data.index(b"<PubmedArticle>"), data.rindex(b"</PubmedArticleSet>")
    page = data[:start] + data[start:end] * 20 + data[end:]
    pieces, streamed = _both(page)
    assert isinstance(pieces, type(streamed)) and pieces == streamed
    assert len(parse_efetch(page).records) == 1000


@pytest.mark.parametrize(
    "change",
    [
        # Each derived from the real page: what sends it to the streaming parser.
        lambda d: d.replace(b"<PubmedArticle>", b"<!-- </PubmedArticle> --><PubmedArticle>", 1),
        lambda d: d.replace(b"<ArticleTitle>", b"<ArticleTitle><![CDATA[</PubmedArticle>]]>", 1),
        lambda d: d.replace(b"<PubmedArticle>", b"<ERROR>Backend failed</ERROR><PubmedArticle>", 1),
        lambda d: d.replace(b"<PubmedArticle>", b"<Unknown/><PubmedArticle>", 1),
        lambda d: d.replace(b"PubmedArticleSet PUBLIC", b'PubmedArticleSet [<!ENTITY x "y">]', 1),
        lambda d: d[: len(d) // 2],
        lambda d: d + b"<PubmedArticle/>",
        lambda d: d + b"\x0c",  # whitespace to Python, not to XML (found by the test below)
        lambda d: d.replace(b"</PubmedArticle>", b"</PubmedArticle></PubmedArticle>", 1),
    ],
)  # fmt: skip
def test_unusual_pages_take_the_streaming_parser(change: Any) -> None:
    pieces, streamed = _both(change(body(FIFTY)))
    assert pieces is None
    assert streamed is not None


def test_reference_lists_are_left_out_unread_and_unchecked() -> None:
    # The piecewise reader cuts each article's reference lists (the works it cites) out before
    # lxml builds the tree, and does not check their syntax: derived from the real page, a
    # broken first reference gives the page's records there; the streaming parser refuses it.
    data = body(FIFTY)
    start, end = data.index(b"<PubmedArticleSet>") + 18, data.rindex(b"</PubmedArticleSet>")
    assert data.count(b"<ReferenceList>") == 28
    assert not any(b"<Reference" in piece for piece in pubmed_records._pieces(data[start:end]))
    at = data.index(b"<ReferenceList>") + len(b"<ReferenceList>")
    broken = data[:at] + b"<Reference><Citation>unclosed <i>" + data[at:]
    pieces, streamed = _both(broken)
    assert pieces is not None and pieces == pubmed_records._parse_in_pieces(data)
    assert isinstance(streamed, str) and "malformed" in streamed
    assert len(parse_efetch(broken).records) == 50


def _drop_second(data: bytes, text: bytes) -> bytes:
    at = data.index(text, data.index(text) + 1)
    return data[:at] + data[at + len(text) :]


_CITED = (
    b"<ReferenceList><Reference><Citation>Cited.</Citation><ArticleIdList>"
    b'<ArticleId IdType="doi">10.1000/cited</ArticleId></ArticleIdList></Reference></ReferenceList>'
)


@pytest.mark.parametrize(
    "change",
    [
        # Each derived from the real page. A list first in PubmedData (before the article's own
        # ArticleIdList): not followed by </PubmedData>, so left in and parsed.
        lambda d: d.replace(b"<PubmedData>", b"<PubmedData>" + _CITED, 1),
        # A list with an attribute, and a list nested in a list.
        lambda d: d.replace(b"<ReferenceList>", b'<ReferenceList Type="x">', 1),
        lambda d: d.replace(b"<ReferenceList>", b"<ReferenceList>" + _CITED, 1),
        # Two lists in a row, with whitespace between them and before </PubmedData>.
        lambda d: d.replace(b"</ReferenceList></PubmedData>", b"</ReferenceList>\n  "
                            + _CITED + b"\n</PubmedData>", 1),
        # The name as a citation's text: that run is left in and parsed.
        lambda d: d.replace(b"<Citation>", b"<Citation>ReferenceList: ", 1),
        # A list in an abstract's text: read as text by both ways.
        lambda d: d.replace(b"</AbstractText>", _CITED + b"</AbstractText>", 1),
        # One article's list end and the next one's list start gone: the names balance over
        # both articles, but a run holding another article's tags is never cut.
        lambda d: _drop_second(d.replace(b"</ReferenceList>", b"", 1), b"<ReferenceList>"),
        # Unbalanced tags around a list: the cut cannot be exact, the piece does not parse.
        lambda d: d.replace(b"</ReferenceList></PubmedData>", b"</PubmedData>", 1),
    ],
)  # fmt: skip
def test_reference_lists_cut_or_left_in_give_the_streaming_result(change: Any) -> None:
    pieces, streamed = _both(change(body(FIFTY)))
    assert pieces == streamed or (pieces is None and isinstance(streamed, str))
    if isinstance(streamed, ParseResult):
        assert pieces is not None
        assert all(record.ids.doi != "10.1000/cited" for record in streamed.records)


def test_a_list_moved_before_the_articles_own_ids_is_never_cut() -> None:
    # Found by a structure-aware fuzzer, derived from the real 43-author page: the first
    # reference list's start tag moved in front of the article's own ArticleIdList. The names
    # still balance, but cutting from there would drop the article's ids (its PMC id) without
    # a word; only lists after the ArticleIdList or ObjectList are cut (PubMed DTD order).
    data = body("efetch_pubmed_43_authors.xml")
    broken = data.replace(b"<ArticleIdList>", b"<ReferenceList><ArticleIdList>", 1).replace(
        b"</ArticleIdList><ReferenceList>", b"", 1
    )
    pieces, streamed = _both(broken)
    assert isinstance(streamed, str) and "mismatch" in streamed
    assert pieces is None or pieces == pubmed_records._parse_in_pieces(data)


# Inputs that took the piecewise reader seconds to minutes (each whitespace run or list start
# rescanned): now each byte is looked at a bounded number of times. Not a speed target: the
# timeout only catches a return of the quadratic and cubic cases, which it exceeds many times.
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.replace(b"<ReferenceList>", b"<ReferenceList>" * 20000, 1),
        lambda d: d.replace(
            b"</ReferenceList></PubmedData>",
            b"</ReferenceList>" + b"<ReferenceList></ReferenceList>" * 20000
            + b"<ReferenceList><Title>Pubmed</Title></ReferenceList></PubmedData>",
            1,
        ),
        lambda d: b"\n" * 20000 + b"<!-- c --><PubmedArticleSet></PubmedArticleSet>",
        lambda d: d.replace(b"?>\n<!DOCTYPE", b"?>" + b"\n" * 200000 + b"<!DOCTYPE", 1),
        lambda d: b"\n" * 20000 + d.replace(b'"1.0" ?>', b'"1.0" standalone="no"?>', 1),
    ],
)  # fmt: skip
def test_pathological_pages_are_read_or_refused_in_linear_time(change: Any) -> None:
    pieces, streamed = _both(change(body(FIFTY)))
    assert pieces is None or pieces == streamed


_XML_JUNK = st.sampled_from(
    ["<", "&", "&amp;", "&nbsp;", "</PubmedArticle>", "<PubmedArticle>", "<i>", "]]>", "<!--",
     "\x00", "é", "<PMID>x</PMID>", "</AbstractText>", "<DeleteCitation><PMID>1</PMID>", ""]
) | st.text(max_size=20)  # fmt: skip


def _inside_references(data: bytes, start: int, end: int) -> bool:
    """Whether data[start:end] (or the point ``start``) lies inside one <ReferenceList>."""
    opening = data.rfind(b"<ReferenceList>", 0, start)
    return opening >= 0 and data.find(b"</PubmedData>", opening) >= end


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(EFETCH_FILES),
    start=st.floats(0, 1),
    length=st.integers(0, 300),
    junk=_XML_JUNK,
)
def test_mutated_real_pages_parse_the_same_both_ways_or_refuse(
    name: str, start: float, length: int, junk: str
) -> None:
    # A real page with a stretch replaced by junk: where the piecewise reader takes the page it
    # must give what the streaming parser gives, unless the junk fell inside a reference list,
    # which the piecewise reader skips unchecked: it then reads the page as if unchanged and the
    # streaming parser refuses it. Either way the records are valid.
    data = body(name)
    at = int(len(data) * start)
    mutated = data[:at] + junk.encode("utf-8", "replace") + data[at + length :]
    pieces, streamed = _both(mutated)
    if pieces is not None and pieces != streamed:
        assert isinstance(streamed, str) and streamed.startswith("ParseError")
        assert pieces == pubmed_records._parse_in_pieces(data)
        assert _inside_references(data, at, at + length)
    try:
        result = parse_efetch(mutated)
    except ParseError:
        return
    for record in result.records:
        assert record.source_id is not None and record.source_id.isdigit()
        assert Record.from_json(record.to_json()) == record
    assert all(skipped.reason for skipped in result.skipped)


def test_billion_laughs_is_refused_without_expansion() -> None:
    # Derived: the real German one-article page with an entity-expansion bomb declared in its
    # DOCTYPE and used in the title.
    declarations = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    data = body("efetch_pubmed_german_vernacular_title_no_abstract.xml").decode()
    data = re.sub(
        r"<!DOCTYPE PubmedArticleSet[^>]*>", f"<!DOCTYPE PubmedArticleSet [{declarations}]>", data
    )
    data = data.replace("<ArticleTitle>", "<ArticleTitle>&lol9;", 1)
    try:
        result = parse_efetch(data.encode())
    except ParseError:
        return
    assert all(len(r.title or "") < 10_000 for r in result.records)


def test_external_entities_are_not_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    data = body("efetch_pubmed_german_vernacular_title_no_abstract.xml").decode()
    data = re.sub(
        r"<!DOCTYPE PubmedArticleSet[^>]*>",
        f'<!DOCTYPE PubmedArticleSet [<!ENTITY x SYSTEM "file://{secret}">]>',
        data,
    )
    data = data.replace("<ArticleTitle>", "<ArticleTitle>&x;", 1)
    try:
        result = parse_efetch(data.encode())
    except ParseError:
        return
    assert "TOPSECRET" not in json.dumps([r.to_json() for r in result.records])
