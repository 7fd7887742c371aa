"""Retraction, correction and concern notices as each source states them, read (pure).

::

    Crossref   update-to (this record is the notice) / updated-by (this record is the work)
    PubMed     CommentsCorrections RetractionIn/Of, ErratumIn/For, ExpressionOfConcernIn/For,
               CorrectedandRepublishedIn/From; PublicationType "Retracted Publication"
    Europe PMC commentCorrectionList "Retraction in/of", "Erratum in/for", …; pubTypeList
    OpenAlex   is_retracted (a bare flag: no notice, no date)

Each parser calls one function here; what comes back is the record's ``updates``. The
record's own side of a notice is left empty (it is the record's ``ids``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from harvester.records import Identifiers, Update
from harvester.text.identifiers import normalize_doi, normalize_pmid

if TYPE_CHECKING:
    from lxml.etree import _Element

# Crossref update types (https://www.crossref.org/documentation/crossmark/participation-
# reports/ "update types"; the Retraction Watch entries use the same names) -> Update.kind.
# Versions and editions are not notices about the work's soundness.
_CROSSREF_KINDS: Mapping[str, str] = {
    "retraction": "retraction",
    "partial_retraction": "correction",
    "withdrawal": "withdrawal",
    "removal": "withdrawal",
    "expression_of_concern": "expression_of_concern",
    "reinstatement": "reinstatement",
    "correction": "correction",
    "corrigendum": "correction",
    "addendum": "correction",
    "clarification": "correction",
    "erratum": "erratum",
}

# PubMed CommentsCorrections RefType -> (kind, role of the record that carries it)
# (https://www.nlm.nih.gov/bsd/licensee/elements_descriptions.html#commentscorrections).
# UpdateIn/UpdateOf link versions (a preprint and its article), not notices.
_PUBMED_REFS: Mapping[str, tuple[str, str]] = {
    "RetractionIn": ("retraction", "target"),
    "RetractionOf": ("retraction", "notice"),
    "PartialRetractionIn": ("correction", "target"),
    "PartialRetractionOf": ("correction", "notice"),
    "ErratumIn": ("erratum", "target"),
    "ErratumFor": ("erratum", "notice"),
    "ExpressionOfConcernIn": ("expression_of_concern", "target"),
    "ExpressionOfConcernFor": ("expression_of_concern", "notice"),
    "CorrectedandRepublishedIn": ("correction", "target"),
    "CorrectedandRepublishedFrom": ("correction", "notice"),
    "RetractionAndReinstatementIn": ("reinstatement", "target"),
    "RetractionAndReinstatementOf": ("reinstatement", "notice"),
}
# Europe PMC names the same links in words ("Retraction in", "Erratum for").
_EUROPEPMC_REFS: Mapping[str, tuple[str, str]] = {
    "retraction in": ("retraction", "target"),
    "retraction of": ("retraction", "notice"),
    "partial retraction in": ("correction", "target"),
    "partial retraction of": ("correction", "notice"),
    "erratum in": ("erratum", "target"),
    "erratum for": ("erratum", "notice"),
    "expression of concern in": ("expression_of_concern", "target"),
    "expression of concern for": ("expression_of_concern", "notice"),
    "corrected and republished in": ("correction", "target"),
    "corrected and republished from": ("correction", "notice"),
}
# Publication types that say what a record is, lower case: MeSH renamed "Retraction of
# Publication" to "Retraction Notice" (2025); a publisher-supplied record may shout it.
_RETRACTED = "retracted publication"
_DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+?)(?=[.,;]?(?:\s|$))")
# "WITHDRAWN: …" marks an article a publisher withdrew (Elsevier's article withdrawal).
_WITHDRAWN_TITLE = re.compile(r"^\s*withdrawn\b", re.IGNORECASE)


def _unique(updates: Iterable[Update]) -> tuple[Update, ...]:
    return tuple(dict.fromkeys(updates))


# --- Crossref -----------------------------------------------------------------------------


def crossref_updates(item: Mapping[str, Any], own_doi: str | None) -> tuple[Update, ...]:
    """The ``update-to`` and ``updated-by`` entries of a Crossref work.

    Some records mirror one link in both lists: a retracted work whose publisher also lists
    its notices under ``update-to``, or a notice that the publisher lists as ``updated-by``
    its own target. For a DOI in both, the side that Retraction Watch states wins; where it
    states neither, the record's title decides whether it is a notice. A work retracted in
    place (its own DOI in both lists) is one update of itself."""
    to = list(_crossref_entries(item.get("update-to"), "notice"))
    by = list(_crossref_entries(item.get("updated-by"), "target"))
    mirrored = {doi for doi, _ in to} & {doi for doi, _ in by} - {own_doi}
    if mirrored:
        notice = _crossref_is_notice(item, to, by, mirrored)
        if notice:
            by = [(doi, u) for doi, u in by if doi not in mirrored]
        else:
            to = [(doi, u) for doi, u in to if doi not in mirrored]
    found: list[Update] = []
    for doi, update in [*by, *to]:
        if doi == own_doi:  # retracted in place: the record is the notice and its target
            update = Update(
                kind=update.kind,
                role="target",
                notice=Identifiers(doi=doi),
                date=update.date,
                asserted_by=update.asserted_by,
            )
        found.append(update)
    return _unique(found)


def _crossref_entries(entries: Any, role: str) -> Iterable[tuple[str, Update]]:
    if not isinstance(entries, list):
        return
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kind = _CROSSREF_KINDS.get(str(entry.get("type") or "").strip().lower())
        doi = normalize_doi(entry.get("DOI")) if isinstance(entry.get("DOI"), str) else None
        if kind is None or doi is None:
            continue
        other = Identifiers(doi=doi)
        source = entry.get("source")
        yield (
            doi,
            Update(
                kind=kind,
                role=role,
                notice=other if role == "target" else Identifiers(),
                target=other if role == "notice" else Identifiers(),
                date=_crossref_date(entry.get("updated")),
                # entries from before Retraction Watch (2025) have no source: the publisher's
                asserted_by=source if isinstance(source, str) and source else "publisher",
            ),
        )


def _crossref_is_notice(
    item: Mapping[str, Any],
    to: list[tuple[str, Update]],
    by: list[tuple[str, Update]],
    mirrored: set[str],
) -> bool:
    def curated(entries: list[tuple[str, Update]]) -> bool:
        return any(d in mirrored and u.asserted_by == "retraction-watch" for d, u in entries)

    if curated(to) != curated(by):
        return curated(to)
    titles = item.get("title")
    title = titles[0] if isinstance(titles, list) and titles else titles
    return isinstance(title, str) and notice_title(title)


_NOTICE_TITLE = re.compile(
    r"^\s*(notice of retraction|retraction|erratum|errata|correction|corrigendum|"
    r"expression of concern|editorial expression of concern|withdrawal)\b",
    re.IGNORECASE,
)


def notice_title(title: str) -> bool:
    """Whether a title is a notice's ("Retraction—…", "Erratum: …"), not an article's
    ("RETRACTED: …" is the retracted article)."""
    return bool(_NOTICE_TITLE.match(title)) and not title.lower().startswith("retracted")


def _crossref_date(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    parts = value.get("date-parts")
    if not (isinstance(parts, list) and parts and isinstance(parts[0], list)):
        return None
    numbers = [p for p in parts[0][:3] if isinstance(p, int) and not isinstance(p, bool)]
    if not numbers or not 1000 <= numbers[0] <= 9999:
        return None
    return "-".join([f"{numbers[0]:04d}", *(f"{n:02d}" for n in numbers[1:])])


# --- PubMed -------------------------------------------------------------------------------


def pubmed_updates(
    comment_lists: Iterable[_Element], type_names: Iterable[str | None], published: str | None
) -> tuple[Update, ...]:
    """A MedlineCitation's CommentsCorrections links to notices (``comment_lists``, its
    CommentsCorrectionsList elements), and "Retracted Publication" among its PublicationType
    names (whitespace collapsed, as the record's type reads them) when no link names the
    notice. A notice's date is its own publication date."""
    found: list[Update] = []
    for refs in comment_lists:
        for ref in refs.iterchildren("CommentsCorrections"):
            link = _PUBMED_REFS.get(ref.get("RefType") or "")
            if link is None:
                continue
            kind, role = link
            pmid = normalize_pmid(_child_text(ref, "PMID"))
            doi = _doi_in(_child_text(ref, "RefSource"))
            other = Identifiers(doi=doi, pmid=pmid)
            if not other.items():
                continue
            found.append(_linked(kind, role, other, published, "pubmed"))
    retracted = any((name or "").lower() == _RETRACTED for name in type_names)
    if not found and not retracted:
        return ()  # most articles: nothing to flag or make unique
    return _with_flag(found, retracted, "pubmed")


def _child_text(element: _Element, tag: str) -> str | None:
    child = element.find(tag)
    return None if child is None else "".join(child.itertext())


def _doi_in(text: str | None) -> str | None:
    match = _DOI_IN_TEXT.search(text or "")
    return normalize_doi(match.group(1)) if match else None


def _linked(kind: str, role: str, other: Identifiers, published: str | None, by: str) -> Update:
    # the record's own publication date dates a notice; a link from the work carries none
    return Update(
        kind=kind,
        role=role,
        notice=other if role == "target" else Identifiers(),
        target=other if role == "notice" else Identifiers(),
        date=published if role == "notice" else None,
        asserted_by=by,
    )


def _with_flag(found: list[Update], retracted: bool, by: str) -> tuple[Update, ...]:
    if retracted and not any(u.role == "target" and u.kind == "retraction" for u in found):
        found.append(Update(kind="retraction", role="target", asserted_by=by))
    return _unique(found)


# --- Europe PMC ---------------------------------------------------------------------------


def europepmc_updates(result: Mapping[str, Any], published: str | None) -> tuple[Update, ...]:
    """A result's ``commentCorrectionList`` and the "Retracted Publication" type (JSON, or
    XML read into the same shape)."""
    found: list[Update] = []
    doi_text, title = result.get("doi"), result.get("title")
    own_doi = normalize_doi(doi_text) if isinstance(doi_text, str) else None
    title = title if isinstance(title, str) else None
    withdrawn = bool(title and _WITHDRAWN_TITLE.match(title))
    for ref in _listed(result, "commentCorrectionList", "commentCorrection"):
        if not isinstance(ref, Mapping):
            continue
        link = _EUROPEPMC_REFS.get(str(ref.get("type") or "").strip().lower())
        if link is None:
            continue
        kind, role = link
        if kind == "retraction" and withdrawn:
            kind = "withdrawal"
        ident = ref.get("id")
        pmid = (
            normalize_pmid(str(ident))
            if ref.get("source") == "MED" and isinstance(ident, str | int)
            else None
        )
        reference = ref.get("reference")
        doi = _doi_in(reference) if isinstance(reference, str) else None
        if doi is None and isinstance(reference, str):
            doi = normalize_doi(reference.strip())
        other = Identifiers(doi=doi, pmid=pmid)
        if not other.items():
            continue
        if doi is not None and doi == own_doi and pmid is None:
            # the work names itself as the notice (withdrawn in place)
            found.append(Update(kind=kind, role="target", notice=other, asserted_by="europepmc"))
            continue
        found.append(_linked(kind, role, other, published, "europepmc"))
    types = {str(t).lower() for t in _listed(result, "pubTypeList", "pubType")}
    flag_kind = "withdrawal" if withdrawn else "retraction"
    if _RETRACTED in types and not any(u.role == "target" for u in found):
        found.append(Update(kind=flag_kind, role="target", asserted_by="europepmc"))
    return _unique(found)


def _listed(result: Mapping[str, Any], outer: str, inner: str) -> Iterable[Any]:
    container = result.get(outer)
    values = container.get(inner) if isinstance(container, Mapping) else None
    if isinstance(values, list):
        yield from (v for v in values if isinstance(v, Mapping | str))


# --- OpenAlex -----------------------------------------------------------------------------


def openalex_updates(work: Mapping[str, Any]) -> tuple[Update, ...]:
    """OpenAlex's ``is_retracted``: a retraction with no notice and no date."""
    if work.get("is_retracted") is True:
        return (Update(kind="retraction", role="target", asserted_by="openalex"),)
    return ()
