"""PubMed responses, read: esearch and efetch XML to ESearchResult and Records (pure).

::

    esearch.fcgi?db=pubmed&term=…&usehistory=y -> parse_esearch -> ESearchResult (ids, WebEnv)
    efetch.fcgi?db=pubmed&retmode=xml&…        -> parse_efetch  -> ParseResult (Records, Skipped)

Element names follow the PubMed DTD (https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd)
and NLM's element descriptions (https://www.nlm.nih.gov/bsd/licensee/elements_descriptions.html).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from harvester.errors import ParseError
from harvester.normalize import (
    collapse_whitespace,
    language_code,
    markup_to_text,
    normalize_doi,
    normalize_orcid,
    normalize_pages,
    normalize_pmcid,
    normalize_pmid,
    parse_medline_date,
    partial_date,
)
from harvester.records import Author, Identifiers, OtherAbstract, Record, Section, join_sections
from harvester.sources.base import ParseResult, Skipped

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element

SOURCE = "pubmed"
ARTICLE_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"

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


class _BadArticle(ValueError):
    """One article that cannot become a Record; its page is still used."""


# --- efetch ----------------------------------------------------------------------------------


def parse_efetch(body: bytes, *, url: str = "") -> ParseResult:
    """Records of an efetch ``PubmedArticleSet`` (``PubmedArticle`` and ``PubmedBookArticle``).

    Raises ParseError for a malformed or truncated body and for NCBI error bodies. An
    article that cannot be read, or a ``DeleteCitation`` entry, becomes a Skipped.
    """
    root = _read_xml(body, url)
    if root.tag != "PubmedArticleSet":
        raise ParseError(f"{_where(url)}: expected <PubmedArticleSet>, got <{root.tag}>")
    records: list[Record] = []
    skipped: list[Skipped] = []
    for element in root.iterchildren("*"):
        if element.tag == "DeleteCitation":
            # NLM: citations deleted from PubMed since they were distributed.
            skipped.extend(
                Skipped(source_id=_pmid_or_none(pmid.text), reason="deleted from PubMed")
                for pmid in element.iterchildren("PMID")
            )
            continue
        try:
            records.append(_record(element))
        except _BadArticle as error:
            skipped.append(Skipped(source_id=_pmid_or_none(_find_pmid(element)), reason=str(error)))
    return ParseResult(records=tuple(records), skipped=tuple(skipped))


def _record(element: _Element) -> Record:
    if element.tag == "PubmedArticle":
        return _journal_record(element)
    if element.tag == "PubmedBookArticle":
        return _book_record(element)
    raise _BadArticle(f"unexpected element <{element.tag}>")


def _journal_record(element: _Element) -> Record:
    citation = _required(element, "MedlineCitation")
    pmid = _pmid(citation)
    article = _required(citation, "Article")
    issue = article.find("Journal/JournalIssue")
    sections = _sections(article.find("Abstract"))
    year, published = _pub_date(issue.find("PubDate") if issue is not None else None)
    if published is None:
        year, published = _first_date(article.iterchildren("ArticleDate"))
    pagination = article.find("Pagination")
    return Record(
        source=SOURCE,
        source_id=pmid,
        ids=_ids(
            pmid,
            element.find("PubmedData/ArticleIdList"),
            article.iterchildren("ELocationID"),
        ),
        title=_title(article.find("ArticleTitle"), article.find("VernacularTitle")),
        abstract=join_sections(sections),
        abstract_sections=sections,
        other_abstracts=_other_abstracts(citation.iterchildren("OtherAbstract")),
        authors=_authors(article.find("AuthorList")),
        venue=_text(article.find("Journal/Title")),
        year=year,
        volume=_text(issue.find("Volume")) if issue is not None else None,
        issue=_text(issue.find("Issue")) if issue is not None else None,
        pages=_pages(pagination),
        published=published,
        type=_record_type(article.iterfind("PublicationTypeList/PublicationType")),
        language=language_code(article.findtext("Language")),
        url=ARTICLE_URL.format(pmid=pmid),
        keywords=_keywords(citation),
    )


def _book_record(element: _Element) -> Record:
    # A chapter (ArticleTitle present) has the book as its venue; a whole book has none.
    document = _required(element, "BookDocument")
    pmid = _pmid(document)
    book = document.find("Book")
    book_title = _text(book.find("BookTitle")) if book is not None else None
    chapter_title = _title(document.find("ArticleTitle"), document.find("VernacularTitle"))
    sections = _sections(document.find("Abstract"))
    year, published = _pub_date(book.find("PubDate") if book is not None else None)
    author_lists = [*document.iterchildren("AuthorList")]
    if book is not None:
        author_lists += book.iterchildren("AuthorList")
    authors: tuple[Author, ...] = ()
    for author_list in author_lists:  # the chapter's authors, else the book's (not its editors)
        if author_list.get("Type", "authors") == "authors" and (authors := _authors(author_list)):
            break
    return Record(
        source=SOURCE,
        source_id=pmid,
        ids=_ids(pmid, element.find("PubmedBookData/ArticleIdList"), ()),
        title=chapter_title or book_title,
        abstract=join_sections(sections),
        abstract_sections=sections,
        authors=authors,
        venue=book_title if chapter_title else None,
        year=year,
        published=published,
        type="book-chapter" if chapter_title else "book",
        language=language_code(document.findtext("Language")),
        url=ARTICLE_URL.format(pmid=pmid),
        keywords=_keywords(document),
    )


# --- fields ----------------------------------------------------------------------------------


def _required(parent: _Element, tag: str) -> _Element:
    child = parent.find(tag)
    if child is None:
        raise _BadArticle(f"no <{tag}> in <{parent.tag}>")
    return child


def _find_pmid(element: _Element) -> str | None:
    text = element.findtext("MedlineCitation/PMID") or element.findtext("BookDocument/PMID")
    return str(text) if text is not None else None


def _pmid_or_none(text: str | None) -> str | None:
    return normalize_pmid(text) or collapse_whitespace(text)


def _pmid(parent: _Element) -> str:
    raw = parent.findtext("PMID")
    pmid = normalize_pmid(raw)
    if pmid is None:
        raise _BadArticle(f"missing or invalid PMID {raw!r}")
    return pmid


# The PubMed DTD's inline styling elements (%text.styles: b, i, sup, sub, u). markup_to_text
# joins their text to their neighbours' (H<sub>2</sub>O -> H2O), so content made of text and
# these elements only reads as its text nodes joined: no HTML parser needed (a speed-up).
_STYLES = frozenset({"b", "i", "sup", "sub", "u"})


def _text(element: _Element | None) -> str | None:
    """Text of an element whose content may hold markup (<i>, <sub>, MathML)."""
    if element is None:
        return None
    if len(element) == 0:
        text = element.text  # collapse_whitespace, inlined: most elements are plain text
        return None if text is None else (" ".join(text.split()) or None)
    if all(node.tag in _STYLES for node in element.iterdescendants()):
        return collapse_whitespace("".join(element.itertext()))
    # The content re-serialized (text escaped again) so that markup_to_text sees markup,
    # and a literal "<" in the text stays text.
    inner = html.escape(element.text or "", quote=False) + "".join(
        etree.tostring(child, encoding="unicode", with_tail=True) for child in element
    )
    return markup_to_text(inner)


def _ids(pmid: str, id_list: _Element | None, elocations: Iterable[_Element]) -> Identifiers:
    # Only the article's own ArticleIdList: those inside ReferenceList name the cited works.
    own: dict[str, str] = {}
    if id_list is not None:
        for node in id_list.iterchildren("ArticleId"):
            own.setdefault(str(node.get("IdType", "")), str(node.text or ""))
    doi = normalize_doi(own.get("doi"))
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
    return Identifiers(doi=doi, pmid=pmid, pmcid=normalize_pmcid(own.get("pmc")))


def _title(title: _Element | None, vernacular: _Element | None) -> str | None:
    text = _text(title)
    # NLM: "[Not Available]." stands in for a missing title.
    if text is None or text.rstrip(".") == "[Not Available]":
        return _text(vernacular)
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


def _sections(abstract: _Element | None) -> tuple[Section, ...]:
    if abstract is None:
        return ()
    sections: list[Section] = []
    for node in abstract.iterchildren("AbstractText"):
        text = _text(node)
        if text is None:
            continue
        # Label is the heading as printed; NlmCategory is NLM's mapping of it to one of
        # BACKGROUND/OBJECTIVE/METHODS/RESULTS/CONCLUSIONS (UNASSIGNED when it has none).
        category = node.get("NlmCategory")
        label = collapse_whitespace(node.get("Label")) or (
            category if category not in (None, "", "UNASSIGNED") else None
        )
        sections.append(Section(label=label, text=text))
    return tuple(sections)


def _other_abstracts(nodes: Iterable[_Element]) -> tuple[OtherAbstract, ...]:
    # Abstracts in other languages and plain-language summaries: never part of ``abstract``.
    found: list[OtherAbstract] = []
    for node in nodes:
        sections = _sections(node)
        text = join_sections(sections)
        if text is not None:
            language = language_code(node.get("Language"))
            found.append(OtherAbstract(language=language, text=text, sections=sections))
    return tuple(found)


def _authors(author_list: _Element | None) -> tuple[Author, ...]:
    if author_list is None:
        return ()
    # NLM: ValidYN="N" marks a name the publisher got wrong, kept only for searching.
    nodes = (n for n in author_list.iterchildren("Author") if n.get("ValidYN") != "N")
    return tuple(a for node in nodes if (a := _author(node)) is not None)


_NAME_PARTS = frozenset({"CollectiveName", "LastName", "ForeName", "Initials"})


def _author(node: _Element) -> Author | None:
    # One pass over the children (the first of each name part, as find() would pick), a
    # speed-up over one find() per part: authors are the most numerous elements of a page.
    parts: dict[str, _Element] = {}
    orcid: str | None = None
    for child in node.iterchildren(*_NAME_PARTS, "Identifier"):
        tag = child.tag
        if tag != "Identifier":
            parts.setdefault(tag, child)
        elif orcid is None and child.get("Source") == "ORCID":
            orcid = normalize_orcid(child.text)
    collective = _text(parts.get("CollectiveName"))
    if collective is not None:
        return Author(collective=collective)
    family = _text(parts.get("LastName"))
    given = _text(parts.get("ForeName")) or _text(parts.get("Initials"))
    if family is None and given is None:
        return None
    return Author(family=family, given=given, orcid=orcid)


def _pub_date(date: _Element | None) -> tuple[int | None, str | None]:
    if date is None:
        return None, None
    medline_date = date.findtext("MedlineDate")
    if medline_date:
        return parse_medline_date(medline_date)
    month = date.findtext("Month") or date.findtext("Season")
    published = partial_date(date.findtext("Year"), month, date.findtext("Day"))
    return (int(published[:4]), published) if published else (None, None)


def _first_date(dates: Iterator[_Element]) -> tuple[int | None, str | None]:
    for date in dates:
        year, published = _pub_date(date)
        if published is not None:
            return year, published
    return None, None


def _pages(pagination: _Element | None) -> str | None:
    if pagination is None:
        return None
    return normalize_pages(
        pagination.findtext("StartPage"),
        pagination.findtext("EndPage"),
        pagination.findtext("MedlinePgn"),
    )


def _record_type(publication_types: Iterable[_Element]) -> str:
    names = {collapse_whitespace(node.text) for node in publication_types}
    return next((kind for name, kind in _TYPES if name in names), _DEFAULT_TYPE)


def _keywords(parent: _Element) -> tuple[str, ...]:
    # MeSH descriptors and author keywords, for matching a topic locally.
    nodes = [*parent.iterfind("MeshHeadingList/MeshHeading/DescriptorName")]
    nodes += parent.iterfind("KeywordList/Keyword")
    return tuple(dict.fromkeys(k for node in nodes if (k := _text(node)) is not None))


# --- esearch ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ESearchResult:
    """An esearch answer: the total, this page's PMIDs and the history-server keys.

    ``errors`` and ``warnings`` are ErrorList/WarningList entries such as
    ``"PhraseNotFound: abcXYZ"``: the search ran, but not all of the term was used.
    """

    count: int
    retmax: int
    retstart: int
    ids: tuple[str, ...]
    query_key: str | None = None
    webenv: str | None = None
    query_translation: str | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def parse_esearch(body: bytes, *, url: str = "") -> ESearchResult:
    """An esearch response, XML (default) or JSON (``retmode=json``)."""
    if body.lstrip()[:1] == b"{":
        return _esearch_json(_read_json(body, url), url)
    root = _read_xml(body, url)
    if root.tag != "eSearchResult":
        raise ParseError(f"{_where(url)}: expected <eSearchResult>, got <{root.tag}>")
    return ESearchResult(
        count=_number(root.findtext("Count"), "Count", url),
        retmax=_number(root.findtext("RetMax"), "RetMax", url),
        retstart=_number(root.findtext("RetStart"), "RetStart", url),
        ids=tuple(
            i for node in root.iterfind("IdList/Id") if (i := collapse_whitespace(node.text))
        ),
        query_key=collapse_whitespace(root.findtext("QueryKey")),
        webenv=collapse_whitespace(root.findtext("WebEnv")),
        query_translation=collapse_whitespace(root.findtext("QueryTranslation")),
        errors=_messages(root.find("ErrorList")),
        warnings=_messages(root.find("WarningList")),
    )


def _messages(listing: _Element | None) -> tuple[str, ...]:
    if listing is None:
        return ()
    return tuple(
        f"{node.tag}: {text}"
        for node in listing.iterchildren("*")
        if (text := collapse_whitespace(node.text))
    )


def _esearch_json(data: dict[str, Any], url: str) -> ESearchResult:
    result = data.get("esearchresult")
    if not isinstance(result, dict):
        raise ParseError(f'{_where(url)}: no "esearchresult" in JSON')
    if result.get("ERROR"):
        raise ParseError(f"{_where(url)}: NCBI error: {result['ERROR']}")

    def listed(key: str) -> tuple[str, ...]:
        found = result.get(key) or {}
        return tuple(
            f"{name}: {item}"
            for name, items in found.items()
            for item in (items if isinstance(items, list) else [items])
            if item
        )

    return ESearchResult(
        count=_number(result.get("count"), "count", url),
        retmax=_number(result.get("retmax"), "retmax", url),
        retstart=_number(result.get("retstart"), "retstart", url),
        ids=tuple(str(i) for i in result.get("idlist") or ()),
        query_key=collapse_whitespace(str(result["querykey"])) if result.get("querykey") else None,
        webenv=collapse_whitespace(result.get("webenv")),
        query_translation=collapse_whitespace(result.get("querytranslation")),
        errors=listed("errorlist"),
        warnings=listed("warninglist"),
    )


def _number(value: Any, name: str, url: str) -> int:
    text = str(value).strip() if value is not None else ""
    if not text.isdigit():
        raise ParseError(f"{_where(url)}: <{name}> is {value!r}, not a number")
    return int(text)


# --- bodies ----------------------------------------------------------------------------------


def _where(url: str) -> str:
    return f"PubMed response from {url}" if url else "PubMed response"


def _read_xml(body: bytes, url: str) -> _Element:
    """The root element; ParseError for empty, malformed or truncated bodies and NCBI errors."""
    start = body.lstrip()[:1]
    if not start:
        raise ParseError(f"{_where(url)}: empty body")
    if start in (b"{", b"["):
        _read_json(body, url)  # raises with the error it names, if any
        raise ParseError(f"{_where(url)}: expected XML, got JSON")
    # No DTD loading, no entity expansion, no network: the body is untrusted input.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, recover=False, huge_tree=True
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        raise ParseError(f"{_where(url)}: malformed or truncated XML: {error}") from error
    # NCBI reports failures inside a 200 response: <eSummaryResult><ERROR>…</ERROR>.
    error_text = collapse_whitespace(root.text if root.tag == "ERROR" else root.findtext("ERROR"))
    if error_text is not None:
        raise ParseError(f"{_where(url)}: NCBI error: {error_text}")
    return root


def _read_json(body: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ParseError(f"{_where(url)}: malformed JSON: {error}") from error
    if not isinstance(data, dict):
        raise ParseError(f"{_where(url)}: expected a JSON object, got {type(data).__name__}")
    # E-utilities JSON errors, e.g. {"error":"API rate limit exceeded", …}.
    if data.get("error"):
        raise ParseError(f"{_where(url)}: NCBI error: {data['error']}")
    return data
