"""Exports read back with the libraries reference managers use; the Atom feed parses."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bibtexparser
import pytest
import rispy
from lxml import etree

from harvester.exporters import EXPORTERS, atom_feed
from harvester.records import StoredWork
from harvester.sources.base import Window
from harvester.sources.pubmed import parse_efetch
from harvester.store.database import open_engine
from harvester.store.repository import Repository
from tests.conftest import FixedClock, require_shared

NOW = datetime(2025, 1, 15, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def works(tmp_path_factory: pytest.TempPathFactory) -> list[StoredWork]:
    """The real records of two PubMed fixtures, stored: one with a collective author."""
    fixtures = require_shared() / "pubmed"
    records = []
    for name in (
        "efetch_pubmed_50_records_structured_abstracts.xml",
        "efetch_pubmed_collective_author_structured_abstract.xml",
    ):
        records += parse_efetch((fixtures / name).read_bytes()).records
    db = tmp_path_factory.mktemp("export") / "e.db"
    engine = open_engine(f"sqlite:///{db}")
    repo = Repository(engine, clock=FixedClock(NOW))
    run = repo.begin_run("t", "pubmed", Window(NOW - timedelta(days=1), NOW))
    repo.store_page(run, "t", records)
    stored = repo.works("t")
    engine.dispose()
    return stored


def export(fmt: str, works: list[StoredWork]) -> str:
    out = io.StringIO()
    assert EXPORTERS[fmt](works, out) == len(works)
    return out.getvalue()


def test_ris_reads_back_with_rispy(works: list[StoredWork]) -> None:
    text = export("ris", works)
    assert not text.startswith("1.")  # no rispy numbering: plain RIS
    entries = rispy.loads(text)
    assert len(entries) == len(works)
    by_id = {e["id"]: e for e in entries}
    for w in works:
        e = by_id[str(w.id)]
        assert e["type_of_reference"] == "JOUR" and e["title"] == w.record.title
        assert e.get("doi") == w.record.ids.doi
        assert len(e.get("authors", [])) == len(w.record.authors)


def test_bibtex_reads_back_with_bibtexparser(works: list[StoredWork]) -> None:
    library = bibtexparser.parse_string(export("bibtex", works))
    assert len(library.entries) == len(works) and not library.failed_blocks
    keys = [e.key for e in library.entries]
    assert len(set(keys)) == len(keys)
    first = library.entries[0]
    record = works[0].record
    # the title braced whole: styles that lower-case titles keep its capitals
    assert first["title"] == f"{{{record.title}}}" and first["doi"] == record.ids.doi
    assert first["pages"] == (record.pages or "").replace("-", "--")


def test_csljson_items(works: list[StoredWork]) -> None:
    items = json.loads(export("csljson", works))
    assert len(items) == len(works)
    collective = [i for i in items if any("literal" in a for a in i.get("author", []))]
    assert collective  # the collective author is a literal name, not split
    for item, w in zip(items, works, strict=True):
        assert item["type"] == "article-journal" and item["id"] == str(w.id)
        assert item["issued"]["date-parts"][0][0] == w.record.year


def test_atom_feed_is_well_formed_and_newest_first(works: list[StoredWork], tmp_path: Path) -> None:
    data = atom_feed("t", works[:10], now=NOW)
    root = etree.fromstring(data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert len(entries) == 10
    titles = [e.findtext("a:title", namespaces=ns) for e in entries]
    assert titles[0] == works[9].record.title  # the last added is the first entry
    assert all(e.find("a:link", ns) is not None for e in entries)


def test_bibtex_escapes_every_latex_special_and_keeps_names_whole() -> None:
    """Issue 11.3's examples in one record (made here: no recorded response holds them all)."""
    import pybtex.errors
    from pybtex.database import parse_string

    from harvester.records import Author, Identifiers, Record
    from tests.test_export_readers import latex_to_text

    title = "R&D and Tobin's Q: $35,000 for 100% of #1 a_b {x} ~ ^ \\ <0.05"
    record = Record(
        source="crossref",
        title=title,
        venue="Information & Management",
        pages="123–130",
        year=2020,
        abstract="An odd $ sign, then 5% and A&B.",
        ids=Identifiers(doi="10.1000/a_b%{1}"),
        authors=(
            Author(family="Foltyński", given="Łukasz"),
            Author(collective="Task and Finish Group (TFG-U), European Federation (EFLM)"),
            Author(family="Sanders, Jr", given="Anne"),
        ),
        type="journal-article",
    )
    text = export("bibtex", [StoredWork(7, record, ("crossref",))])
    pybtex.errors.set_strict_mode(True)
    try:
        entry = parse_string(text, "bibtex").entries["foltynski2020w7"]
    finally:
        pybtex.errors.set_strict_mode(False)
    assert text.isascii()
    assert entry.fields["title"].startswith("{") and entry.fields["title"].endswith("}")
    assert latex_to_text(entry.fields["title"]) == title
    assert latex_to_text(entry.fields["journal"]) == "Information & Management"
    assert latex_to_text(entry.fields["abstract"]) == record.abstract
    assert entry.fields["pages"] == "123--130"
    assert entry.fields["doi"] == "10.1000/a_b%%7B1%7D"
    people = entry.persons["author"]
    assert len(people) == 3  # no name split at its "and" or its comma
    assert latex_to_text(people[0].last_names[0]) == "Foltyński"
    assert latex_to_text(people[0].first_names[0]) == "Łukasz"
    assert latex_to_text(people[1].last_names[0]) == record.authors[1].collective
    assert latex_to_text(people[2].last_names[0]) == "Sanders, Jr"


def test_bibtex_writes_unicode_scripts_as_latex_commands() -> None:
    # normalize.py writes <sup>/<sub> markup as Unicode scripts (PubMed 29963580: "³He/¹²⁹Xe");
    # 8-bit BibTeX and pdflatex without packages need LaTeX's own commands for them
    from harvester.exporters import tex_escape

    assert tex_escape("³He/¹²⁹Xe, Ca²⁺ and H₂S") == (
        "{\\textsuperscript{3}}He/{\\textsuperscript{129}}Xe, "
        "Ca{\\textsuperscript{2+}} and H{\\textsubscript{2}}S"
    )
