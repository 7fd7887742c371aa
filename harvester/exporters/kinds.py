"""What every citation format asks of a work: its type in each format's terms."""

from __future__ import annotations

from harvester.records import StoredWork

# Record.type -> RIS TY, BibTeX entry type, CSL type
TYPES: dict[str, tuple[str, str, str]] = {
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
DEFAULT_TYPE = ("GEN", "misc", "article")


def type_of(work: StoredWork) -> tuple[str, str, str]:
    """(RIS TY, BibTeX entry type, CSL type) of a work's Record.type."""
    return TYPES.get(work.record.type or "", DEFAULT_TYPE)


__all__ = ["DEFAULT_TYPE", "TYPES", "type_of"]
