"""`harvester dedup` files: read CSV, RIS or JSONL records, deduplicate, write the same format back
with a ``duplicate_id`` (DESIGN.md "Dedup CSV").

``duplicate_id`` is the ``record_id`` of the record kept for the study (the most complete record
of its duplicates); a record with no duplicate gets its own ``record_id``. ``version_of`` is the
``duplicate_id`` of the main version of the study when the record's work is linked to another
as a version of it (a preprint and its article; a paper's conference, journal and report
versions, which are never merged), else empty; the main version's own records carry their own
``duplicate_id`` there. Every input column, tag or key is written back unchanged, so a
reviewer's own fields survive.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import rispy
from rispy.writer import RisWriter

from harvester.dedup.cluster import cluster, version_heads
from harvester.dedup.numbers import year_of
from harvester.errors import ParseError
from harvester.records import Author, Identifiers, Record
from harvester.text.fields import split_name
from harvester.text.fold import collapse_whitespace
from harvester.text.identifiers import normalize_doi

FORMATS: tuple[str, ...] = ("csv", "ris", "jsonl")
_SUFFIXES = {".csv": "csv", ".ris": "ris", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
# RIS has no tag for it; "DI" is unused by the RIS specification and read back by this module.
RIS_DUPLICATE_TAG = "DI"
RIS_VERSION_TAG = "VN"  # likewise unused by the specification and by rispy
_RIS_MAPPING = {
    **rispy.TAG_KEY_MAPPING, RIS_DUPLICATE_TAG: "duplicate_id", RIS_VERSION_TAG: "version_of"
}  # fmt: skip
# The columns (keys, tags) `harvester dedup` adds; an earlier run's are replaced, not kept.
ADDED = ("duplicate_id", "version_of")


@dataclass(frozen=True, slots=True)
class DedupSummary:
    """What `harvester dedup` did: records read, distinct works, records marked as duplicates
    of another, preprint↔article pairs linked (not merged), candidate pairs compared."""

    format: str
    records: int
    works: int
    duplicates: int
    linked: int
    compared: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One input record: its id, what the matcher reads, and the raw row to write back."""

    record_id: str
    record: Record
    raw: dict[str, Any]


# --- records from CSV-style fields ---------------------------------------------------------------

_AUTHOR_SEP = re.compile(r"\s+and\s+|\s*;\s*|\s+&\s+", re.I)
_INITIALS = re.compile(r"^(?:[A-Za-z]{1,2}\.?[\s-]*)+$")
# "p. auer, n. cesa-bianchi": a comma list of given-first names, not "Family, Given".
_LEADING_INITIAL = re.compile(r"^[A-Za-z]\.?\s")


def parse_authors(text: str | None) -> tuple[Author, ...]:
    """Authors from an export's author string: BibTeX ``"Zuber, J and Le Quintrec, M"``,
    comma lists ``"Viswanath Poosala, Yannis E. Ioannidis"`` and citation styles
    ``"blum, a., furst, m., and r. e. schapire"``."""
    text = collapse_whitespace(html.unescape(text)) if text else None
    if not text:
        return ()
    parts = [p.strip(" ,.") for p in _AUTHOR_SEP.split(text)]
    parts = [p for p in parts if p]
    names: list[str] = []
    if len(parts) > 1 and all(p.count(",") <= 1 and not _LEADING_INITIAL.match(p) for p in parts):
        names = parts  # BibTeX/EndNote: one "Family, Given" per part
    else:
        pieces = [p.strip() for part in parts for p in part.split(",") if p.strip()]
        i = 0
        while i < len(pieces):
            nxt = pieces[i + 1] if i + 1 < len(pieces) else None
            if nxt is not None and " " not in pieces[i] and _INITIALS.match(nxt):
                names.append(f"{pieces[i]}, {nxt}")  # "blum, a."
                i += 2
            else:
                names.append(pieces[i])
                i += 1
    authors = []
    for name in names:
        family, given = split_name(name)
        authors.append(Author(family=family, given=given))
    return tuple(authors)


def record_from_fields(fields: dict[str, str], *, source: str) -> Record:
    """A Record from the dedup CSV columns (lower-cased names; missing ones absent)."""

    def get(*names: str) -> str | None:
        for name in names:
            value = collapse_whitespace(fields.get(name))
            if value:
                return value
        return None

    return Record(
        source=get("source") or source,
        source_id=get("record_id"),
        ids=Identifiers(doi=normalize_doi(get("doi"))),
        title=get("title"),
        abstract=get("abstract"),
        authors=parse_authors(get("author", "authors")),
        venue=get("journal", "booktitle", "venue"),
        year=year_of(get("year")),
        volume=get("volume"),
        issue=get("number", "issue"),
        pages=get("pages"),
        type=get("entrytype", "type"),
    )


