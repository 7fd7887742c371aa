"""Stored works out as files for reference managers and feed readers.

JSONL (the Record schema), CSV (the dedup CSV columns), RIS (rispy), BibTeX (bibtexparser),
CSL-JSON (the Citation Style Language's JSON, which Zotero and Pandoc read) and Atom (feedgen).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TextIO

from harvester.store.repository import StoredWork

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


# Record.type -> RIS TY, BibTeX entry type, CSL type
_TYPES: dict[str, tuple[str, str, str]] = {
    "journal-article": ("JOUR", "article", "article-journal"),
    "review": ("JOUR", "article", "article-journal"),
    "editorial": ("JOUR", "article", "article-journal"),
    "letter": ("JOUR", "article", "article-journal"),
    "erratum": ("JOUR", "article", "article-journal"),
    "retraction": ("JOUR", "article", "article-journal"),
    "preprint": ("UNPB", "misc", "article"),
    "proceedings-article": ("CPAPER", "inproceedings", "paper-conference"),
    "book-chapter": ("CHAP", "incollection", "chapter"),
    "book": ("BOOK", "book", "book"),
}
_DEFAULT_TYPE = ("GEN", "misc", "article")


def _kind(work: StoredWork) -> tuple[str, str, str]:
    return _TYPES.get(work.record.type or "", _DEFAULT_TYPE)


def _page_range(pages: str | None) -> tuple[str | None, str | None]:
    if not pages:
        return None, None
    first, _, last = pages.partition("-")
    return first or None, last or None


def write_ris(works: Iterable[StoredWork], out: TextIO) -> int:
    """RIS, as rispy writes it (one reference per work, the work id as ID)."""
    import rispy

    from harvester.dedup_io import PlainRisWriter

    entries = []
    for work in works:
        r = work.record
        start, end = _page_range(r.pages)
        entry: dict[str, object] = {
            "type_of_reference": _kind(work)[0],
            "id": str(work.id),
            "title": r.title,
            "authors": [
                a.collective or ", ".join(p for p in (a.family, a.given) if p) for a in r.authors
            ],
            "journal_name": r.venue,
            "year": str(r.year) if r.year else None,
            "date": r.published.replace("-", "/") if r.published else None,
            "volume": r.volume,
            "number": r.issue,
            "start_page": start,
            "end_page": end,
            "doi": r.ids.doi,
            "abstract": r.abstract,
            "language": r.language,
            "urls": [u for u in (r.url,) if u],
            "keywords": list(r.keywords),
            "notes": [f"PMID: {r.ids.pmid}"] if r.ids.pmid else [],
        }
        entries.append({k: v for k, v in entry.items() if v not in (None, [], "")})
    out.write(rispy.dumps(entries, implementation=PlainRisWriter))
    return len(entries)


def _bibtex_key(work: StoredWork) -> str:
    r = work.record
    first = next((a.family or a.collective for a in r.authors if a.family or a.collective), "")
    stem = "".join(c for c in (first or "anon").split()[0] if c.isalnum()) or "anon"
    return f"{stem.lower()}{r.year or ''}w{work.id}"


def write_bibtex(works: Iterable[StoredWork], out: TextIO) -> int:
    """BibTeX, as bibtexparser writes it (keys: first author, year and work id, unique)."""
    from bibtexparser import model
    from bibtexparser.entrypoint import write_string as write_bibtex_string
    from bibtexparser.library import Library
    from bibtexparser.middlewares import AddEnclosingMiddleware

    library = Library()
    count = 0
    for work in works:
        r = work.record
        values = {
            "title": r.title,
            "author": " and ".join(
                f"{{{a.collective}}}"
                if a.collective
                else ", ".join(p for p in (a.family, a.given) if p)
                for a in r.authors
            ),
            "journal" if _kind(work)[1] == "article" else "howpublished": r.venue,
            "year": str(r.year) if r.year else None,
            "volume": r.volume,
            "number": r.issue,
            "pages": r.pages.replace("-", "--") if r.pages else None,
            "doi": r.ids.doi,
            "pmid": r.ids.pmid,
            "url": r.url,
            "abstract": r.abstract,
        }
        fields = [model.Field(k, v) for k, v in values.items() if v]
        library.add(model.Entry(_kind(work)[1], _bibtex_key(work), fields))
        count += 1
    # values in braces: titles and abstracts hold commas, spaces and "=" that bare values cannot
    enclose = AddEnclosingMiddleware(
        reuse_previous_enclosing=False, enclose_integers=True, default_enclosing="{"
    )
    out.write(write_bibtex_string(library, unparse_stack=[enclose]))
    return count


def csl_item(work: StoredWork) -> dict[str, object]:
    """One work as a CSL-JSON item (https://citeproc-js.readthedocs.io/en/latest/csl-json/)."""
    r = work.record
    item: dict[str, object] = {"id": str(work.id), "type": _kind(work)[2]}
    if r.title:
        item["title"] = r.title
    authors = [
        {"literal": a.collective}
        if a.collective
        else {k: v for k, v in (("family", a.family), ("given", a.given)) if v}
        for a in r.authors
    ]
    if authors:
        item["author"] = authors
    if r.published or r.year:
        parts = [int(p) for p in (r.published or str(r.year)).split("-")]
        item["issued"] = {"date-parts": [parts]}
    for key, value in (
        ("container-title", r.venue),
        ("volume", r.volume),
        ("issue", r.issue),
        ("page", r.pages),
        ("DOI", r.ids.doi),
        ("PMID", r.ids.pmid),
        ("PMCID", r.ids.pmcid),
        ("URL", r.url),
        ("abstract", r.abstract),
        ("language", r.language),
    ):
        if value:
            item[key] = value
    return item


def write_csljson(works: Iterable[StoredWork], out: TextIO) -> int:
    items = [csl_item(w) for w in works]
    out.write(json.dumps(items, ensure_ascii=False, indent=1) + "\n")
    return len(items)


EXPORTERS: dict[str, Callable[[Iterable[StoredWork], TextIO], int]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "ris": write_ris,
    "bibtex": write_bibtex,
    "csljson": write_csljson,
}


def atom_feed(
    topic: str, works: Sequence[StoredWork], *, now: datetime, self_url: str | None = None
) -> bytes:
    """An Atom feed of a topic's works, newest first (feedgen)."""
    from feedgen.feed import FeedGenerator

    from harvester.digest import citation_line, format_authors, record_links

    feed = FeedGenerator()
    feed.id(f"tag:harvester,2026:topic:{topic}")
    feed.title(f"harvester: {topic}")
    feed.updated(now)
    feed.link(href=self_url or f"tag:harvester,2026:topic:{topic}", rel="self")
    feed.generator("harvester")
    for work in works:  # feedgen prepends: the last added is the first entry
        r = work.record
        entry = feed.add_entry()
        entry.id(f"tag:harvester,2026:work:{work.id}")
        entry.title(r.title or "(untitled)")
        links = record_links(r)
        if links:
            entry.link(href=links[0])
        entry.updated(work.first_seen or now)
        for author in r.authors[:20]:
            entry.author({"name": author.display})
        summary = " — ".join(p for p in (format_authors(r.authors), citation_line(r)) if p)
        if r.abstract:
            summary = f"{summary}\n\n{r.abstract}" if summary else r.abstract
        if summary:
            entry.summary(summary)
    data: bytes = feed.atom_str(pretty=True)
    return data
