"""The normalized record every source produces, and its JSON form (DESIGN.md "Record").

Records are frozen values: tuples, not lists; canonical identifiers; ``None`` for anything
missing, never an empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

ID_SCHEMES: tuple[str, ...] = ("doi", "pmid", "pmcid", "arxiv", "openalex", "s2")


@dataclass(frozen=True, slots=True)
class Identifiers:
    """Canonical identifiers: DOI lower case without URL prefix, PMID digits, PMCID ``PMC…``,
    arXiv id without version, OpenAlex ``W…``, Semantic Scholar paper id."""

    doi: str | None = None
    pmid: str | None = None
    pmcid: str | None = None
    arxiv: str | None = None
    openalex: str | None = None
    s2: str | None = None

    def items(self) -> tuple[tuple[str, str], ...]:
        """The present identifiers as ``(scheme, value)`` pairs, in schema order."""
        return tuple(
            (scheme, value) for scheme in ID_SCHEMES if (value := getattr(self, scheme)) is not None
        )

    def to_json(self) -> dict[str, str]:
        return dict(self.items())

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Identifiers:
        data = data or {}
        return cls(**{k: (str(data[k]) if data.get(k) else None) for k in ID_SCHEMES if k in data})

    def merged(self, other: Identifiers) -> Identifiers:
        """These identifiers, with the gaps filled from ``other``."""
        return Identifiers(**{s: getattr(self, s) or getattr(other, s) for s in ID_SCHEMES})


@dataclass(frozen=True, slots=True)
class Author:
    """A person (family/given/ORCID) or a collective author (``collective``)."""

    family: str | None = None
    given: str | None = None
    orcid: str | None = None
    collective: str | None = None

    @property
    def display(self) -> str:
        """ "Family GI" as in bibliographic listings, or the collective name."""
        if self.collective:
            return self.collective
        initials = "".join(part[0] for part in (self.given or "").replace("-", " ").split() if part)
        return " ".join(p for p in (self.family, initials) if p) or "?"

    def to_json(self) -> dict[str, str | None]:
        if self.collective is not None:
            return {"collective": self.collective}
        return {"family": self.family, "given": self.given, "orcid": self.orcid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Author:
        if data.get("collective"):
            return cls(collective=str(data["collective"]))
        return cls(
            family=data.get("family") or None,
            given=data.get("given") or None,
            orcid=data.get("orcid") or None,
        )


@dataclass(frozen=True, slots=True)
class Section:
    """One labelled part of a structured abstract (``label`` is None for unlabelled text)."""

    label: str | None
    text: str

    def to_json(self) -> dict[str, str | None]:
        return {"label": self.label, "text": self.text}


@dataclass(frozen=True, slots=True)
class OtherAbstract:
    """An abstract in another language, kept apart from the main (usually English) one."""

    language: str | None
    text: str
    sections: tuple[Section, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "text": self.text,
            "sections": [s.to_json() for s in self.sections],
        }


def join_sections(sections: tuple[Section, ...] | list[Section]) -> str | None:
    """The abstract as text: ``LABEL: text`` paragraphs separated by a blank line."""
    parts = [f"{s.label}: {s.text}" if s.label else s.text for s in sections if s.text]
    return "\n\n".join(parts) or None


@dataclass(frozen=True, slots=True)
class Record:
    """One bibliographic record as one source describes it.

    ``published`` is an ISO 8601 partial date (``2020``, ``2020-06`` or ``2020-06-15``).
    ``keywords`` holds author keywords and MeSH headings, used for matching a topic locally.
    ``published_doi`` is, for a preprint, the DOI of its journal version when the server knows it.
    """

    source: str
    source_id: str | None = None
    ids: Identifiers = field(default_factory=Identifiers)
    title: str | None = None
    abstract: str | None = None
    abstract_sections: tuple[Section, ...] = ()
    other_abstracts: tuple[OtherAbstract, ...] = ()
    authors: tuple[Author, ...] = ()
    venue: str | None = None
    year: int | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    published: str | None = None
    type: str | None = None
    language: str | None = None
    url: str | None = None
    keywords: tuple[str, ...] = ()
    published_doi: str | None = None

    def with_changes(self, **changes: Any) -> Record:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md Record object (plus the extension fields, after the contract's)."""
        return {
            "source": self.source,
            "ids": self.ids.to_json(),
            "title": self.title,
            "abstract": self.abstract,
            "abstract_sections": [s.to_json() for s in self.abstract_sections],
            "authors": [a.to_json() for a in self.authors],
            "venue": self.venue,
            "year": self.year,
            "volume": self.volume,
            "issue": self.issue,
            "pages": self.pages,
            "published": self.published,
            "type": self.type,
            "language": self.language,
            "url": self.url,
            "source_id": self.source_id,
            "other_abstracts": [a.to_json() for a in self.other_abstracts],
            "keywords": list(self.keywords),
            "published_doi": self.published_doi,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        """Read back what :meth:`to_json` wrote (unknown keys are ignored)."""

        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value in (None, "") else str(value)

        def sections(items: Any) -> tuple[Section, ...]:
            return tuple(
                Section(label=s.get("label") or None, text=str(s.get("text") or ""))
                for s in (items or ())
            )

        year = data.get("year")
        return cls(
            source=str(data.get("source") or "unknown"),
            source_id=text("source_id"),
            ids=Identifiers.from_json(data.get("ids")),
            title=text("title"),
            abstract=text("abstract"),
            abstract_sections=sections(data.get("abstract_sections")),
            other_abstracts=tuple(
                OtherAbstract(
                    language=a.get("language"),
                    text=str(a.get("text") or ""),
                    sections=sections(a.get("sections")),
                )
                for a in (data.get("other_abstracts") or ())
            ),
            authors=tuple(Author.from_json(a) for a in (data.get("authors") or ())),
            venue=text("venue"),
            year=int(year) if year not in (None, "") else None,
            volume=text("volume"),
            issue=text("issue"),
            pages=text("pages"),
            published=text("published"),
            type=text("type"),
            language=text("language"),
            url=text("url"),
            keywords=tuple(str(k) for k in (data.get("keywords") or ())),
            published_doi=text("published_doi"),
        )


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Record))


@dataclass(frozen=True, slots=True)
class StoredWork:
    """A work as stored: its merged record, the sources it came from, and (for a topic) its hit."""

    id: int
    record: Record
    sources: tuple[str, ...]
    topic: str | None = None
    first_seen: datetime | None = None
    backfill: bool = False
