"""The deduplication engine on real hard cases from the labelled sets in ../shared/dedup.

Each case reads its rows from the dataset files by record_id (quoted in the comments, cut to the
fields that matter); where a case needs something the sets do not have (a preprint, a shared
supplement DOI), it is derived from a real row and the comment says what was changed.
"""

from __future__ import annotations

import csv
import gzip
import re
from functools import cache
from pathlib import Path

import pytest

from harvester.dedup.cluster import candidate_pairs, cluster
from harvester.dedup.features import blocking_keys, features, normalize_title, venue_tokens
from harvester.dedup.files import parse_authors, record_from_fields
from harvester.dedup.merge import merge_records
from harvester.dedup.numbers import page_span
from harvester.dedup.rules import Link, Verdict, same_work
from harvester.dedup.similarity import venues_agree
from harvester.records import Author, Identifiers, Record
from harvester.text.fields import month_of_name
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


def test_conference_paper_and_later_journal_article_are_linked_versions_not_merged() -> None:
    # colrev_special_cases (README: "a 2011 conference paper and its 2014 journal version"):
    # id_0000009 Standing, Craig …, 2011, 10.1109/DASC.2011.166, "Making the Most of Virtual
    # Expertise in Telemedicine and Telehealth Environments", Symposium on Dependable …
    # id_0000010 Standing, Craig …, 2014, 10.1080/10919392.2014.896714, same title, a journal.
    a = rec("colrev_special_cases", "id_0000009")
    b = rec("colrev_special_cases", "id_0000010")
    decision = same_work(a, b)
    assert decision.verdict is Verdict.VERSION and decision.link is Link.VENUE
    # Without DOIs the years (2011 vs 2014) still keep them from being merged.
    bare = same_work(a.with_changes(ids=Identifiers()), b.with_changes(ids=Identifiers()))
    assert bare.verdict is Verdict.VERSION and bare.link is Link.VENUE
    # id_0000012 (AMCIS 2003) and id_0000007 (the 2004 journal article, no DOI there).
    amcis = rec("colrev_special_cases", "id_0000012")
    journal = rec("colrev_special_cases", "id_0000007")
    assert same_work(amcis, journal).verdict is Verdict.VERSION
    result = cluster([a, b, amcis, journal])
    assert len(set(result.kept)) == 4  # linked, never merged
    assert {(i, j) for i, j, _ in result.links} == {(0, 1), (2, 3)}


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


def test_translated_title_with_the_same_citation_is_one_work() -> None:
    # colrev_digital_work id_0002417 / id_2002416 (one cluster): Heiland, 2018, Industrielle
    # Beziehungen 25(1) 128--139; "Review-Artikel: Zum aktuellen Stand des Plattformkapitalismus."
    # (DOI 10.3224/INDBEZ.V25I1.06) vs "Review article: The current situation of platform
    # capitalism" (no DOI). The titles are 0.68 alike; journal, volume and page range name it.
    a = rec("colrev_digital_work", "id_0002417")
    b = rec("colrev_digital_work", "id_2002416")
    decision = same_work(a, b)
    assert decision.verdict is Verdict.DUPLICATE
    assert decision.reason == "same journal, volume and page range"
    # Another article of that issue (derived: pages moved to the next range) stays apart.
    assert same_work(a, b.with_changes(pages="140--151")).verdict is Verdict.DISTINCT


def test_study_group_as_first_author_with_the_same_citation_is_one_work() -> None:
    # sra_cytology_screening id_0000248 "Solomon, D" and id_0000912 "Group, ASCUS-LSIL Traige
    # Study (ALTS)": "Results of a randomized trial on the management of cytology interpretations
    # of atypical squamous cells of undetermined significance", Am J Obstet Gynecol 2003 188,
    # 1383-1392 in both. Same title and citation outweigh the differing first author.
    a = rec("sra_cytology_screening", "id_0000248")
    b = rec("sra_cytology_screening", "id_0000912")
    assert same_work(a, b).verdict is Verdict.DUPLICATE
    # With a different title the author mismatch still keeps them apart (derived).
    other = b.with_changes(title="A randomized trial on the management of low-grade lesions")
    assert same_work(a, other).verdict is Verdict.DISTINCT


