"""The deduplication engine on real hard cases from the labelled sets in ../shared/dedup.

Each case reads its rows from the dataset files by record_id (quoted in the comments, cut to the
fields that matter); where a case needs something the sets do not have (a preprint, a shared
supplement DOI), it is derived from a real row and the comment says what was changed.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pytest

from harvester.dedup import Verdict, cluster, merge_records, same_work
from harvester.dedup_io import record_from_fields
from harvester.matchkeys import blocking_keys, normalize_title
from harvester.records import Author, Identifiers, Record
from tests.conftest import SHARED

DEDUP = SHARED / "dedup"


@cache
def _rows(dataset: str) -> dict[str, dict[str, str]]:
    path = DEDUP / dataset / "records.csv"
    if not path.exists():
        pytest.skip(f"labelled dedup sets not found at {DEDUP}")
    with Path(path).open(encoding="utf-8", newline="") as f:
        return {row["record_id"]: row for row in csv.DictReader(f)}


def rec(dataset: str, record_id: str) -> Record:
    return record_from_fields(_rows(dataset)[record_id], source="csv")


def test_title_normalization_resolves_case_markup_greek_and_language_notes() -> None:
    assert normalize_title("TNF-α <i>in vivo</i>.") == normalize_title("Tnf-Alpha in vivo")
    assert normalize_title("Krämer's test [German]") == "kramer s test"
    # sra_haematology id_0000231: "[Indications and contraindications of living-donor kidney
    # transplantation]. [Spanish]" - a translated title in brackets plus its language note.
    assert normalize_title(rec("sra_haematology", "id_0000231").title) == (
        "indications and contraindications of living donor kidney transplantation"
    )


def test_translated_title_suffix_still_matches() -> None:
    # sra_stroke id_0000001 / id_0000002 (one cluster): "Efficacy observation of batroxobin for
    # treatment of vascular cognitive impairment. [Chinese]" vs the same without the note;
    # Zhai, Q. J. …, 2010, Chinese Journal of Cerebrovascular Diseases, 73-76, 7(2).
    decision = same_work(rec("sra_stroke", "id_0000001"), rec("sra_stroke", "id_0000002"))
    assert decision.verdict is Verdict.DUPLICATE


def test_bracketed_original_title_with_shared_doi_is_one_work() -> None:
    # colrev_digital_work id_2007134 / id_3007135 (one cluster), DOI 10.1007/S11577-019-00587-W:
    # "Working in the Platform Economy … [Arbeiten in der Plattformökonomie: …]" vs
    # "Arbeiten in der Plattformökonomie: Grundlagen und Grenzen von „Cloudwork“ und „Gigwork“".
    a = rec("colrev_digital_work", "id_2007134")
    b = rec("colrev_digital_work", "id_3007135")
    assert same_work(a, b).verdict is Verdict.DUPLICATE


def test_same_title_different_studies_stay_apart() -> None:
    # sra_haematology: 12 records titled "Atypical hemolytic(-)uremic syndrome", 7 works, e.g.
    # id_0000099 "Loirat, C. and Fremeaux-Bacchi, V.",2011,Orphanet Journal Of Rare Diseases,60,6
    # id_0000881 "Kavukcu, S. and Irken, G. …",1995,Acta Paediatrica Japonica,638-641,37,5
    # id_0000612 "Peco-Antic, A. …",1999,Pediatric Nephrology,C41,13,7
    ids = ("id_0000099", "id_0000881", "id_0000612")
    records = [rec("sra_haematology", i) for i in ids]
    for i, a in enumerate(records):
        for b in records[i + 1 :]:
            assert same_work(a, b).verdict is Verdict.DISTINCT


def test_generic_editorial_titles_stay_apart() -> None:
    # colrev_digital_work: 115 records titled "Editorial", 115 works; e.g. two by Avison, David E.
    # and Fitzgerald in Information Systems Journal: id_1000216 2000 10(1) 1--2
    # 10.1046/J.1365-2575.2000.010001001.X and id_1000217 2000 10(3) 165--166 ….00100.X.
    a = rec("colrev_digital_work", "id_1000216")
    b = rec("colrev_digital_work", "id_1000217")
    assert same_work(a, b).verdict is Verdict.DISTINCT
    # Without their DOIs they still differ: a generic title needs the same pages or issue.
    assert (
        same_work(a.with_changes(ids=Identifiers()), b.with_changes(ids=Identifiers())).verdict
        is Verdict.DISTINCT
    )


def test_erratum_is_not_merged_into_its_article() -> None:
    # sra_haematology id_0001173 "Erratum: Gain-of-function mutations in complement factor B are
    # associated with atypical hemolytic uremic syndrome (Proceeding of … (Januar", PNAS 2007,
    # 104(25) p.19, vs id_0000190, the article itself, PNAS 2007, 104(1) 240-245.
    erratum = rec("sra_haematology", "id_0001173")
    article = rec("sra_haematology", "id_0000190")
    decision = same_work(erratum, article)
    assert decision.verdict is Verdict.DISTINCT
    assert "correction" in decision.reason
    # "Correction: <title>" with every other detail equal (derived from id_0000190) stays apart too.
    notice = article.with_changes(title=f"Correction: {article.title}")
    assert same_work(notice, article).verdict is Verdict.DISTINCT


def test_conference_paper_and_later_journal_article_stay_apart() -> None:
    # colrev_special_cases (README: "a 2011 conference paper and its 2014 journal version"):
    # id_0000009 Standing, Craig …, 2011, 10.1109/DASC.2011.166, "Making the Most of Virtual
    # Expertise in Telemedicine and Telehealth Environments", Symposium on Dependable …
    # id_0000010 Standing, Craig …, 2014, 10.1080/10919392.2014.896714, same title, a journal.
    a = rec("colrev_special_cases", "id_0000009")
    b = rec("colrev_special_cases", "id_0000010")
    assert same_work(a, b).verdict is Verdict.DISTINCT
    # Without DOIs the years (2011 vs 2014) still keep them apart.
    assert (
        same_work(a.with_changes(ids=Identifiers()), b.with_changes(ids=Identifiers())).verdict
        is Verdict.DISTINCT
    )
    # id_0000012 (AMCIS 2003) and id_0000007 (the 2004 journal article, no DOI there).
    amcis = rec("colrev_special_cases", "id_0000012")
    journal = rec("colrev_special_cases", "id_0000007")
    assert same_work(amcis, journal).verdict is Verdict.DISTINCT


def test_journal_article_with_and_without_doi_is_one_work() -> None:
    # colrev_special_cases id_0000007 (DOI only in the note column) and id_0000011 (DOI
    # 10.1080/1097198X.2004.10856384): "Cultural Universality Versus Particularity in CMC".
    a = rec("colrev_special_cases", "id_0000007")
    b = rec("colrev_special_cases", "id_0000011")
    assert same_work(a, b).verdict is Verdict.DUPLICATE


def test_supplement_doi_shared_by_different_abstracts_keeps_them_apart() -> None:
    # sra_haematology id_0000243 and id_0000326: two abstracts of the 44th ESPN meeting in
    # Pediatric Nephrology 26(9) (pages 1676-1677 and 1662-1663). The export has no DOIs; here
    # both are given the one DOI of a whole supplement, as some databases do.
    supplement = Identifiers(doi="10.1007/s00467-011-1948-4")
    a = rec("sra_haematology", "id_0000243").with_changes(ids=supplement)
    b = rec("sra_haematology", "id_0000326").with_changes(ids=supplement)
    decision = same_work(a, b)
    assert decision.verdict is Verdict.DISTINCT
    assert "different titles or pages" in decision.reason


def test_different_dois_are_never_merged() -> None:
    # colrev_special_cases id_0000011 with its DOI, and the same row given another DOI.
    a = rec("colrev_special_cases", "id_0000011")
    b = a.with_changes(ids=Identifiers(doi="10.1080/1097198x.2004.99999999"))
    assert same_work(a, b).reason == "different doi"


def test_preprint_and_article_are_linked_not_merged() -> None:
    # Derived from colrev_special_cases id_0000011 (the journal article): its bioRxiv-style
    # preprint copy has a 10.1101 DOI, and an arXiv copy carries arXiv's DataCite DOI.
    article = rec("colrev_special_cases", "id_0000011")
    preprint = article.with_changes(
        source="biorxiv", ids=Identifiers(doi="10.1101/2004.01.01.123456"), venue=None,
        volume=None, issue=None, pages=None,
    )  # fmt: skip
    assert same_work(preprint, article).verdict is Verdict.VERSION
    linked = preprint.with_changes(published_doi=article.ids.doi)
    assert same_work(linked, article).verdict is Verdict.VERSION
    arxiv_doi = preprint.with_changes(
        source="csv", ids=Identifiers(doi="10.48550/arxiv.2101.00001")
    )
    arxiv_id = preprint.with_changes(source="arxiv", ids=Identifiers(arxiv="2101.00001"))
    assert same_work(arxiv_doi, arxiv_id).verdict is Verdict.DUPLICATE
    result = cluster([article, preprint])
    assert result.kept == (0, 1) and len(result.links) == 1


def test_blocking_keys_let_variants_meet() -> None:
    # sra_stroke id_0000001/id_0000002 (language note) share keys; so do records a year apart.
    a, b = rec("sra_stroke", "id_0000001"), rec("sra_stroke", "id_0000002")
    assert set(blocking_keys(a)) & set(blocking_keys(b))
    later = a.with_changes(year=(a.year or 0) + 1, title="A different title altogether")
    assert {k for k in blocking_keys(a) if k.startswith("ay:")} & set(blocking_keys(later))
    assert all(len(k) <= 64 for k in blocking_keys(a))
    assert "id:arxiv:2101.00001" in blocking_keys(
        Record(source="x", ids=Identifiers(doi="10.48550/arxiv.2101.00001"))
    )


def test_special_cases_cluster_exactly_as_labelled() -> None:
    # All 12 rows of colrev_special_cases: 3 true pairs (1-2, 5-6, 7-11), 6 tempting non-pairs.
    rows = _rows("colrev_special_cases")
    ids = list(rows)
    result = cluster([rec("colrev_special_cases", i) for i in ids])
    groups: dict[int, set[str]] = {}
    for record_id, kept in zip(ids, result.kept, strict=True):
        groups.setdefault(kept, set()).add(record_id)
    pairs = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    assert pairs == [
        ["id_0000001", "id_0000002"],
        ["id_0000005", "id_0000006"],
        ["id_0000007", "id_0000011"],
    ]


def test_a_chain_of_matches_cannot_join_two_dois() -> None:
    # Derived from sra_stroke id_0000001: two copies with different DOIs and a third without one
    # that matches both; the cluster keeps the DOIs apart.
    base = rec("sra_stroke", "id_0000002")
    a = base.with_changes(ids=Identifiers(doi="10.1000/a"))
    b = base.with_changes(ids=Identifiers(doi="10.1000/b"))
    result = cluster([a, base, b])
    assert result.kept[0] != result.kept[2]


def test_merge_records_prefers_publisher_metadata_and_keeps_every_identifier() -> None:
    journal = rec("colrev_special_cases", "id_0000011").with_changes(source="crossref")
    preprint = journal.with_changes(
        source="biorxiv", ids=Identifiers(doi="10.1101/2004.01.01.123456", pmid="123"),
        pages=None, abstract="A longer abstract than the journal record has, from the server.",
        authors=(*journal.authors, Author(family="Extra")),
    )  # fmt: skip
    merged = merge_records([preprint, journal])
    assert merged.ids.doi == journal.ids.doi and merged.ids.pmid == "123"
    assert merged.pages == journal.pages and merged.abstract == preprint.abstract
    assert len(merged.authors) == len(journal.authors) + 1
    assert merge_records([journal]) == journal
