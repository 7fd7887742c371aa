"""`harvester dedup` file formats: CSV (DESIGN.md columns), RIS and JSONL in, the same out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import rispy

from harvester.dedup.files import RIS_DUPLICATE_TAG, RIS_VERSION_TAG, dedup_file, parse_authors
from harvester.errors import ParseError
from tests.conftest import SHARED

SPECIAL = SHARED / "dedup" / "colrev_special_cases"
TRUE_PAIRS = {("id_0000001", "id_0000002"), ("id_0000005", "id_0000006"),
              ("id_0000007", "id_0000011")}  # fmt: skip


@pytest.fixture
def special_csv() -> Path:
    path = SPECIAL / "records.csv"
    if not path.exists():
        pytest.skip(f"labelled dedup sets not found at {SPECIAL}")
    return path


def _pairs(ids: dict[str, str]) -> set[tuple[str, str]]:
    return {(a, b) for a in ids for b in ids if a < b and ids[a] == ids[b]}


def test_csv_out_keeps_every_column_and_adds_duplicate_id(special_csv: Path) -> None:
    out = io.StringIO()
    summary = dedup_file(special_csv, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    with special_csv.open(encoding="utf-8", newline="") as f:
        original = list(csv.DictReader(f))
    assert list(rows[0]) == [*original[0], "duplicate_id", "version_of"]
    added = ("duplicate_id", "version_of")
    assert [{k: v for k, v in r.items() if k not in added} for r in rows] == original
    assert _pairs({r["record_id"]: r["duplicate_id"] for r in rows}) == TRUE_PAIRS
    assert (summary.format, summary.records, summary.works, summary.duplicates) == ("csv", 12, 9, 3)
    # The special cases' two conference papers and their later journal versions (README: "a
    # 2011 conference paper and its 2014 journal version"; AMCIS 2003 id_0000012 and the 2004
    # article id_0000007/id_0000011): linked to the journal version, never merged.
    versions = {r["record_id"]: r["version_of"] for r in rows if r["version_of"]}
    assert versions == {
        "id_0000009": "id_0000010", "id_0000010": "id_0000010",
        "id_0000012": "id_0000011", "id_0000007": "id_0000011", "id_0000011": "id_0000011",
    }  # fmt: skip
    assert summary.linked == 3  # 09-10, and 12 with both records of the 2004 article


def test_csv_columns_any_case_any_order_missing_id(tmp_path: Path, special_csv: Path) -> None:
    # The special cases' rows 1, 2 and 3 with upper-case headers, no record_id and an extra column.
    with special_csv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Title", "AUTHOR", "Year", "Reviewer note"])
        for row in rows:
            writer.writerow([row["title"], row["author"], row["year"], "keep me"])
    target = tmp_path / "out.csv"
    dedup_file(path, target)
    out = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert list(out[0]) == [
        "record_id", "Title", "AUTHOR", "Year", "Reviewer note", "duplicate_id", "version_of"
    ]  # fmt: skip
    assert [r["duplicate_id"] for r in out] in (["1", "1", "3"], ["2", "2", "3"])
    assert {r["Reviewer note"] for r in out} == {"keep me"}


def test_bad_csv_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text('record_id,title,year\n1,"A title",2001\n2,"Another",2002,extra\n')
    with pytest.raises(ParseError, match=r"broken\.csv:3: 4 fields, the header has 3"):
        dedup_file(path, io.StringIO())


def test_ris_round_trip_with_duplicate_tag(tmp_path: Path, special_csv: Path) -> None:
    # RIS built from the special cases' rows 5, 6 (one AMCIS 2017 paper) and 7 (another work).
    with special_csv.open(encoding="utf-8", newline="") as f:
        rows = {r["record_id"]: r for r in csv.DictReader(f)}
    refs = [
        {
            "type_of_reference": "CONF" if rows[i]["booktitle"] else "JOUR",
            "id": i,
            "authors": rows[i]["author"].split(" and "),
            "title": rows[i]["title"],
            "year": rows[i]["year"],
            "secondary_title": rows[i]["booktitle"] or rows[i]["journal"],
        }
        for i in ("id_0000005", "id_0000006", "id_0000007")
    ]
    path = tmp_path / "export.ris"
    path.write_text(rispy.dumps(refs), encoding="utf-8")
    out = io.StringIO()
    summary = dedup_file(path, out)
    assert summary.format == "ris" and summary.works == 2
    text = out.getvalue()
    assert f"{RIS_DUPLICATE_TAG}  - " in text and not text.startswith("1.")
    back = rispy.loads(text, mapping={**rispy.TAG_KEY_MAPPING, RIS_DUPLICATE_TAG: "dup"})
    assert [r["dup"] for r in back][:2] == [back[0]["dup"]] * 2
    assert back[2]["dup"] == "id_0000007"
    assert [r["title"] for r in back] == [r["title"] for r in refs]


def test_jsonl_records_get_duplicate_id_and_bad_lines_are_named(tmp_path: Path) -> None:
    # Record JSON (DESIGN.md) for the special cases' id_0000007/id_0000011 pair, one with a DOI.
    base = {"source": "crossref", "title": "Cultural Universality Versus Particularity in CMC",
            "authors": [{"family": "Stahl", "given": "Bernd Carsten"},
                        {"family": "Elbeltagi", "given": "Ibrahim"}],
            "venue": "Journal of Global Information Technology Management", "year": 2004,
            "volume": "7", "issue": "4", "pages": "47-65"}  # fmt: skip
    lines = [
        {**base, "ids": {"doi": "10.1080/1097198x.2004.10856384"}, "record_id": "a"},
        {**base, "ids": {}, "source": "pubmed", "record_id": "b"},
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = io.StringIO()
    dedup_file(path, out)
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [w["duplicate_id"] for w in written] == ["a", "a"]
    assert written[0]["ids"] == lines[0]["ids"]
    path.write_text(json.dumps(lines[0]) + "\n{not json\n")
    with pytest.raises(ParseError, match=r"records\.jsonl:2:"):
        dedup_file(path, io.StringIO())


def test_author_strings_of_the_datasets() -> None:
    # sra_haematology id_0000001, dblp_acm dblp_1, cora record 5 and record 0.
    assert [a.family for a in parse_authors("Zuber, J and Le Quintrec, M")] == [
        "Zuber",
        "Le Quintrec",
    ]
    assert [a.family for a in parse_authors("Viswanath Poosala, Yannis E. Ioannidis")] == [
        "Poosala", "Ioannidis"
    ]  # fmt: skip
    assert [a.family for a in parse_authors("blum, a., furst, m., jackson, j.,")] == [
        "blum", "furst", "jackson"
    ]  # fmt: skip
    assert [a.family for a in parse_authors("p. auer, n. cesa-bianchi, and r. e. schapire,")] == [
        "auer", "cesa-bianchi", "schapire"
    ]  # fmt: skip
    # ACM's HTML entities are not author separators: "C&#233;sar Galindo-Legaria".
    assert [a.family for a in parse_authors("C&#233;sar Galindo-Legaria, Milind Joshi")] == [
        "Galindo-Legaria", "Joshi"
    ]  # fmt: skip


def test_a_csv_without_any_record_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_text("hostname\nvm\n")
    with pytest.raises(ParseError, match=r"hosts.csv:1: no column describes a record"):
        dedup_file(path, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_deeply_nested_jsonl_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    ok = {"source": "crossref", "title": "A study", "record_id": "a"}
    path.write_text(json.dumps(ok) + "\n" + '{"title": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(ParseError) as caught:
        dedup_file(path, io.StringIO())
    assert str(caught.value) == f"{path}:2: nesting too deep"


def test_input_that_is_not_utf8_names_byte_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    # Excel's UTF-8 BOM, then a title saved as Latin-1 ("Müller" with ü as the byte 0xfc)
    raw = b"\xef\xbb\xbfrecord_id,title\n1,M\xfcller\n"
    path.write_bytes(raw)
    with pytest.raises(ParseError) as caught:
        dedup_file(path, io.StringIO())
    assert raw.index(b"\xfc") == 22  # counted in the file, the BOM's 3 bytes included
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 0xfc at offset 22)"
    path.write_bytes(b"\xef\xbb\xbfrecord_id,title\r\n1,M\xc3\xbcller\r\n")  # the same, UTF-8
    out = io.StringIO()
    assert dedup_file(path, out).records == 1
    assert out.getvalue() == "record_id,title,duplicate_id,version_of\n1,Müller,1,\n"


def test_version_of_in_ris_and_jsonl_and_read_back(tmp_path: Path, special_csv: Path) -> None:
    # The special cases' id_0000009 (Symposium on Dependable …, 2011, 10.1109/DASC.2011.166) and
    # id_0000010 (the 2014 journal version, 10.1080/10919392.2014.896714), and id_0000005 (no
    # version): RIS out carries the version tag on the two versions only.
    with special_csv.open(encoding="utf-8", newline="") as f:
        rows = {r["record_id"]: r for r in csv.DictReader(f)}
    refs = [
        {
            "type_of_reference": "CONF" if rows[i]["booktitle"] else "JOUR",
            "id": i,
            "authors": rows[i]["author"].split(" and "),
            "title": rows[i]["title"],
            "year": rows[i]["year"],
            "doi": rows[i]["doi"],
            "secondary_title": rows[i]["booktitle"] or rows[i]["journal"],
        }
        for i in ("id_0000009", "id_0000010", "id_0000005")
    ]
    path = tmp_path / "export.ris"
    path.write_text(rispy.dumps(refs), encoding="utf-8")
    out = io.StringIO()
    summary = dedup_file(path, out)
    assert summary.works == 3 and summary.linked == 1
    back = rispy.loads(out.getvalue(), mapping={**rispy.TAG_KEY_MAPPING, RIS_VERSION_TAG: "ver"})
    assert [r.get("ver") for r in back] == ["id_0000010", "id_0000010", None]
    # An earlier run's output read again gives the same output (its tags are replaced).
    again = tmp_path / "again.ris"
    again.write_text(out.getvalue(), encoding="utf-8")
    second = io.StringIO()
    dedup_file(again, second)
    assert second.getvalue() == out.getvalue()
    # JSONL: the same two as Records; version_of is null where there is none.
    lines = [
        {"source": "crossref", "title": rows[i]["title"], "year": int(rows[i]["year"]),
         "authors": [{"family": a.split(", ")[0]} for a in rows[i]["author"].split(" and ")],
         "venue": rows[i]["booktitle"] or rows[i]["journal"], "record_id": i}
        for i in ("id_0000009", "id_0000010", "id_0000005")
    ]  # fmt: skip
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = io.StringIO()
    dedup_file(jsonl, out)
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [w["version_of"] for w in written] == ["id_0000010", "id_0000010", None]
    assert [w["duplicate_id"] for w in written] == ["id_0000009", "id_0000010", "id_0000005"]