def test_shared_doi_outweighs_an_article_number_against_a_page_count() -> None:
    # colrev_digital_work id_2006941 (pages "106482", the article number) and id_3006669 (pages
    # "11", the page count), both DOI 10.1016/J.CHB.2020.106482, Ihl et al. 2020: one cluster.
    a = rec("colrev_digital_work", "id_2006941")
    b = rec("colrev_digital_work", "id_3006669")
    assert same_work(a, b).verdict is Verdict.DUPLICATE
    assert cluster([a, b]).kept[0] == cluster([a, b]).kept[1]


def test_year_apart_with_same_long_title_and_authors_is_one_work() -> None:
    # colrev_digital_work id_1006650 (2017, "International Conference on Information Systems",
    # 1--12) and id_2006651 (2018, "ICIS : Transforming Society with Digital Innovation"):
    # Guo, Gong, Pavlou, "Call for Bids to Improve Matching Efficiency - Evidence from Online
    # Labor Markets". ICIS is that conference's acronym; title and all three authors agree.
    a = rec("colrev_digital_work", "id_1006650")
    b = rec("colrev_digital_work", "id_2006651")
    assert same_work(a, b).verdict is Verdict.DUPLICATE
    # id_2006688 / id_2006689 "Home Bias in Online Employment", ICIS 2017 vs HICSS 2018 (10.24251/
    # HICSS.2018.437), labelled as two works: the venues differ, so the year counts against.
    c = rec("colrev_digital_work", "id_2006688")
    d = rec("colrev_digital_work", "id_2006689")
    assert same_work(c, d).verdict is Verdict.VERSION  # two conferences' versions: linked


def test_missing_year_needs_a_distinctive_title_and_venues() -> None:
    # dblp_scholar-style (the pair files hold no ids; derived from colrev_digital_work
    # id_1006650): the Google Scholar copy of a citation has no year. A long title, the first
    # author and a venue on both sides carry it; without a venue it is too bare to place.
    a = rec("colrev_digital_work", "id_1006650")
    no_year = a.with_changes(year=None, pages=None, authors=a.authors[:1])
    assert same_work(a, no_year).verdict is Verdict.DUPLICATE
    # It may be either of the paper's versions: linked, not merged.
    assert same_work(a, no_year.with_changes(venue=None)).verdict is Verdict.VERSION


def test_erratum_titled_with_its_articles_citation_is_a_notice() -> None:
    # sra_haematology id_0000057 "Eculizumab for atypical hemolytic-uremic syndrome (New England
    # Journal of Medicine (2009) 360 (542-544))" (Embase) and id_0000058 "Eculizumab for Atypical
    # Hemolytic-Uremic Syndrome (vol 360, pg 542, 2009)" (Web of Science): both the erratum at
    # N Engl J Med 360(23) 2487. They are one notice, and apart from the article id_0000063
    # (360(5) 542-544).
    a = rec("sra_haematology", "id_0000057")
    b = rec("sra_haematology", "id_0000058")
    article = rec("sra_haematology", "id_0000063")
    assert same_work(a, b).verdict is Verdict.DUPLICATE
    decision = same_work(b, article)
    assert decision.verdict is Verdict.DISTINCT and "correction" in decision.reason
    assert normalize_title(b.title) == normalize_title(article.title)


def test_meeting_abstract_filed_under_its_journal_is_one_record() -> None:
    # sra_haematology id_0000122 (Scandinavian Journal of Immunology 71(6) 507-507) and
    # id_0000123 ("Scandinavian Journal of Immunology.Conference: 39th Meeting of Scandinavian
    # Society for Immunology …", no pages): Koskinen et al. 2010, one abstract (one cluster).
    a = rec("sra_haematology", "id_0000122")
    b = rec("sra_haematology", "id_0000123")
    assert same_work(a, b).verdict is Verdict.DUPLICATE
    # A journal and a different journal's meeting still differ (derived: venue replaced).
    # (The same abstract given at another meeting is linked as a version, never merged.)
    other = b.with_changes(venue="Blood.Conference: 52nd Annual Meeting of the ASH")
    assert same_work(a, other).verdict is Verdict.VERSION


def test_fields_shifted_one_column_do_not_count_as_different_pages() -> None:
    # sra_haematology id_0000105 (pages "9", number "26", no volume) and id_0000106 (pages
    # 1746-1746, volume 26, number 9): Loirat 2011, "The treatment of atypical hus", both under
    # "Pediatric Nephrology.Conference: 44th Annual Scientific Meeting …" (one cluster).
    a = rec("sra_haematology", "id_0000105")
    b = rec("sra_haematology", "id_0000106")
    assert same_work(a, b).verdict is Verdict.DUPLICATE
    assert cluster([a, b]).kept == (1, 1)
    # A real page 9 with volume 26 (derived) is a different page.
    assert same_work(a.with_changes(volume="26"), b).verdict is Verdict.DISTINCT