# --- readers ---------------------------------------------------------------------------------


# the DESIGN.md dedup columns that say what a record is (record_id, source, label do not)
_DESCRIBING = frozenset(
    {"author", "year", "journal", "doi", "title", "pages", "volume", "number", "abstract", "isbn"}
)


def read_csv(text: str, name: str) -> tuple[list[str], list[Entry]]:
    """The header (as written, plus ``record_id`` first if absent) and the entries."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ParseError(f"{name}: empty file, expected a CSV header") from None
    except csv.Error as e:
        raise ParseError(f"{name}:1: {e}") from e
    lower = [h.strip().lower() for h in header]
    if not set(lower) & _DESCRIBING:
        raise ParseError(
            f"{name}:1: no column describes a record; expected some of "
            f"{', '.join(sorted(_DESCRIBING))} (any order, any case), found {', '.join(header)}"
        )
    has_id = "record_id" in lower
    out_header = header if has_id else ["record_id", *header]
    entries: list[Entry] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise ParseError(f"{name}:{line}: {len(row)} fields, the header has {len(header)}")
            fields = dict(zip(lower, row, strict=True))
            record_id = (fields.get("record_id") or "").strip() or str(len(entries) + 1)
            raw = dict(zip(header, row, strict=True))
            if not has_id:
                raw = {"record_id": record_id, **raw}
            entries.append(Entry(record_id, record_from_fields(fields, source="csv"), raw))
    except csv.Error as e:
        raise ParseError(f"{name}:{reader.line_num}: {e}") from e
    return out_header, entries


def _ris_fields(entry: dict[str, Any]) -> dict[str, str]:
    def first(*keys: str) -> str:
        for key in keys:
            value = entry.get(key)
            if isinstance(value, list):
                value = value[0] if value else None
            if value:
                return str(value)
        return ""

    authors = entry.get("authors") or entry.get("first_authors") or []
    start, end = first("start_page"), first("end_page")
    return {
        "author": " and ".join(str(a) for a in authors),
        "title": first("title", "primary_title", "translated_title"),
        "year": first("year", "publication_year", "date"),
        "journal": first(
            "journal_name",
            "secondary_title",
            "alternate_title3",
            "alternate_title1",
            "alternate_title2",
        ),  # fmt: skip
        "doi": first("doi"),
        "pages": f"{start}-{end}" if start and end else start,
        "volume": first("volume"),
        "number": first("number"),
        "abstract": first("abstract", "notes_abstract"),
        "entrytype": _RIS_TYPES.get(first("type_of_reference").upper(), ""),
    }


# RIS reference types that say what a record is about (a notice, not the work itself).
_RIS_TYPES = {
    "JOUR": "journal-article",
    "CONF": "proceedings-article",
    "CPAPER": "proceedings-article",
}


def read_ris(text: str, name: str) -> list[Entry]:
    try:
        refs = rispy.loads(text, mapping=_RIS_MAPPING)
    except (ValueError, KeyError, IndexError) as e:
        raise ParseError(f"{name}: not a readable RIS file: {e}") from e
    if not refs and text.strip():
        raise ParseError(f"{name}:1: no RIS reference found (each starts with 'TY  - ')")
    entries = []
    for n, ref in enumerate(refs, start=1):
        for added in ADDED:
            ref.pop(added, None)  # an earlier run's output read again
        record_id = str(ref.get("id") or n)
        record = record_from_fields({**_ris_fields(ref), "record_id": record_id}, source="ris")
        entries.append(Entry(record_id, record, ref))
    return entries


def read_jsonl(text: str, name: str) -> list[Entry]:
    entries = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("a line must be a JSON object (a Record)")
            record = Record.from_json(data)
        except (ValueError, TypeError, AttributeError) as e:
            raise ParseError(f"{name}:{line_no}: {e}") from e
        except RecursionError:
            # json recurses once per nested array or object; a Record nests three levels
            raise ParseError(f"{name}:{line_no}: nesting too deep") from None
        for added in ADDED:
            data.pop(added, None)
        record_id = str(data.get("record_id") or data.get("source_id") or line_no)
        entries.append(Entry(record_id, record, data))
    return entries


# --- the command ---------------------------------------------------------------------------------


def detect_format(path: Path, text: str) -> str:
    """From the suffix, else from the content (``TY  -`` starts RIS, ``{`` starts JSONL)."""
    if fmt := _SUFFIXES.get(path.suffix.lower()):
        return fmt
    head = text.lstrip("\ufeff \r\n\t")
    if head.startswith("TY  -"):
        return "ris"
    if head.startswith("{"):
        return "jsonl"
    return "csv"


def dedup_entries(entries: Sequence[Entry]) -> tuple[list[str], int, int]:
    """``duplicate_id`` for each entry, the number of version links and of compared pairs."""
    duplicate_ids, _, linked, compared = dedup_versions(entries)
    return duplicate_ids, linked, compared


def dedup_versions(entries: Sequence[Entry]) -> tuple[list[str], list[str], int, int]:
    """``duplicate_id`` and ``version_of`` (empty for none) for each entry, the number of
    version links and of compared pairs."""
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.record_id in seen:
            raise ParseError(f"record_id {entry.record_id!r} appears twice")
        seen[entry.record_id] = 1
    records = [e.record for e in entries]
    result = cluster(records)
    heads = version_heads(records, result)
    versions = ["" if h is None else entries[h].record_id for h in heads]
    return [entries[k].record_id for k in result.kept], versions, len(result.links), result.compared


def dedup_file(
    input: Path, output: TextIO | Path | None, *, format: str | None = None
) -> DedupSummary:
    """Read ``input`` (CSV, RIS or JSONL), deduplicate, and write it to ``output`` (a path, an
    open text stream, or stdout when None) in the same format with ``duplicate_id`` added.

    Raises ParseError naming the file, the line and the problem for unreadable input.
    """
    name = str(input)
    try:
        raw = input.read_bytes()
    except OSError as e:
        raise ParseError(f"{name}: {e.strerror or e}") from e
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0  # Excel writes one
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = bom + e.start  # the offset in the file, BOM included
        raise ParseError(f"{name}: not UTF-8 text (byte 0x{raw[at]:02x} at offset {at})") from e
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as read_text's universal newlines
    fmt = format or detect_format(input, text)
    if fmt not in FORMATS:
        raise ParseError(f"{name}: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    header: list[str] = []
    if fmt == "csv":
        header, entries = read_csv(text, name)
    else:
        entries = read_ris(text, name) if fmt == "ris" else read_jsonl(text, name)
    try:
        duplicate_ids, versions, linked, compared = dedup_versions(entries)
    except ParseError as e:
        raise ParseError(f"{name}: {e}") from e
    writer: Callable[[TextIO], None]
    if fmt == "csv":
        writer = lambda out: _write_csv(out, header, entries, duplicate_ids, versions)  # noqa: E731
    elif fmt == "ris":
        writer = lambda out: _write_ris(out, entries, duplicate_ids, versions)  # noqa: E731
    else:
        writer = lambda out: _write_jsonl(out, entries, duplicate_ids, versions)  # noqa: E731
    if output is None:
        writer(sys.stdout)
    elif isinstance(output, Path):
        with output.open("w", encoding="utf-8", newline="") as out:
            writer(out)
    else:
        writer(output)
    works = len(set(duplicate_ids))
    return DedupSummary(fmt, len(entries), works, len(entries) - works, linked, compared)


def _write_csv(
    out: TextIO, header: list[str], entries: Sequence[Entry], ids: list[str], versions: list[str]
) -> None:
    writer = csv.writer(out, lineterminator="\n")
    kept_header = [h for h in header if h.strip().lower() not in ADDED]
    writer.writerow([*kept_header, *ADDED])
    for entry, dup, version in zip(entries, ids, versions, strict=True):
        writer.writerow([*(entry.raw.get(h, "") for h in kept_header), dup, version])


class PlainRisWriter(RisWriter):  # type: ignore[misc]  # rispy ships no type hints
    """RIS without rispy's reference numbers, as reference managers expect."""

    def set_header(self, count: int) -> str:
        return ""  # rispy numbers references ("1.") by default; RIS readers do not expect it


def _write_ris(out: TextIO, entries: Sequence[Entry], ids: list[str], versions: list[str]) -> None:
    refs = []
    for entry, dup, version in zip(entries, ids, versions, strict=True):
        ref = {**entry.raw, "duplicate_id": dup}
        if version:
            ref["version_of"] = version  # a tag only where there is a version, as RIS omits
        ref.setdefault("id", entry.record_id)
        refs.append(ref)
    out.write(rispy.dumps(refs, implementation=PlainRisWriter, mapping=_RIS_MAPPING))


def _write_jsonl(
    out: TextIO, entries: Sequence[Entry], ids: list[str], versions: list[str]
) -> None:
    for entry, dup, version in zip(entries, ids, versions, strict=True):
        data = {**entry.raw, "duplicate_id": dup, "version_of": version or None}
        data.setdefault("record_id", entry.record_id)
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
