"""What a digest says about an update of a study (pure values, no I/O).

A work's updates become badges beside the study wherever it appears (digests, Slack, the
feed, exports) and, for a study a subscription was sent before, an entry in the digest's
"Updates to studies you were sent" section: the study as sent, what happened, the notice
linked, the date and who says so. Corrections and errata form a lower tier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harvester.records import Identifiers, Record, Update
from harvester.registry import SOURCE_LABELS

SECTION_TITLE = "Updates to studies you were sent"
LOWER_TIER: tuple[str, ...] = ("correction", "erratum")
# Update.kind -> what the reader is told happened (and the badge beside the study).
WHAT: Mapping[str, str] = {
    "retraction": "Retracted",
    "withdrawal": "Withdrawn",
    "expression_of_concern": "Expression of concern",
    "reinstatement": "Reinstated",
    "correction": "Corrected",
    "erratum": "Erratum published",
}
BADGES: Mapping[str, str] = {
    "retraction": "retracted",
    "withdrawal": "withdrawn",
    "expression_of_concern": "expression of concern",
    "reinstatement": "reinstated",
    "correction": "corrected",
    "erratum": "erratum",
}
# who says so, as a reader knows them
ASSERTED_BY: Mapping[str, str] = {
    "retraction-watch": "Retraction Watch",
    "publisher": "the publisher",
    "pubmed": "PubMed",
    "europepmc": "Europe PMC",
    "openalex": "OpenAlex",
}


def notice_link(ids: Identifiers) -> str | None:
    """The notice's page: its DOI, else its PubMed record."""
    if ids.doi:
        return f"https://doi.org/{ids.doi}"
    if ids.pmid:
        return f"https://pubmed.ncbi.nlm.nih.gov/{ids.pmid}/"
    return None


def said_by(update: Update) -> str:
    """ "Retraction Watch (via Crossref)", "PubMed", "the publisher (via Crossref)"."""
    who = ASSERTED_BY.get(update.asserted_by or "", update.asserted_by or "")
    where = SOURCE_LABELS.get(update.source or "", update.source or "")
    if not who or who == where:
        return where or who or "?"
    return f"{who} (via {where})" if where else who


def badges_of(record: Record) -> tuple[str, ...]:
    """The badges a study's updates give it, gravest first (a reinstatement after a
    retraction shows both), each once; a notice itself gets none."""
    kinds = dict.fromkeys(u.kind for u in record.updates if u.role == "target")
    return tuple(BADGES[k] for k in BADGES if k in kinds)


def notice_lines(record: Record) -> tuple[str, ...]:
    """One line per kind of update of a study: "Retracted 2020-06-05: https://doi.org/… —
    Retraction Watch (via Crossref), the publisher (via Crossref)"."""
    lines = []
    for kind in WHAT:
        ups = [u for u in record.updates if u.role == "target" and u.kind == kind]
        if ups:
            lines.append(describe(kind, ups))
    return tuple(lines)


def describe(kind: str, updates: Iterable[Update]) -> str:
    ups = list(updates)
    dates = sorted(u.date for u in ups if u.date)
    links = list(dict.fromkeys(link for u in ups if (link := notice_link(u.notice))))
    who = ", ".join(dict.fromkeys(said_by(u) for u in ups))
    head = WHAT.get(kind, kind) + (f" {dates[0]}" if dates else "")
    return f"{head}: {' '.join(links) or 'no notice named'} ({who})"


@dataclass(frozen=True, slots=True)
class UpdateNote:
    """One entry of a digest's updates section: a study sent before and what happened."""

    work_id: int
    record: Record  # the study, as stored now (its title as it was sent)
    kind: str
    updates: tuple[Update, ...]

    @property
    def authors(self) -> str:
        names = [a.display for a in self.record.authors[:3]]
        return ", ".join(names + (["et al."] if len(self.record.authors) > 3 else []))

    @property
    def links(self) -> tuple[str, ...]:
        """The study's own page: its DOI, else its PubMed record, else its URL."""
        link = notice_link(self.record.ids) or self.record.url
        return (link,) if link and link.startswith(("https://", "http://")) else ()

    @property
    def lower_tier(self) -> bool:
        return self.kind in LOWER_TIER

    @property
    def what(self) -> str:
        return WHAT.get(self.kind, self.kind)

    @property
    def date(self) -> str | None:
        dates = sorted(u.date for u in self.updates if u.date)
        return dates[0] if dates else None

    @property
    def notices(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(link for u in self.updates if (link := notice_link(u.notice))))

    @property
    def said_by(self) -> str:
        return ", ".join(dict.fromkeys(said_by(u) for u in self.updates))

    @property
    def line(self) -> str:
        """The whole entry on one line (Slack, the short message)."""
        return describe(self.kind, self.updates)


def ordered(notes: Iterable[UpdateNote]) -> tuple[UpdateNote, ...]:
    """The graver kinds first (corrections and errata last), each kind in the order taken."""
    rank = {kind: n for n, kind in enumerate(WHAT)}
    return tuple(sorted(notes, key=lambda n: rank.get(n.kind, len(rank))))


def updates_subject(notes: tuple[UpdateNote, ...], studies: int, waiting: str, topics: str) -> str:
    """ "harvester: Retracted: <title>" for one alert alone, else "harvester: 2 updates to
    studies you were sent, 3 new studies — topic"."""
    if len(notes) == 1 and studies == 0:
        title = notes[0].record.title or "(untitled)"
        return (
            f"harvester: {notes[0].what}: {title[:117].rstrip()}{'…' if len(title) > 117 else ''}"
        )
    count = f"{len(notes)} update{'s' if len(notes) != 1 else ''} to studies you were sent"
    new = f", {studies} new {'study' if studies == 1 else 'studies'}{waiting}" if studies else ""
    return f"harvester: {count}{new} — {topics}"


def update_note(record: Record) -> str | None:
    """The study's updates as one note (RIS N1, BibTeX note, CSL note): "Retracted
    2020-05-22: https://doi.org/… (…); Corrected …"."""
    return "; ".join(notice_lines(record)) or None


# CSL's ``status`` (https://docs.citationstyles.org/en/stable/specification.html, "status":
# "e.g. forthcoming, in press, advance online publication, retracted"), gravest first
CSL_STATUS: Mapping[str, str] = {
    "retraction": "retracted",
    "withdrawal": "withdrawn",
    "expression_of_concern": "expression of concern",
}


def csl_status(record: Record) -> str | None:
    kinds = {u.kind for u in record.updates if u.role == "target"}
    return next((status for kind, status in CSL_STATUS.items() if kind in kinds), None)