def test_page_count_is_not_a_page() -> None:
    # sra_stroke id_0000010: Yip, Chi Bun, 2011, a Ph.D. thesis with pages "215 p".
    assert features(rec("sra_stroke", "id_0000010")).page is None
    assert features(rec("sra_stroke", "id_0000010").with_changes(pages="215-230")).page == "215"


def test_one_meeting_abstract_paged_differently_by_two_databases_is_one_record() -> None:
    # sra_haematology id_0001188 ("Pediatric Transplantation.Conference: 6th Congress of the
    # International Pediatric Transplant Association…", 22-22, vol 15) and id_0001189 ("Pediatric
    # Transplantation", 52-52, vol 15): Davin, Groothoff, Bemelman, Bouts 2011, "Maintenance of
    # renal function under eculizumab despite discontinuation of plasma exchange…" (one cluster).
    a = rec("sra_haematology", "id_0001188")
    b = rec("sra_haematology", "id_0001189")
    decision = same_work(a, b)
    assert decision.verdict is Verdict.DUPLICATE and decision.repaged
    # The pages no longer veto the join in clustering either.
    assert cluster([a, b]).kept[0] == cluster([a, b]).kept[1]
    # Derived: an article's page range on one side is an article and its notice, not one
    # abstract; a different author list is another abstract of that meeting.
    assert same_work(a, b.with_changes(pages="52-61")).verdict is Verdict.DISTINCT
    assert same_work(a, b.with_changes(authors=b.authors[:3])).verdict is Verdict.DISTINCT
    # sra_stroke id_0000014 (e8-e9) and id_0000015 (e3): Yablon et al. 2010, Arch Phys Med
    # Rehabil 91(10), "Amantadine hydrochloride for treatment of symptom's of the posttraumatic
    # confusional state: A randomized…" (one cluster): same journal issue, pages of two listings.
    c = rec("sra_stroke", "id_0000014")
    d = rec("sra_stroke", "id_0000015")
    assert same_work(c, d).verdict is Verdict.DUPLICATE
    # Derived: a later issue's one-page item with that title is a notice of the abstract.
    assert same_work(c, d.with_changes(issue="12")).verdict is Verdict.DISTINCT


def test_online_first_listing_with_a_reworded_title_is_one_work() -> None:
    # sra_haematology id_0000819 ("Complement Blockade in Severe Shiga-Toxin–Associated HUS",
    # New Engl J Med 2011, no volume or pages, five authors) and id_0000818 ("Eculizumab in
    # severe Shiga-toxin-associated HUS", New England Journal of Medicine 364(26) 2561-2563,
    # eleven authors starting with the same five): Lapeyraque et al., one cluster.
    early = rec("sra_haematology", "id_0000819")
    printed = rec("sra_haematology", "id_0000818")
    decision = same_work(early, printed)
    assert decision.verdict is Verdict.DUPLICATE
    assert decision.reason == "online-first listing of the article, retitled"
    # Derived: both in print with different pages are two letters; fewer than four listed
    # authors, or authors in another order, are too little; a title with less in common
    # ("Eculizumab in severe atypical HUS after transplantation") is another paper.
    assert same_work(early.with_changes(volume="364", pages="2600-2601"), printed).verdict is (
        Verdict.DISTINCT
    )
    assert same_work(early.with_changes(authors=early.authors[:3]), printed).verdict is (
        Verdict.DISTINCT
    )
    swapped = (early.authors[1], early.authors[0], *early.authors[2:])
    assert same_work(early.with_changes(authors=swapped), printed).verdict is Verdict.DISTINCT
    other = early.with_changes(title="Eculizumab in severe atypical HUS after transplantation")
    assert same_work(other, printed).verdict is Verdict.DISTINCT


