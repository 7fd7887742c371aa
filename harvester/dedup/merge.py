"""Pure: one record for a work, from the records of its sources (the merge policy's field
preferences)."""

from __future__ import annotations

from collections.abc import Sequence

from harvester.dedup.features import is_preprint
from harvester.records import Identifiers, Record
from harvester.registry import SOURCE_PREFERENCE  # the registry: journals, aggregators, preprints

# the fields whose first present value, in source preference order, is the work's
_FIRST_PRESENT = (
    "title",
    "venue",
    "year",
    "volume",
    "issue",
    "pages",
    "published",
    "type",
    "language",
    "url",
    "published_doi",
)


def _rank(record: Record) -> tuple[bool, int]:
    try:
        rank = SOURCE_PREFERENCE.index(record.source)
    except ValueError:
        rank = len(SOURCE_PREFERENCE)
    return is_preprint(record), rank


def merge_records(records: Sequence[Record]) -> Record:
    """One record for a work: the best value of each field among its source records.

    The complete abstract (the longest, with its sections), the fullest author list, every
    identifier (the publisher's DOI before a preprint server's), and for the other fields
    (venue, volume, issue, pages…) the first present value in source preference order, journal
    records before preprints.
    """
    if not records:
        raise ValueError("merge_records needs at least one record")
    ordered = sorted(records, key=_rank)
    first = ordered[0]

    def pick(name: str) -> object:
        for r in ordered:
            value = getattr(r, name)
            if value not in (None, (), ""):
                return value
        return getattr(first, name)

    ids = Identifiers()
    for r in ordered:
        ids = ids.merged(r.ids)
    with_abstract = [r for r in ordered if r.abstract]
    abstract_from = (
        max(with_abstract, key=lambda r: len(r.abstract or "")) if with_abstract else first
    )
    authors_from = max(ordered, key=lambda r: len(r.authors))
    keywords = tuple(dict.fromkeys(k for r in ordered for k in r.keywords))
    others = tuple(dict.fromkeys(a for r in ordered for a in r.other_abstracts))
    return first.with_changes(
        ids=ids,
        abstract=abstract_from.abstract,
        abstract_sections=abstract_from.abstract_sections,
        other_abstracts=others,
        authors=authors_from.authors,
        keywords=keywords,
        **{name: pick(name) for name in _FIRST_PRESENT},
    )
