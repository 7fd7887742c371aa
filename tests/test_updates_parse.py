"""Every recorded response with update information, parsed into the right kind and target.

The fixtures are real (../shared/fixtures/updates, see the retraction section of
PROVENANCE.md): Crossref's Retraction Watch and publisher entries side by side, a notice that
names itself, a notice typed differently by its two sources, the direction traps (a retracted
work whose publisher also lists its notices as ``update-to``; a notice "updated by" its own
target), PubMed's old and new notice type names, Europe PMC's lists and OpenAlex's bare flag.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.records import Identifiers, Record, Update
from harvester.sources.crossref import parse_works
from harvester.sources.europepmc import parse_search
from harvester.sources.openalex import parse_works as parse_openalex
from harvester.sources.pubmed import parse_efetch
from harvester.sources.updates import notice_title
from harvester.store.updates import facts_of
from tests.conftest import require_shared


def updates_dir() -> Path:
    return require_shared() / "updates"


def crossref(name: str) -> list[Record]:
    return list(parse_works((updates_dir() / "crossref" / name).read_bytes()).records)


def pubmed(name: str) -> list[Record]:
    return list(parse_efetch((updates_dir() / "pubmed" / name).read_bytes()).records)


def shape(record: Record) -> set[tuple[str, str, str, str | None, str | None]]:
    """(role, kind, the other side's DOI or PMID, date, who says so) of each update."""
    out = set()
    for u in record.updates:
        other = u.notice if u.role == "target" else u.target
        out.add((u.role, u.kind, other.doi or other.pmid or "", u.date, u.asserted_by))
    return out


def test_crossref_retracted_work_keeps_both_sources_and_drops_its_mirrored_update_to() -> None:
    (work,) = crossref(
        "works_doi_10.1016_s0140-6736_20_31180-6_updated_by_rw_retraction_eoc_correction.json"
    )
    lancet = "10.1016/s0140-6736(20)"
    assert shape(work) == {
        ("target", "expression_of_concern", lancet + "31290-3", "2020-06-03", "retraction-watch"),
        ("target", "correction", lancet + "31249-6", "2020-05-30", "retraction-watch"),
        ("target", "retraction", lancet + "31324-6", "2020-06-05", "retraction-watch"),
        ("target", "retraction", lancet + "31174-0", "2020-05-22", "publisher"),
        ("target", "erratum", lancet + "31324-6", "2020-06-13", "publisher"),
        ("target", "erratum", lancet + "31528-2", "2020-07-18", "publisher"),
        ("target", "erratum", lancet + "31249-6", "2020-05-30", "publisher"),
    }  # the publisher's four update-to entries mirror updated-by: the work is no notice
    assert work.retracted


def test_crossref_notice_is_recognised_as_one_despite_its_updated_by_trap() -> None:
    (notice,) = crossref("works_doi_10.1016_s0140-6736_20_31324-6_retraction_notice_update_to.json")
    target = "10.1016/s0140-6736(20)31180-6"
    assert shape(notice) == {
        ("notice", "retraction", target, "2020-06-05", "retraction-watch"),
        ("notice", "erratum", target, "2020-06-13", "publisher"),
        ("notice", "erratum", "10.1016/s0140-6736(20)31290-3", "2020-06-13", "publisher"),
    }
    assert not notice.retracted  # read naively, its updated-by says the notice is retracted
    # as facts: the notice's own DOI names it, the retracted work is the target
    facts = {(f.kind, f.target.doi, f.notice.doi) for f in facts_of(notice)}
    assert ("retraction", target, "10.1016/s0140-6736(20)31324-6") in facts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "works_doi_10.1016_j.apsusc.2007.01.131_updated_by_rw_retraction_and_erratum.json",
            {
                ("target", "retraction", "10.1016/j.apsusc.2017.07.145", "2017-07-24",
                 "retraction-watch"),
                ("target", "erratum", "10.1016/j.apsusc.2017.07.145", "2017-10-31", "publisher"),
            },
        ),
        (
            "works_doi_10.1109_icetce.2011.5774727_notice_of_retraction_self_referencing.json",
            {("target", "retraction", "10.1109/icetce.2011.5774727", "2011-05-27",
              "retraction-watch")},
        ),
        (
            "works_doi_10.1021_am300292v_updated_by_rw_retraction_trimmed.json",
            {("target", "retraction", "10.1021/acsami.9b11759", "2019-07-26", "retraction-watch")},
        ),
        (
            "works_doi_10.1021_acsami.9b11759_retraction_notice_update_to_trimmed.json",
            {("notice", "retraction", "10.1021/am300292v", "2019-07-26", "retraction-watch")},
        ),
        (
            "works_doi_10.1016_j.lungcan.2026.109332_expression_of_concern_notice_trimmed.json",
            {("notice", "expression_of_concern", "10.1016/j.lungcan.2003.10.006", "2026-05-01",
              "publisher")},
        ),
        (  # titled "Erratum", typed correction: the update type decides
            "works_doi_10.1088_1361-6595_ab245f_erratum_notice_update_to_correction_trimmed.json",
            {("notice", "correction", "10.1088/1361-6595/aaebdb", "2019-07-11", "publisher")},
        ),
    ],
)  # fmt: skip
def test_crossref_single_works(name: str, expected: set[tuple[str, ...]]) -> None:
    (record,) = crossref(name)
    assert shape(record) == expected