def test_issue_dated_by_year_and_month_behind_a_column_heading_is_one_work() -> None:
    # colrev_digital_work id_2002950 / id_4002951 (one cluster), Kasriel 2016, Harvard Business
    # Review, no DOIs: "Upwork’s CEO on how an introverted engineer learned to lead", volume
    # "2016", number "May", no pages; and "How did it ... Upwork's CEO on how an introverted
    # engineer learned to lead", volume 94, number 5, pages "35+". One export dated the issue
    # (year as volume, month as issue) and the other prefixed the column's name to the title.
    dated = rec("colrev_digital_work", "id_2002950")
    numbered = rec("colrev_digital_work", "id_4002951")
    assert same_work(dated, numbered).verdict is Verdict.DUPLICATE
    assert same_work(numbered, dated).verdict is Verdict.DUPLICATE
    # The blocking lets them meet, and clustering joins them.
    assert set(blocking_keys(dated)) & set(blocking_keys(numbered))
    assert candidate_pairs([features(dated), features(numbered)]) == {(0, 1)}
    assert cluster([dated, numbered]).kept == (1, 1)


def test_dated_issue_and_column_heading_need_everything_else_to_agree() -> None:
    # Derived from colrev_digital_work id_2002950 / id_4002951 (above), one field changed each.
    dated = rec("colrev_digital_work", "id_2002950")
    numbered = rec("colrev_digital_work", "id_4002951")
    apart = {
        # Another writer's piece under the same column, same month: a different work.
        "first author": numbered.with_changes(authors=(Author(family="Kaplan", given="S"),)),
        # Another year: the 2016 volume is then not a date of the same issue.
        "year": numbered.with_changes(year=2017),
        # Another month's issue: the dated volume is not explained away.
        "issue": numbered.with_changes(issue="6"),
        "venue": numbered.with_changes(venue="MIT Sloan Management Review"),
        # A real volume (not the year) that differs is a contradiction, month or not.
        "volume": dated.with_changes(volume="93"),
        # A heading longer than a column's name is another title that ends like this one.
        "long heading": numbered.with_changes(
            title="Lessons from six years of remote hiring at a marketplace: Upwork's CEO on how"
            " an introverted engineer learned to lead"
        ),
    }
    for change, record in apart.items():
        a, b = (record, numbered) if change == "volume" else (dated, record)
        assert same_work(a, b).verdict is Verdict.DISTINCT, change
    # A title of five words is too short to be recognised behind a heading (derived: both cut).
    short = dated.with_changes(title="Upwork's CEO on leading engineers")
    headed = numbered.with_changes(title="How did it ... Upwork's CEO on leading engineers")
    assert same_work(short, headed).verdict is Verdict.DISTINCT
    # Even the same five-word title on both sides is too little to explain the volumes away.
    assert same_work(short, numbered.with_changes(title=short.title)).verdict is Verdict.DISTINCT
    # A notice about the piece is never the piece, whatever its citation.
    for title in (
        f"Correction: {dated.title}",
        f"Erratum to - {numbered.title}",
        f"Reply to {dated.title}",
    ):
        decision = same_work(dated.with_changes(title=title), numbered)
        assert decision.verdict is Verdict.DISTINCT and "notice" in decision.reason, title


def test_month_names_are_read_only_from_a_whole_issue_field() -> None:
    assert month_of_name("May") == 5 and month_of_name("SEPT.") == 9
    assert month_of_name(" dec ") == 12
    assert month_of_name("5") is None and month_of_name("May-June") is None
    assert month_of_name(None) is None
    assert features(rec("colrev_digital_work", "id_2002950")).month == 5


@cache
def _scholar_lines() -> tuple[tuple[dict[str, str], dict[str, str], bool], ...]:
    # dblp_scholar/pairs/structured_valid.txt.gz: "COL title VAL … COL authors VAL … COL venue
    # VAL … COL year VAL …" per side, tab-separated, then the label.
    path = DEDUP / "dblp_scholar" / "pairs" / "structured_valid.txt.gz"
    if not path.exists():
        pytest.skip(f"labelled dedup sets not found at {DEDUP}")

    def fields(text: str) -> dict[str, str]:
        parts = re.split(r"COL (\w+) VAL ?", text.strip())
        values = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
        return {
            "title": values.get("title", ""),
            "author": values.get("authors", ""),
            "journal": values.get("venue", ""),
            "year": values.get("year", ""),
        }

    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            left, right, label = line.rstrip("\n").split("\t")
            out.append((fields(left), fields(right), label.strip() == "1"))
    return tuple(out)


def scholar(dblp_title: str, scholar_start: str) -> tuple[Record, Record]:
    """The labelled DBLP and Scholar records of one line of structured_valid."""
    for left, right, _ in _scholar_lines():
        if left["title"] == dblp_title and right["title"].startswith(scholar_start):
            return record_from_fields(left, source="l"), record_from_fields(right, source="r")
    raise AssertionError(f"no line for {dblp_title!r}")


