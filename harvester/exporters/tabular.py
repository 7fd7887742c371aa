"""Stored works as JSONL (the Record schema, one work a line) and CSV (the dedup CSV columns)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from harvester.records import StoredWork

CSV_COLUMNS: tuple[str, ...] = (
    "record_id",
    "author",
    "year",
    "journal",
    "doi",
    "title",
    "pages",
    "volume",
    "number",
    "abstract",
    "isbn",
    "source",
    "pmid",
    "pmcid",
    "url",
    "type",
    "published",
)


def write_jsonl(works: Iterable[StoredWork], out: TextIO) -> int:
    """One Record per line, with every identifier the work has."""
    count = 0
    for work in works:
        out.write(json.dumps(work.record.to_json(), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(works: Iterable[StoredWork], out: TextIO) -> int:
    """The columns of the dedup CSV contract (plus ids), authors joined with " and "."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for work in works:
        r = work.record
        writer.writerow(
            {
                "record_id": work.id,
                "author": " and ".join(
                    a.collective or ", ".join(p for p in (a.family, a.given) if p)
                    for a in r.authors
                ),
                "year": r.year or "",
                "journal": r.venue or "",
                "doi": r.ids.doi or "",
                "title": r.title or "",
                "pages": r.pages or "",
                "volume": r.volume or "",
                "number": r.issue or "",
                "abstract": r.abstract or "",
                "isbn": "",
                "source": ";".join(work.sources),
                "pmid": r.ids.pmid or "",
                "pmcid": r.ids.pmcid or "",
                "url": r.url or "",
                "type": r.type or "",
                "published": r.published or "",
            }
        )
        count += 1
    return count


__all__ = ["CSV_COLUMNS", "write_csv", "write_jsonl"]
