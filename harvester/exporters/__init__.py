"""Stored works out as files for reference managers and feed readers.

JSONL and CSV (``tabular``), RIS and CSL-JSON (``citations``: CSL is the Citation Style
Language's JSON, which Zotero and Pandoc read), BibTeX (``bibtex``, written here for classic
BibTeX and biber alike) and Atom (``feed``, feedgen); ``kinds`` maps a work's type into each
format. tests/test_export_readers.py reads each back with readers other than the writers:
pybtex, citation-js, pdflatex with bibtex, feedparser.

Imports the store's ``StoredWork`` and records; RIS also dedup.files' RIS writer, the Atom
feed the digests' citation line.
:data:`EXPORTERS` is what ``harvester export --format`` chooses from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TextIO

from harvester.exporters.bibtex import bibtex_entry, tex_escape, write_bibtex
from harvester.exporters.citations import csl_item, write_csljson, write_ris
from harvester.exporters.feed import atom_feed
from harvester.exporters.tabular import CSV_COLUMNS, write_csv, write_jsonl
from harvester.records import StoredWork

EXPORTERS: dict[str, Callable[[Iterable[StoredWork], TextIO], int]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "ris": write_ris,
    "bibtex": write_bibtex,
    "csljson": write_csljson,
}


__all__ = [
    "CSV_COLUMNS",
    "EXPORTERS",
    "atom_feed",
    "bibtex_entry",
    "csl_item",
    "tex_escape",
    "write_bibtex",
    "write_csljson",
    "write_csv",
    "write_jsonl",
    "write_ris",
]