def test_a_papers_journal_and_conference_versions_are_linked_not_merged() -> None:
    # dblp_scholar structured_valid (labelled a match): DBLP "efficient filtering of xml
    # documents with xpath expressions", c chan, p felber, m garofalakis, r rastogi, vldb j.
    # 2002; Scholar "xtrie : efficient filtering of xml documents with xpath expressions", cy
    # chan, p felber, m garofalakis, r rastogi, "proc . of 18th international conference on data
    # engineering", no year: the ICDE 2002 paper and its VLDB Journal version.
    journal, conference = scholar(
        "efficient filtering of xml documents with xpath expressions", "xtrie"
    )
    decision = same_work(journal, conference)
    assert decision.verdict is Verdict.VERSION and decision.link is Link.VENUE
    result = cluster([journal, conference])
    assert result.kept == (0, 1) and [(i, j) for i, j, _ in result.links] == [(0, 1)]
    # With both years the same venue cannot hold two versions; nor can another author list.
    dated = conference.with_changes(year=2002, venue=journal.venue, pages="1-10")
    assert same_work(journal.with_changes(pages="20-30"), dated).verdict is Verdict.DISTINCT
    others = conference.with_changes(authors=parse_authors("a smith and b jones and c wu"))
    assert same_work(journal, others).verdict is Verdict.DISTINCT
    # A report version of a paper too (Scholar "supporting incremental join queries on ranked
    # inputs", no venue, no year, against VLDB 2001): it could be either version, so linked.
    vldb, bare = scholar("supporting incremental join queries on ranked inputs", "supporting")
    assert same_work(vldb, bare).verdict is Verdict.VERSION


def test_series_parts_and_sponsor_trials_are_not_versions() -> None:
    # Derived from the Chan et al. pair above: "… part i" and "… part ii" are two works.
    journal, conference = scholar(
        "efficient filtering of xml documents with xpath expressions", "xtrie"
    )
    one = journal.with_changes(title=journal.title + " part i")
    two = conference.with_changes(title=journal.title + " part ii")
    assert same_work(one, two).verdict is Verdict.DISTINCT
    # sra_haematology id_0000234..id_0000237: four registered trials of one sponsor
    # ("Pharmaceuticals, Inc", 2011, no venue), "Open Label Controlled Trial of Eculizumab in
    # Adult/Adolescent Patients With Plasma Therapy-Sensitive/-Resistant aHUS": four studies,
    # neither merged nor linked (the labels put them in one cluster: a known label slip). The
    # adult and adolescent trials of the resistant form (id_0000235, id_0000237; titles 0.96
    # alike) were merged before.
    trials = [rec("sra_haematology", f"id_00002{n}") for n in (34, 35, 36, 37)]
    for i, a in enumerate(trials):
        for b in trials[i + 1 :]:
            assert same_work(a, b).verdict is Verdict.DISTINCT
    assert len(set(cluster(trials).kept)) == 4
    # A misspelt word is no other study (derived: "Adolecsent" for "Adolescent").
    typo = trials[3].with_changes(title=(trials[3].title or "").replace("Adolescent", "Adolecsent"))
    assert same_work(trials[3], typo).verdict is Verdict.DUPLICATE


def test_meeting_abstract_and_its_later_article_are_neither_merged_nor_linked() -> None:
    # sra_haematology id_0000128 (Koehl et al., Pediatric Nephrology 25(9) 1875, the meeting
    # abstract) and id_0000129 (25(12) 2539-2542, the article), same title and authors; and
    # id_0000220 / id_0000221 (Biran et al., 22(9) 1514 and 22(12) 2129-2132). The labels join
    # them; the policy keeps an abstract apart from its article, and one journal's two pieces
    # are not versions in two venues.
    for x, y in (("id_0000128", "id_0000129"), ("id_0000220", "id_0000221")):
        assert same_work(rec("sra_haematology", x), rec("sra_haematology", y)).verdict is (
            Verdict.DISTINCT
        )
    # An erratum printed without its heading, in the same journal and year (id_0000052, Am J
    # Transplant 9(5) 1223-1229, and id_0000807, 9(9) 2205): not a version either.
    erratum = same_work(rec("sra_haematology", "id_0000052"), rec("sra_haematology", "id_0000807"))
    assert erratum.verdict is Verdict.DISTINCT


