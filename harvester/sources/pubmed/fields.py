"""The field readers of a PubMed article: identifiers, titles, abstracts, authors, dates,
pages, publication types and keywords (pure). Element names as in
:mod:`harvester.sources.pubmed.records`.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from lxml import etree

from harvester.records import Author, Identifiers, OtherAbstract, Section, join_sections
from harvester.text.fields import language_code, normalize_pages, parse_medline_date, partial_date
from harvester.text.fold import collapse_text, collapse_whitespace
from harvester.text.identifiers import (
    normalize_doi,
    normalize_orcid,
    normalize_pmcid,
    normalize_pmid,
)
from harvester.text.markup import markup_to_text, subscript, superscript

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element


# PublicationType -> Record.type, first match wins; everything else is a journal article.
# A "Retraction Notice" is the notice itself, while "Retracted Publication" marks the
# retracted article, which stays a journal article.
# https://www.nlm.nih.gov/mesh/pubtypes.html
_TYPES: tuple[tuple[str, str], ...] = (
    ("Retraction Notice", "retraction"),
    ("Published Erratum", "erratum"),
    ("Preprint", "preprint"),
    ("Editorial", "editorial"),
    ("Letter", "letter"),
    ("Systematic Review", "review"),
    ("Scoping Review", "review"),
    ("Review", "review"),
)
_DEFAULT_TYPE = "journal-article"


class BadArticle(ValueError):
    """One article that cannot become a Record; its page is still used."""


# --- fields ----------------------------------------------------------------------------------


def required_child(parent: _Element, tag: str) -> _Element:
    child = parent.find(tag)
    if child is None:
        raise BadArticle(f"no <{tag}> in <{parent.tag}>")
    return child


def find_pmid(element: _Element) -> str | None:
    text = element.findtext("MedlineCitation/PMID") or element.findtext("BookDocument/PMID")
    return str(text) if text is not None else None


def pmid_or_none(text: str | None) -> str | None:
    return normalize_pmid(text) or collapse_whitespace(text)


def read_pmid(parent: _Element) -> str:
    return checked_pmid(parent.findtext("PMID"))


def checked_pmid(raw: str | None) -> str:
    pmid = normalize_pmid(raw)
    if pmid is None:
        raise BadArticle(f"missing or invalid PMID {raw!r}")
    return pmid


# The PubMed DTD's inline styling elements (%text.styles: b, i, sup, sub, u). markup_to_text
# joins their text to their neighbours' (H<sub>2</sub>O -> H2O), so content made of text and
# these elements only reads as its text nodes joined: no HTML parser needed (a speed-up).
_STYLES = frozenset({"b", "i", "sup", "sub", "u"})


def element_text(element: _Element | None) -> str | None:
    """Text of an element whose content may hold markup (<i>, <sub>, MathML)."""
    if element is None:
        return None
    if len(element) == 0:  # most elements are plain text
        text = element.text
        if text is None:
            return None
        # collapse_whitespace: split and join, inlined for short text (names, keywords)
        return (" ".join(text.split()) or None) if len(text) < 48 else collapse_text(text)
    scripts = False
    for node in element.iterdescendants():
        tag = node.tag
        if tag not in _STYLES:
            break
        if tag == "sup" or tag == "sub":
            scripts = True
    else:  # styles only: the text as it is, super- and subscripts written as such
        return collapse_text(_scripted_text(element) if scripts else "".join(element.itertext()))
    # The content re-serialized (text escaped again) so that markup_to_text sees markup,
    # and a literal "<" in the text stays text.
    inner = html.escape(element.text or "", quote=False) + "".join(
        etree.tostring(child, encoding="unicode", with_tail=True) for child in element
    )
    return markup_to_text(inner)


def _scripted_text(element: _Element) -> str:
    """The text of an element holding only style elements, <sup> and <sub> written with
    superscript and subscript characters as markup_to_text writes them ("m⁶A", "H₂S")."""
    parts = [element.text or ""]
    for child in element:
        inner = _scripted_text(child)
        if child.tag == "sup":
            inner = superscript(inner)
        elif child.tag == "sub":
            inner = subscript(inner)
        parts += (inner, child.tail or "")
    return "".join(parts)


def read_ids(pmid: str, id_list: _Element | None, elocations: Iterable[_Element]) -> Identifiers:
    # Only the article's own ArticleIdList: those inside ReferenceList name the cited works.
    # The first ArticleId of each IdType counts.
    doi_text = pmc_text = None
    if id_list is not None:
        for node in id_list.iterchildren("ArticleId"):
            kind = node.get("IdType")
            if kind == "doi":
                if doi_text is None:
                    doi_text = node.text or ""
            elif kind == "pmc" and pmc_text is None:
                pmc_text = node.text or ""
    doi = normalize_doi(doi_text)
    if doi is None:
        # ValidYN="N" marks an ELocationID the publisher supplied wrongly.
        doi = next(
            (
                d
                for node in elocations
                if node.get("EIdType") == "doi" and node.get("ValidYN") != "N"
                if (d := normalize_doi(node.text))
            ),
            None,
        )
    return Identifiers(doi=doi, pmid=pmid, pmcid=normalize_pmcid(pmc_text))


def read_title(title: _Element | None, vernacular: _Element | None) -> str | None:
    text = element_text(title)
    # NLM: "[Not Available]." stands in for a missing title.
    if text is None or text.rstrip(".") == "[Not Available]":
        return element_text(vernacular)
    return _unbracket(text)


def _unbracket(title: str) -> str:
    """NLM encloses English translations of non-English titles in [ ]; the brackets say
    "translated", which Record.language already tells, so they are dropped. The
    closing period that NLM puts on every title is kept, as for all other titles."""
    core, end = (title[:-1], ".") if title.endswith(".") else (title, "")
    if not (core.startswith("[") and core.endswith("]")):
        return title
    depth = 0
    for position, char in enumerate(core):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0 and position < len(core) - 1:
            return title  # "[A] and [B]": the first bracket closes before the end
    return f"{core[1:-1].strip()}{end}"


def read_sections(abstract: _Element | None) -> tuple[Section, ...]:
    if abstract is None:
        return ()
    sections: list[Section] = []
    for node in abstract.iterchildren("AbstractText"):
        text = element_text(node)
        if text is None:
            continue
        # Label is the heading as printed; NlmCategory is NLM's mapping of it to one of
        # BACKGROUND/OBJECTIVE/METHODS/RESULTS/CONCLUSIONS (UNASSIGNED when it has none).
        label = node.get("Label")
        if label is not None:
            label = " ".join(label.split()) or None  # collapse_whitespace, inlined
        if label is None:
            category = node.get("NlmCategory")
            label = category if category not in (None, "", "UNASSIGNED") else None
        sections.append(Section(label=label, text=text))
    return tuple(sections)


def read_other_abstracts(nodes: Iterable[_Element]) -> tuple[OtherAbstract, ...]:
    # Abstracts in other languages and plain-language summaries: never part of ``abstract``.
    found: list[OtherAbstract] = []
    for node in nodes:
        sections = read_sections(node)
        text = join_sections(sections)
        if text is not None:
            language = language_code(node.get("Language"))
            found.append(OtherAbstract(language=language, text=text, sections=sections))
    return tuple(found)


def read_authors(author_list: _Element | None) -> tuple[Author, ...]:
    if author_list is None:
        return ()
    authors: list[Author] = []
    for node in author_list.iterchildren("Author"):
        # NLM: ValidYN="N" marks a name the publisher got wrong, kept only for searching.
        if node.get("ValidYN") == "N":
            continue
        # One pass over the children (the first of each name part, as find() would pick), a
        # speed-up over one find() per part: authors are the most numerous elements of a page.
        collective = last = fore = initials = None
        orcid: str | None = None
        for child in node:
            tag = child.tag
            if tag == "LastName":
                if last is None:
                    last = child
            elif tag == "ForeName":
                if fore is None:
                    fore = child
            elif tag == "Initials":
                if initials is None:
                    initials = child
            elif tag == "Identifier":
                if orcid is None and child.get("Source") == "ORCID":
                    orcid = normalize_orcid(child.text)
            elif tag == "CollectiveName" and collective is None:
                collective = child
        if collective is not None and (name := element_text(collective)) is not None:
            authors.append(Author(collective=name))
            continue
        family = element_text(last)
        given = element_text(fore) or element_text(initials)
        if family is not None or given is not None:
            authors.append(Author(family, given, orcid))  # positional: quicker than keywords
    return tuple(authors)


def read_pub_date(date: _Element | None) -> tuple[int | None, str | None]:
    if date is None:
        return None, None
    parts = _first_texts(date)
    medline_date = parts.get("MedlineDate")
    if medline_date:
        return _medline_date(medline_date)
    return _date(parts.get("Year"), parts.get("Month") or parts.get("Season"), parts.get("Day"))


def _first_texts(parent: _Element) -> dict[str, str]:
    """Each child tag's first text ("" when it has none), as ``findtext`` reads it, in one
    pass over the children (a date, a pagination)."""
    texts: dict[str, str] = {}
    for child in parent:
        if child.tag not in texts:
            texts[child.tag] = child.text or ""
    return texts


# Dates repeat across a page (one issue, one month): each distinct one is computed once.
@functools.lru_cache(maxsize=4096)
def _date(year: str | None, month: str | None, day: str | None) -> tuple[int | None, str | None]:
    published = partial_date(year, month, day)
    return (int(published[:4]), published) if published else (None, None)


@functools.lru_cache(maxsize=1024)
def _medline_date(text: str) -> tuple[int | None, str | None]:
    return parse_medline_date(text)


def first_date(dates: Iterable[_Element]) -> tuple[int | None, str | None]:
    for date in dates:
        year, published = read_pub_date(date)
        if published is not None:
            return year, published
    return None, None


def read_pages(pagination: _Element | None) -> str | None:
    if pagination is None:
        return None
    parts = _first_texts(pagination)
    return normalize_pages(parts.get("StartPage"), parts.get("EndPage"), parts.get("MedlinePgn"))


def publication_type_names(type_lists: Iterable[_Element]) -> set[str | None]:
    """The PublicationType names in these PublicationTypeLists, whitespace collapsed."""
    return {
        collapse_whitespace(node.text)
        for types in type_lists
        for node in types.iterchildren("PublicationType")
    }


def record_type(names: Collection[str | None]) -> str:
    return next((kind for name, kind in _TYPES if name in names), _DEFAULT_TYPE)


# The text nodes and other children of each list's DescriptorName/Keyword elements, in
# document order, from one XPath call per list: text comes back as str with no Python element
# per keyword. Any other child (markup, comment) sends the list to element_text, element by element.
_DESCRIPTOR_TEXT = etree.XPath("MeshHeading/DescriptorName/node()", smart_strings=False)
_KEYWORD_TEXT = etree.XPath("Keyword/node()", smart_strings=False)
_DESCRIPTORS = etree.XPath("MeshHeading/DescriptorName")


def read_keywords(
    headings: Iterable[_Element], keyword_lists: Iterable[_Element]
) -> tuple[str, ...]:
    # MeSH descriptors and author keywords, for matching a topic locally:
    # MeshHeadingList/MeshHeading/DescriptorName, then KeywordList/Keyword.
    found: dict[str, None] = {}
    for heading_list in headings:
        if not _plain_keywords(_DESCRIPTOR_TEXT(heading_list), found):
            for node in _DESCRIPTORS(heading_list):
                if (keyword := element_text(node)) is not None:
                    found[keyword] = None
    for keyword_list in keyword_lists:
        if not _plain_keywords(_KEYWORD_TEXT(keyword_list), found):
            for node in keyword_list.iterchildren("Keyword"):
                if (keyword := element_text(node)) is not None:
                    found[keyword] = None
    return tuple(found)


def _plain_keywords(nodes: list[Any], found: dict[str, None]) -> bool:
    """Adds the keywords of elements holding text only, as element_text reads them; False, adding
    nothing, when an element holds anything else. Such an element has at most one text node
    (the parser joins adjacent text), its ``.text``; one without text gives no node, as element_text
    gives None."""
    for node in nodes:
        if type(node) is not str:
            return False
    for text in nodes:
        keyword = (" ".join(text.split()) or None) if len(text) < 48 else collapse_text(text)
        if keyword is not None:
            found[keyword] = None
    return True