def test_crossref_old_style_correction_notices_in_a_work_list() -> None:
    records = crossref("journals_1932-6203_works_rows30_cursor_page1_8_correction_notices.json")
    notices = {r.ids.doi: r for r in records if r.updates}
    assert len(notices) == 8  # the 8 "Correction: …" notices of the 30 PLOS ONE works
    assert shape(notices["10.1371/journal.pone.0129989"]) == {
        ("notice", "correction", "10.1371/journal.pone.0120799", "2015-06-03", "publisher")
    }  # no "source" key before Retraction Watch: the publisher's
    assert all(
        {u.role for u in r.updates} == {"notice"} and r.title.startswith("Correction")
        for r in notices.values()
        if r.title
    )


def test_pubmed_pair_retracted_article_and_its_notice() -> None:
    article, notice = pubmed(
        "efetch_pubmed_retracted_and_retraction_notice_pair_9500320_20137807.xml"
    )
    assert article.ids.pmid == "9500320"
    assert shape(article) == {
        ("target", "retraction", "10.1016/s0140-6736(04)15715-2", None, "pubmed"),
        ("target", "retraction", "10.1016/s0140-6736(10)60175-4", None, "pubmed"),
        ("target", "expression_of_concern", "10.1097/meg.0b013e328349d184", None, "pubmed"),
    }
    pmids = {u.notice.pmid for u in article.updates}
    assert pmids == {"15016483", "20137807", "21971344"}
    assert article.retracted
    # the newer type name "Retraction Notice": the notice, dated by its own publication
    assert notice.type == "retraction"
    assert shape(notice) == {("notice", "retraction", "10.1016/s0140-6736(97)11096-0",
                              "2010-02-06", "pubmed")}  # fmt: skip
    assert notice.updates[0].target.pmid == "9500320"


def test_pubmed_old_retraction_of_publication_notice_and_erratum_and_version_link() -> None:
    (old,) = pubmed("efetch_pubmed_retraction_of_publication_notice_27508352.xml")
    assert shape(old) == {("notice", "retraction", "26435620", "2016-05", "pubmed")}
    (corrected,) = pubmed("efetch_pubmed_erratum_in_38147649.xml")
    assert corrected.updates == (
        Update(
            kind="erratum",
            role="target",
            notice=Identifiers(doi="10.1073/pnas.2424381121", pmid="39705317"),
            asserted_by="pubmed",
        ),
    )
    (version,) = pubmed("efetch_pubmed_update_of_preprint_39345789.xml")
    assert version.updates == ()  # UpdateOf links a preprint, it is no notice


def test_europepmc_retracted_and_withdrawn_in_place() -> None:
    path = updates_dir() / "europepmc" / "search_pub_type_retracted_publication_core_pagesize2.json"
    first, second = parse_search(path.read_bytes()).records
    assert shape(first) == {
        ("target", "retraction", "10.3928/02793695-20260817-01", None, "europepmc")
    }
    assert first.updates[0].notice.pmid == "42715445"
    # "WITHDRAWN:" with its own DOI as the reference: withdrawn in place
    assert shape(second) == {("target", "withdrawal", "10.1016/j.jse.2026.06.002", None,
                              "europepmc")}  # fmt: skip
    assert second.retracted


def test_openalex_bare_flag() -> None:
    path = updates_dir() / "openalex" / "work_W2117847125_is_retracted_true_wakefield.json"
    (work,) = parse_openalex(path.read_bytes()).records
    assert work.updates == (Update(kind="retraction", role="target", asserted_by="openalex"),)
    assert work.ids.pmid == "9500320"  # the same study as PubMed's retracted article


def test_record_json_keeps_the_updates() -> None:
    (work,) = crossref("works_doi_10.1021_am300292v_updated_by_rw_retraction_trimmed.json")
    data = work.to_json()
    assert data["updates"] == [
        {
            "kind": "retraction",
            "role": "target",
            "notice": {"doi": "10.1021/acsami.9b11759"},
            "target": {},
            "date": "2019-07-26",
            "asserted_by": "retraction-watch",
            "source": None,
        }
    ]
    assert Record.from_json(data) == work


@pytest.mark.parametrize(
    ("title", "is_notice"),
    [
        ("Retraction—Hydroxychloroquine or chloroquine", True),
        ("Notice of Retraction: World-class city", True),
        ("Erratum: mechanisms responsible", True),
        ("RETRACTED: Hydroxychloroquine or chloroquine", False),
        ("WITHDRAWN: Letter to Editor", False),
        ("Correctional facilities and depression", False),
    ],
)
def test_notice_titles(title: str, is_notice: bool) -> None:
    assert notice_title(title) is is_notice


def test_a_record_without_source_id_keeps_its_provenance_key_when_a_notice_arrives() -> None:
    """The content hash that stands in for a missing source id must not change when a source
    adds update information to the same record (a retraction indexed after the first harvest),
    nor differ from the key stored before records carried ``updates`` at all."""
    from dataclasses import replace

    from harvester.store.lookup import provenance_key

    [first, *_] = [
        r
        for r in pubmed("efetch_pubmed_retracted_and_retraction_notice_pair_9500320_20137807.xml")
        if r.updates
    ]
    bare = replace(first, source_id=None, updates=())
    noticed = replace(bare, updates=first.updates)
    assert provenance_key(bare) == provenance_key(noticed)
    assert provenance_key(bare).startswith("sha1:")
    assert provenance_key(bare) != provenance_key(replace(bare, title="Another study"))