def test_page_ranges_in_parts_orders_and_date_forms_read_alike() -> None:
    assert page_span("484-491 + 505") == page_span("505, 484-491") == ("484", "505")
    assert page_span("532, 534-536, 538-540") == ("532", "540")
    assert page_span("iii-iv, 1-113") == page_span("1-113, iii-iv") == ("1", "113")
    assert page_span("e122, e119") == page_span("e119+e122") == ("e119", "122")
    assert page_span("901-7; quiz 907") == ("901", "907")
    assert page_span("01-Jun") == ("1", "6") and page_span("Jun-13") == ("6", "13")
    assert page_span("CD008391") == ("cd008391", None)
    # A book's front matter and page count, a page count, an open range: as before.
    assert page_span("xiii, 351") == (None, None) and page_span("215 p") == (None, None)
    assert page_span("284-+") == ("284", None) and page_span("E329-36") == ("e329", "336")


def test_a_range_in_parts_written_in_another_order_is_one_work() -> None:
    # sra_haematology id_0001228 (pages "484-491 + 505"); derived: the same record exported
    # with the parts the other way round ("505, 484-491", as another database writes it).
    a = rec("sra_haematology", "id_0001228")
    assert same_work(a, a.with_changes(pages="505, 484-491")).verdict is Verdict.DUPLICATE
    # Another article's range in that volume stays apart.
    assert same_work(a, a.with_changes(pages="507-512")).verdict is Verdict.DISTINCT


def test_a_range_a_spreadsheet_made_a_date_still_names_the_article() -> None:
    # sra_stroke id_0000231 (Li, Cheng, Yu, Zhongguo Zhenjiu 2012 32(1) 3-7, "[Observation on
    # therapeutic effect of acupuncture combined with medicine on mild cognition disorders in
    # patients with post-stroke]"). Derived: another database's record of it, reworded, with
    # its "3-7" turned into "03-Jul" by a spreadsheet: the whole range still names it.
    a = rec("sra_stroke", "id_0000231")
    reworded = a.with_changes(
        title="Acupuncture combined with medicine for post-stroke mild cognitive disorder",
        pages="03-Jul",
    )
    decision = same_work(a, reworded)
    assert decision.verdict is Verdict.DUPLICATE
    assert decision.reason == "same journal, volume and page range"
    assert same_work(a, reworded.with_changes(pages="08-Dec")).verdict is Verdict.DISTINCT


def test_bracketed_translated_title_against_another_wording_with_the_same_citation() -> None:
    # sra_stroke id_0000232 "[Observation on therapeutic effect of acupuncture combined with
    # medicine on mild cognition disorders in patients with post-stroke]. [Chinese]", Li W,
    # Cheng YH, Yu XG, Zhongguo zhen jiu 32(1) 3-7, 2012. Derived: the original-language
    # (pinyin) record of it, the titles 0.3 alike: the same author list and the whole citation
    # name the work.
    a = rec("sra_stroke", "id_0000232")
    pinyin = a.with_changes(title="Zhen yao jie he zhi liao zhong feng hou qing du ren zhi zhang")
    decision = same_work(a, pinyin)
    assert decision.verdict is Verdict.DUPLICATE
    # What must stay apart: another author list (a different paper on those pages cannot be,
    # but a slip in one field can), another page range, another volume, or no translation.
    others = pinyin.with_changes(authors=parse_authors("Wang, L and Zhang, H and Liu, Q"))
    assert same_work(a, others).verdict is Verdict.DISTINCT
    assert same_work(a, pinyin.with_changes(pages="8-12")).verdict is Verdict.DISTINCT
    assert same_work(a, pinyin.with_changes(volume="33")).verdict is Verdict.DISTINCT
    plain = a.with_changes(title="Observation on acupuncture for cognition disorders")
    assert same_work(plain, pinyin).verdict is Verdict.DISTINCT


def test_a_cochrane_number_is_the_review_s_identity() -> None:
    # sra_stroke id_0000455 (Bowen et al., Cochrane Database Syst Rev 2011, CD007039) and
    # id_0000454 (the same review exported without its number; one cluster): one work.
    a = rec("sra_stroke", "id_0000455")
    b = rec("sra_stroke", "id_0000454")
    assert same_work(a, b).verdict is Verdict.DUPLICATE
    # Two different reviews of one group: id_0001196 (Bowen et al. 2013, CD003586) is not it,
    # and neither is a review under the same title with another number (derived: CD003586).
    assert same_work(a, rec("sra_stroke", "id_0001196")).verdict is Verdict.DISTINCT
    assert same_work(a, a.with_changes(pages="CD003586")).verdict is Verdict.DISTINCT


