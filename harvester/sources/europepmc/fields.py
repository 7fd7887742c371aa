"""The field readers of a Europe PMC result: authors (the structured list, else the
``authorString`` in Vancouver style) and the typed readers, which name the field of every
wrong shape (pure).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harvester.records import Author
from harvester.sources.envelope import BadItem, item_list, item_object, item_text
from harvester.text.fields import (
    split_name,
)
from harvester.text.fold import collapse_whitespace
from harvester.text.identifiers import (
    normalize_orcid,
)
from harvester.text.markup import markup_to_text


def _authors(result: Mapping[str, Any]) -> tuple[Author, ...]:
    author_list = item_object(result, "authorList")
    if author_list is None:
        return _authors_from_string(item_text(result, "authorString"))
    authors: list[Author] = []
    for number, author in enumerate(item_list(author_list, "author", "authorList.author"), 1):
        if not isinstance(author, Mapping):
            raise BadItem(f"authorList.author #{number} is a {type(author).__name__}")
        collective = _title_text(author, "collectiveName")
        if collective:
            authors.append(Author(collective=collective))
            continue
        family = _title_text(author, "lastName")
        given = _title_text(author, "firstName") or _title_text(author, "initials")
        if family is None:
            family, given = split_name(_title_text(author, "fullName"))
        if family is None and given is None:
            continue
        orcid = None
        author_id = item_object(author, "authorId")
        if author_id is not None and str(author_id.get("type", "")).upper() == "ORCID":
            orcid = normalize_orcid(item_text(author_id, "value"))
        authors.append(Author(family=family, given=given, orcid=orcid))
    return tuple(authors)


def _authors_from_string(text: str | None) -> tuple[Author, ...]:
    # lite results: "Schoenfeld JD, Haas-Kogan DA, O'Neill AF." (Vancouver style, as MEDLINE
    # writes it: the family name, then the initials run together), groups among them.
    if not text:
        return ()
    authors = []
    for name in text.rstrip(".").split(","):
        author = vancouver_author(name)
        if author is not None:
            authors.append(author)
    return tuple(authors)


# Words that make a name in an author string a group, not a person (MEDLINE's collective
# names: "TUBA-WISP II consortium", "Genitourinary Oncology Committee of Chinese Anti-cancer
# Association", "Editorial Office", "… Working Group …").
_GROUP_WORDS = frozenset(
    {
        "academy", "alliance", "association", "board", "centre", "center", "collaboration",
        "collaborative", "collaborators", "committee", "consortium", "council", "department",
        "editorial", "federation", "foundation", "group", "initiative", "institute",
        "investigators", "network", "office", "organisation", "organization", "panel",
        "program", "programme", "project", "society", "study", "team", "trialists",
        "university", "writing",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+")
_GENERATIONS = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "2nd", "3rd"})


def vancouver_author(name: str) -> Author | None:
    """One name of a Vancouver-style author string: ``"de Miranda NFCC"`` -> family
    ``de Miranda``, given ``NFCC``; ``"Rodríguez-Perea Á"``, ``"Şen Ş"`` alike (initials are
    any upper-case letters, however many); a group (``"… consortium"``, ``"Editorial
    Office"``) is a collective author; None for an empty name or "et al"."""
    text = collapse_whitespace(name)
    if text is None or text.lower().rstrip(".") == "et al":
        return None
    words = text.split()
    while len(words) > 2 and words[-1].lower() in _GENERATIONS:
        words.pop()  # "Smith JA Jr": Record has no field for the suffix
    initials = words[-1].strip("-.")
    person = len(words) >= 2 and bool(initials) and all(c.isupper() or c in "-." for c in initials)
    # A one-word family name before initials is a person even if it is a group word
    # ("Board A"); a group word anywhere else makes a group ("Writing Group BMJ").
    if not (person and len(words) == 2) and any(
        w.lower() in _GROUP_WORDS for w in _WORD.findall(text)
    ):
        return Author(collective=text)
    if person:
        return Author(family=" ".join(words[:-1]), given=initials)
    if len(words) >= 4:  # four or more words without initials: a name of a body, not a person
        return Author(collective=text)
    family, given = split_name(text)
    if family is None and given is None:
        return None
    return Author(family=family, given=given)


# --- typed readers: every wrong shape names its field ----------------------------------------


def _title_text(data: Mapping[str, Any] | None, key: str) -> str | None:
    text = item_text(data, key)
    return markup_to_text(text) if text else None