def test_journal_names_with_a_bracketed_translation_or_glued_syllables_agree() -> None:
    # sra_stroke id_0000231 "Zhongguo Zhenjiu" and id_0000232 "Zhongguo zhen jiu [Chinese
    # acupuncture & moxibustion]" (one cluster); the other shapes of the review sets agree too:
    # "PLoS ONE [Electronic Resource]" (sra_cytology_screening), "Journal of the Formosan Medical
    # Association = Taiwan yi zhi", "Xianggang yi xue za zhi [Hong Kong medical journal]".
    a = features(rec("sra_stroke", "id_0000231"))
    b = features(rec("sra_stroke", "id_0000232"))
    assert venues_agree(a.venue, b.venue) is True
    for x, y in (
        ("PLoS ONE [Electronic Resource]", "PLoS One"),
        ("Journal of the Formosan Medical Association = Taiwan yi zhi", "J Formos Med Assoc"),
        ("Xianggang yi xue za zhi [Hong Kong medical journal]", "Hong Kong Med J"),
    ):
        assert venues_agree(venue_tokens(x), venue_tokens(y)) is True
    # The glued name must end where a word of the other ends, and be long enough to name one.
    assert venues_agree(venue_tokens("Zhongguo Zhenjiuxue"), b.venue) is False
    assert (
        venues_agree(venue_tokens("Stroke"), venue_tokens("Stroke Research")) is True
    )  # as before
    # So a reworded (translated) record of that article in the other database is one work.
    reworded = rec("sra_stroke", "id_0000231").with_changes(
        title="Acupuncture plus medicine for mild cognitive disorder after stroke"
    )
    assert same_work(reworded, rec("sra_stroke", "id_0000232")).verdict is Verdict.DUPLICATE


def test_a_reply_is_neither_merged_with_nor_linked_to_what_it_answers() -> None:
    # colrev_digital_work id_1001359 (Crowston, JAIS 2016 17(1) 29--33, 'Response to "Ideational
    # Influence, Connectedness, and Venue Representation - Making an Assessment of Scholarly
    # Capital"') and id_1001363 (Cuellar et al., the article answered, 1--28). Derived: both
    # without their DOIs, and the reply credited to the article's authors, so only its being a
    # reply keeps it apart.
    reply = rec("colrev_digital_work", "id_1001359")
    article = rec("colrev_digital_work", "id_1001363")
    assert same_work(reply, article).verdict is Verdict.DISTINCT
    bare_reply = reply.with_changes(ids=Identifiers(), authors=article.authors, pages=None)
    bare_article = article.with_changes(ids=Identifiers(), pages=None)
    decision = same_work(bare_reply, bare_article)
    assert decision.verdict is Verdict.DISTINCT and "reply" in decision.reason


def test_the_year_screen_never_skips_a_work_the_rules_would_join_or_link() -> None:
    # dblp_acm (DBLP and ACM's records of 2,224 papers, with some papers' conference and
    # journal versions years apart): every blocked pair the rules join or link without a
    # shared identifier passes the page writer's screen on year and stored title, both ways;
    # and the screen spares decoding most of the others.
    from harvester.dedup.rules import beyond_year_window, decide

    records = [record_from_fields(row, source="csv") for row in _rows("dblp_acm").values()]
    feats = [features(r) for r in records]
    kept = skipped = years_apart = 0
    for i, j in candidate_pairs(feats):
        a, b = feats[i], feats[j]
        if set(a.ids) & set(b.ids):
            continue  # a shared identifier leads past the screen
        screened = [
            beyond_year_window(x, records[k].year, records[k].title) for x, k in ((a, j), (b, i))
        ]
        if decide(a, b).verdict is not Verdict.DISTINCT:
            kept += 1
            assert screened == [False, False], (records[i].title, records[j].title)
            years_apart += a.year is not None and b.year is not None and abs(a.year - b.year) > 1
        skipped += all(screened)
    # (8 of the kept are versions 2 or 3 years apart, which a one-year screen skipped)
    assert kept > 1000 and years_apart > 0 and skipped > kept
