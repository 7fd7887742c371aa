"""PubMed responses, read: esearch and efetch XML to ESearchResult and Records (pure).

::

    esearch.fcgi?db=pubmed&term=…&usehistory=y -> parse_esearch -> ESearchResult (ids, WebEnv)
    efetch.fcgi?db=pubmed&retmode=xml&…        -> parse_efetch  -> ParseResult (Records, Skipped)

Element names follow the PubMed DTD (https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd)
and NLM's element descriptions (https://www.nlm.nih.gov/bsd/licensee/elements_descriptions.html).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from harvester.errors import ParseError
from harvester.records import Author, Identifiers, OtherAbstract, Record, Section, join_sections
from harvester.sources.base import (
    MAX_RECORD_BYTES,
    ParseResult,
    Skipped,
    cut_records,
    is_utf8,
    read_json,
)
from harvester.text.fields import language_code, normalize_pages, parse_medline_date, partial_date
from harvester.text.fold import _collapse_text, collapse_whitespace
from harvester.text.identifiers import (
    normalize_doi,
    normalize_orcid,
    normalize_pmcid,
    normalize_pmid,
)
from harvester.text.markup import markup_to_text, subscript, superscript

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

# The elements an efetch PubmedArticleSet holds (PubMed DTD), and ERROR, which NCBI puts in a
# 200 response when the request failed. The parser reports only these, from C: every other
# element is built into the tree without a Python event.
_TOP_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation", "ERROR")


def parse_efetch(
    body: bytes, *, url: str = "", max_record_bytes: int = MAX_RECORD_BYTES
) -> ParseResult:
    """Records of an efetch ``PubmedArticleSet`` (``PubmedArticle`` and ``PubmedBookArticle``).

    Raises ParseError for a malformed or truncated body and for NCBI error bodies (a fault
    that lies only inside an article's reference list, which is never read, may go unnoticed
    on a plain page). An article that cannot be read, or a ``DeleteCitation`` entry, becomes a
    Skipped; so does one over ``max_record_bytes`` and one holding bytes that are not UTF-8
    (both cut out of the page before lxml reads it, see :func:`cut_records`).
    """
    _check_body(body, url)
    result = _parse_in_pieces(body, max_record_bytes)
    if result is not None:
        return result
    body, cut = cut_records(
        body, _ARTICLE_START, _ARTICLE_END, _pmid_of_bytes, max_record_bytes=max_record_bytes
    )
    try:
        result = _parse_streaming(body, url)
    except ParseError:
        # libxml2 refuses the whole page for one byte that is not UTF-8: the articles that
        # hold one are cut out and the rest read. Looked for only once the page failed, so a
        # clean page costs nothing more. A bad byte outside every article fails the page.
        if is_utf8(body):
            raise
        clean, damaged = cut_records(
            body, _ARTICLE_START, _ARTICLE_END, _pmid_of_bytes, check_bytes=True
        )
        if not damaged:
            raise
        result = parse_efetch(clean, url=url, max_record_bytes=max_record_bytes)
        cut += damaged
    if not cut:
        return result
    return ParseResult(records=result.records, skipped=cut + result.skipped)


_ARTICLE_START = re.compile(rb"<Pubmed(?:Book)?Article>")
_ARTICLE_END = re.compile(rb"</Pubmed(?:Book)?Article>")
_PMID_BYTES = re.compile(rb"<PMID[^>]*>\s*(\d{1,9})\s*</PMID>")


def _pmid_of_bytes(article: bytes) -> str | None:
    found = _PMID_BYTES.search(article)
    return _pmid_or_none(found.group(1).decode()) if found else None


# --- efetch, the quick way: a plain page cut into pieces at article ends ----------------------
#
# lxml builds a tree about 1.6 times as fast from a whole string (fromstring) as it does when it
# must report elements as it goes (XMLPullParser), and a page is ~15 MB of XML: too much to
# hold as one tree (~75 MB). A page as NCBI writes it has no comments, CDATA sections,
# processing instructions or internal DTD subset, so "</PubmedArticle>" in it can only be the
# end tag of an article: the page is cut there into pieces of about _SLICE bytes, each parsed
# whole as <PubmedArticleSet>piece</PubmedArticleSet>. Anything else (a piece that does not
# parse, an unexpected element, an error, a comment) sends the page to _parse_streaming, which
# reads any body and words its errors for the whole body; the result is the same either way
# (tests/test_pubmed_parse.py compares them on every fixture and on mutated ones).
#
# The reference lists that end each article's PubmedData (the works it cites: about half of a
# page's bytes and a third of its elements) are never read, so they are cut out of a piece
# before lxml sees it, and the tree is built about twice as fast. Like an on-demand JSON parser,
# this path then does not check the syntax inside what it skips: a page whose only fault lies
# inside a reference list gives its records here, where the streaming parser refuses the page.
# The cut is exact: a run of plain <ReferenceList> elements (tags without attributes, nesting
# counted) where the DTD puts them, after the article's ArticleIdList (or ObjectList) and
# before the </PubmedData> closing their parent, with only whitespace between; anything else
# is left in the piece and parsed. A structure-aware fuzzer (tags deleted, doubled, moved,
# renamed, inserted; 70,000 pages) found the two rules a looser cut needed, and inputs that
# made the scans quadratic: each is now a test.

_ROOT_START = b"<PubmedArticleSet>"
_ROOT_END = b"</PubmedArticleSet>"
_ARTICLE_ENDS = (b"</PubmedArticle>", b"</PubmedBookArticle>")
_BEFORE_LISTS = (b"</ArticleIdList>", b"</ObjectList>")
_REFERENCES = b"<ReferenceList>"
_REFERENCES_END = b"</ReferenceList>"
_NAME = b"ReferenceList"
_DATA_END = b"</PubmedData>"
# XML's whitespace: not \f or \v, which bytes.strip() and \s also take.
_XML_WHITESPACE = b" \t\r\n"
_XML_SPACE = re.compile(b"[%s]*" % _XML_WHITESPACE)
# Each run of whitespace has one place in the pattern: with "\s*" on both sides of the optional
# parts, a long run before something else took seconds to refuse.
_PROLOG = re.compile(
    (
        rb"""\s*(?:<\?xml\s+version\s*=\s*["']1\.0["']"""
        rb"""(?:\s+encoding\s*=\s*["']utf-8["'])?\s*\?>\s*)?"""
        rb"""(?:<!DOCTYPE\s+PubmedArticleSet(?:\s+PUBLIC\s+"[^"<>\[]*"\s+"[^"<>\[]*")?\s*>\s*)?"""
    ).replace(rb"\s", b"[%s]" % _XML_WHITESPACE),
    re.IGNORECASE,
)
_PIECE_TAGS = frozenset({"PubmedArticle", "PubmedBookArticle", "DeleteCitation"})


def _parse_in_pieces(body: bytes, max_record_bytes: int = MAX_RECORD_BYTES) -> ParseResult | None:
    """The page's Records, read piece by piece; None when it is not a plain efetch page."""
    start = body.find(_ROOT_START)
    end = body.rfind(_ROOT_END)
    if start < 0 or end < start or body[end + len(_ROOT_END) :].strip(_XML_WHITESPACE):
        return None
    if not _PROLOG.fullmatch(body, 0, start):
        return None  # not the XML declaration and DOCTYPE as NCBI writes them
    content = body[start + len(_ROOT_START) : end]
    if b"<!" in content or b"<?" in content:
        return None  # a comment or CDATA section could hold the text "</PubmedArticle>"
    records: list[Record] = []
    skipped: list[Skipped] = []
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        # The prolog must be well-formed too: the pattern lets through what libxml2 refuses.
        etree.fromstring(body[:start] + b"<PubmedArticleSet/>", parser)
        for piece in _pieces(content, skipped, max_record_bytes):
            for element in etree.fromstring(piece, parser):
                if element.tag not in _PIECE_TAGS:
                    return None  # an NCBI <ERROR>, a comment, an unknown element
                _add(element, records, skipped)
    except Exception:  # noqa: BLE001 - whatever went wrong, the streaming parser says it right
        return None
    return ParseResult(records=tuple(records), skipped=tuple(skipped))


def _pieces(
    content: bytes,
    skipped: list[Skipped] | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[bytes]:
    """``content`` cut after the first article end past every _SLICE bytes, each piece wrapped
    in the root element, its articles' reference lists left out, and those over
    ``max_record_bytes`` too (each added to ``skipped``)."""
    position = 0
    while position < len(content):
        cut = _piece_end(content, position + _SLICE)
        if cut - position <= max_record_bytes:
            yield b"".join((_ROOT_START, *_without_references(content, position, cut), _ROOT_END))
        else:
            # Only a piece longer than the cap can hold an article longer than it (the piece
            # ends at the first article end past _SLICE): its articles are measured.
            kept, oversized = cut_records(
                content[position:cut],
                _ARTICLE_START,
                _ARTICLE_END,
                _pmid_of_bytes,
                max_record_bytes=max_record_bytes,
            )
            if skipped is not None:
                skipped.extend(oversized)
            yield b"".join((_ROOT_START, *_without_references(kept, 0, len(kept)), _ROOT_END))
        position = cut


def _piece_end(content: bytes, position: int) -> int:
    """Just after the first ``</PubmedArticle>`` or ``</PubmedBookArticle>`` from
    ``position``; the end of ``content`` when there is none."""
    while (found := content.find(b"Article>", position)) >= 0:
        position = found + len(b"Article>")
        if content.endswith(_ARTICLE_ENDS, 0, position):
            return position
    return len(content)


def _without_references(content: bytes, start: int, end: int) -> list[memoryview]:
    """``content[start:end]`` as slices (views, not copies) that leave out each run of reference
    lists at the end of a PubmedData."""
    view = memoryview(content)
    slices: list[memoryview] = []
    kept = search = start
    while (first := content.find(_REFERENCES, search, end)) >= 0:
        # The first "Pubmed" after a run must be the </PubmedData> that closes its parent, so
        # the run lies within one article's PubmedData: missing tags in a broken page cannot
        # join lists of two articles. A run starting before it that cannot be cut means none
        # starting before it can, so each byte is looked at a bounded number of times.
        search = content.find(b"Pubmed", first, end)
        if search < 0:
            break
        limit = search - 2
        if (
            content.startswith(_DATA_END, limit)
            # PubMed DTD: PubmedData (History?, PublicationStatus, ArticleIdList, ObjectList?,
            # ReferenceList*). Only lists after those children are cut: the article's own
            # ArticleIdList can never be inside a run, whatever tags a broken page lacks.
            and content[max(start, first - 64) : first]
            .rstrip(_XML_WHITESPACE)
            .endswith(_BEFORE_LISTS)
            and _only_reference_lists(content, first, limit)
        ):
            slices.append(view[kept:first])
            kept = limit
    slices.append(view[kept:end])
    return slices


def _only_reference_lists(content: bytes, position: int, limit: int) -> bool:
    """Whether ``content[position:limit]`` holds <ReferenceList> elements and whitespace only,
    every "ReferenceList" in it a plain ``<ReferenceList>`` or ``</ReferenceList>`` tag."""
    depth = 0
    # One scan for the name finds both kinds of tag (a page read in pieces has no CDATA or
    # comments, and "<" is escaped in text); the name anywhere else leaves the run in place.
    while True:
        if depth == 0:
            space = _XML_SPACE.match(content, position, limit)
            position = space.end() if space else position
            if position == limit:
                return True
            if not content.startswith(_REFERENCES, position):
                return False
        found = content.find(_NAME, position, limit)
        if found < 0:
            return False
        position = found + len(_NAME) + 1
        if content.startswith(_REFERENCES, found - 1):
            depth += 1
        elif content.startswith(_REFERENCES_END, found - 2):
            depth -= 1
        else:
            return False  # in another tag, with attributes, or in text


def _parse_streaming(body: bytes, url: str) -> ParseResult:
    """Any body, read as the parser finishes each article, then dropped from the tree."""
    # The page is never held whole (1,000 articles are ~15 MB of XML). The outcome is the
    # one of parsing the whole body first: a syntax error anywhere, then an NCBI <ERROR>,
    # then a root other than <PubmedArticleSet> wins over what the articles gave.
    parser = etree.XMLPullParser(tag=_TOP_TAGS, **_PARSER_OPTIONS)
    records: list[Record] = []
    skipped: list[Skipped] = []
    error_text: str | None = None  # findtext("ERROR") of the root: its first <ERROR> child's
    seen_error = False
    failure: Exception | None = None  # raised by an article: re-raised once the body parsed
    roots: list[_Element] = []
    try:
        for element in _finished(parser, body, roots):
            parent = element.getparent()
            if parent is None or parent.getparent() is not None:
                continue  # the root itself, or an element nested inside an article
            if not seen_error and element.tag == "ERROR":
                seen_error, error_text = True, element.text
            if failure is not None or parent.tag != "PubmedArticleSet":
                continue
            try:
                if element.getprevious() is not None:  # children the parser does not report
                    for node in [*element.itersiblings(preceding=True)][::-1]:
                        _add(node, records, skipped)
                        parent.remove(node)
                _add(element, records, skipped)
            except Exception as error:  # noqa: BLE001 - re-raised after the syntax check
                failure = error
                continue
            parent.remove(element)  # read: its memory is freed
    except etree.XMLSyntaxError as error:
        # libxml2's incremental parser words some errors differently ("…Start Tag Jour"
        # without "line 4"): the message is the one reading the whole body gives.
        _read_xml(body, url)
        raise ParseError(f"{_where(url)}: malformed or truncated XML: {error}") from error
    root = roots[0]
    _raise_ncbi_error(root.text if root.tag == "ERROR" else error_text, url)
    if root.tag != "PubmedArticleSet":
        raise ParseError(f"{_where(url)}: expected <PubmedArticleSet>, got <{root.tag}>")
    if failure is not None:
        raise failure
    for node in root.iterchildren():  # after the last reported article
        _add(node, records, skipped)
    return ParseResult(records=tuple(records), skipped=tuple(skipped))


# The body is fed to the parser in slices of this size. Each slice is parsed in C and then its
# finished articles are read while their nodes are likely still in the CPU cache. Measured on
# the scaled page of benchmarks/parse.py (noisy shared machine, fresh processes, best of 10):
# a few % quicker than iterparse's 32 KiB reads; slices of 1 MB and more were slower.
_SLICE = 1 << 18


def _finished(parser: Any, body: bytes, roots: list[_Element]) -> Iterator[_Element]:
    """The elements ``parser`` reports as the body's slices are parsed, in document order;
    the root is appended to ``roots`` once the whole body parsed."""
    for start in range(0, len(body), _SLICE):
        parser.feed(body[start : start + _SLICE])
        for _, element in parser.read_events():
            yield element
    roots.append(parser.close())
    for _, element in parser.read_events():
        yield element


def _add(element: _Element, records: list[Record], skipped: list[Skipped]) -> None:
    """One child of the PubmedArticleSet, as a Record or a Skipped (comments are ignored)."""
    tag = element.tag
    if not isinstance(tag, str):
        return  # a comment, processing instruction or entity reference
    if tag == "DeleteCitation":
        # NLM: citations deleted from PubMed since they were distributed.
        skipped.extend(
            Skipped(source_id=_pmid_or_none(pmid.text), reason="deleted from PubMed")
            for pmid in element.iterchildren("PMID")
        )
        return
    try:
        if tag == "PubmedArticle":
            records.append(_journal_record(element))
        elif tag == "PubmedBookArticle":
            records.append(_book_record(element))
        else:
            raise _BadArticle(f"unexpected element <{tag}>")
    except _BadArticle as error:
        skipped.append(Skipped(source_id=_pmid_or_none(_find_pmid(element)), reason=str(error)))
    except RecursionError:  # markup nested deeper than Python's recursion (libxml2 allows 2,048)
        pmid = _pmid_or_none(_find_pmid(element))
        skipped.append(Skipped(source_id=pmid, reason="markup nested too deeply to read"))


# Each container's children are read in one pass that keeps what find()/findtext()/iterfind()
# would have picked (the first child of a tag; every child for lists): one find() costs about
# as much as walking a dozen children, and a record asks for ~40 of them.


def _journal_record(element: _Element) -> Record:
    citation: _Element | None = None
    pubmed_data: list[_Element] = []
    for child in element:
        tag = child.tag
        if tag == "MedlineCitation":
            if citation is None:
                citation = child
        elif tag == "PubmedData":
            pubmed_data.append(child)
    if citation is None:
        raise _BadArticle("no <MedlineCitation> in <PubmedArticle>")
    pmid_text: str | None = None
    has_pmid = False
    article: _Element | None = None
    other_abstracts: list[_Element] = []
    headings: list[_Element] = []
    keyword_lists: list[_Element] = []
    for child in citation:
        tag = child.tag
        if tag == "PMID":
            if not has_pmid:
                has_pmid, pmid_text = True, child.text or ""
        elif tag == "Article":
            if article is None:
                article = child
        elif tag == "MeshHeadingList":
            headings.append(child)
        elif tag == "KeywordList":
            keyword_lists.append(child)
        elif tag == "OtherAbstract":
            other_abstracts.append(child)
    pmid = _checked_pmid(pmid_text)
    if article is None:
        raise _BadArticle("no <Article> in <MedlineCitation>")

    journals: list[_Element] = []
    title = vernacular = abstract = author_list = pagination = None
    language: str | None = None
    type_lists: list[_Element] = []
    article_dates: list[_Element] = []
    elocations: list[_Element] = []
    for child in article:
        tag = child.tag
        if tag == "Journal":
            journals.append(child)
        elif tag == "ArticleTitle":
            if title is None:
                title = child
        elif tag == "Pagination":
            if pagination is None:
                pagination = child
        elif tag == "ELocationID":
            elocations.append(child)
        elif tag == "Abstract":
            if abstract is None:
                abstract = child
        elif tag == "AuthorList":
            if author_list is None:
                author_list = child
        elif tag == "Language":
            if language is None:
                language = child.text or ""
        elif tag == "PublicationTypeList":
            type_lists.append(child)
        elif tag == "ArticleDate":
            article_dates.append(child)
        elif tag == "VernacularTitle" and vernacular is None:
            vernacular = child

    issue = journal_title = None
    for journal in journals:  # find("Journal/JournalIssue") and find("Journal/Title")
        for child in journal:
            tag = child.tag
            if tag == "JournalIssue":
                if issue is None:
                    issue = child
            elif tag == "Title" and journal_title is None:
                journal_title = child
    volume = issue_number = pub_date = None
    if issue is not None:
        for child in issue:
            tag = child.tag
            if tag == "Volume":
                if volume is None:
                    volume = child
            elif tag == "Issue":
                if issue_number is None:
                    issue_number = child
            elif tag == "PubDate" and pub_date is None:
                pub_date = child
    sections = _sections(abstract)
    year, published = _pub_date(pub_date)
    if published is None:
        year, published = _first_date(article_dates)
    id_list = None
    for data in pubmed_data:  # find("PubmedData/ArticleIdList")
        for child in data.iterchildren("ArticleIdList"):
            id_list = child
            break
        if id_list is not None:
            break
    return Record(
        source=SOURCE,
        source_id=pmid,
        ids=_ids(pmid, id_list, elocations),
        title=_title(title, vernacular),
        abstract=join_sections(sections),
        abstract_sections=sections,
        other_abstracts=_other_abstracts(other_abstracts),
        authors=_authors(author_list),
        venue=_text(journal_title),
        year=year,
        volume=_text(volume),
        issue=_text(issue_number),
        pages=_pages(pagination),
        published=published,
        type=_record_type(type_lists),
        language=language_code(language),
        url=ARTICLE_URL.format(pmid=pmid),
        keywords=_keywords(headings, keyword_lists),
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
        keywords=_keywords(
            [*document.iterchildren("MeshHeadingList")], [*document.iterchildren("KeywordList")]
        ),
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
    return _checked_pmid(parent.findtext("PMID"))


def _checked_pmid(raw: str | None) -> str:
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
    if len(element) == 0:  # most elements are plain text
        text = element.text
        if text is None:
            return None
        # collapse_whitespace: split and join, inlined for short text (names, keywords)
        return (" ".join(text.split()) or None) if len(text) < 48 else _collapse_text(text)
    scripts = False
    for node in element.iterdescendants():
        tag = node.tag
        if tag not in _STYLES:
            break
        if tag == "sup" or tag == "sub":
            scripts = True
    else:  # styles only: the text as it is, super- and subscripts written as such
        return _collapse_text(_scripted_text(element) if scripts else "".join(element.itertext()))
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


def _ids(pmid: str, id_list: _Element | None, elocations: Iterable[_Element]) -> Identifiers:
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
        label = node.get("Label")
        if label is not None:
            label = " ".join(label.split()) or None  # collapse_whitespace, inlined
        if label is None:
            category = node.get("NlmCategory")
            label = category if category not in (None, "", "UNASSIGNED") else None
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
        if collective is not None and (name := _text(collective)) is not None:
            authors.append(Author(collective=name))
            continue
        family = _text(last)
        given = _text(fore) or _text(initials)
        if family is not None or given is not None:
            authors.append(Author(family, given, orcid))  # positional: quicker than keywords
    return tuple(authors)


def _pub_date(date: _Element | None) -> tuple[int | None, str | None]:
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


def _first_date(dates: Iterable[_Element]) -> tuple[int | None, str | None]:
    for date in dates:
        year, published = _pub_date(date)
        if published is not None:
            return year, published
    return None, None


def _pages(pagination: _Element | None) -> str | None:
    if pagination is None:
        return None
    parts = _first_texts(pagination)
    return normalize_pages(parts.get("StartPage"), parts.get("EndPage"), parts.get("MedlinePgn"))


def _record_type(type_lists: Iterable[_Element]) -> str:
    names = {
        collapse_whitespace(node.text)
        for types in type_lists
        for node in types.iterchildren("PublicationType")
    }
    return next((kind for name, kind in _TYPES if name in names), _DEFAULT_TYPE)


# The text nodes and other children of each list's DescriptorName/Keyword elements, in
# document order, from one XPath call per list: text comes back as str with no Python element
# per keyword. Any other child (markup, comment) sends the list to _text, element by element.
_DESCRIPTOR_TEXT = etree.XPath("MeshHeading/DescriptorName/node()", smart_strings=False)
_KEYWORD_TEXT = etree.XPath("Keyword/node()", smart_strings=False)
_DESCRIPTORS = etree.XPath("MeshHeading/DescriptorName")


def _keywords(headings: Iterable[_Element], keyword_lists: Iterable[_Element]) -> tuple[str, ...]:
    # MeSH descriptors and author keywords, for matching a topic locally:
    # MeshHeadingList/MeshHeading/DescriptorName, then KeywordList/Keyword.
    found: dict[str, None] = {}
    for heading_list in headings:
        if not _plain_keywords(_DESCRIPTOR_TEXT(heading_list), found):
            for node in _DESCRIPTORS(heading_list):
                if (keyword := _text(node)) is not None:
                    found[keyword] = None
    for keyword_list in keyword_lists:
        if not _plain_keywords(_KEYWORD_TEXT(keyword_list), found):
            for node in keyword_list.iterchildren("Keyword"):
                if (keyword := _text(node)) is not None:
                    found[keyword] = None
    return tuple(found)


def _plain_keywords(nodes: list[Any], found: dict[str, None]) -> bool:
    """Adds the keywords of elements holding text only, as _text reads them; False, adding
    nothing, when an element holds anything else. Such an element has at most one text node
    (the parser joins adjacent text), its ``.text``; one without text gives no node, as _text
    gives None."""
    for node in nodes:
        if type(node) is not str:
            return False
    for text in nodes:
        keyword = (" ".join(text.split()) or None) if len(text) < 48 else _collapse_text(text)
        if keyword is not None:
            found[keyword] = None
    return True


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
        if not isinstance(found, dict):
            raise ParseError(f"{_where(url)}: {key} is {type(found).__name__}, not an object")
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
    # ASCII digits, and few enough for int() (a 5,000-digit count would raise ValueError).
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise ParseError(f"{_where(url)}: <{name}> is {value!r}, not a number")
    return int(text)


# --- bodies ----------------------------------------------------------------------------------


def _where(url: str) -> str:
    return f"PubMed response from {url}" if url else "PubMed response"


def _read_xml(body: bytes, url: str) -> _Element:
    """The root element; ParseError for empty, malformed or truncated bodies and NCBI errors."""
    _check_body(body, url)
    try:
        root = etree.fromstring(body, etree.XMLParser(**_PARSER_OPTIONS))
    except etree.XMLSyntaxError as error:
        raise ParseError(f"{_where(url)}: malformed or truncated XML: {error}") from error
    _raise_ncbi_error(root.text if root.tag == "ERROR" else root.findtext("ERROR"), url)
    return root


# No DTD loading, no entity expansion, no network: the body is untrusted input.
_PARSER_OPTIONS: dict[str, bool] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "recover": False,
    "huge_tree": True,
}


def _check_body(body: bytes, url: str) -> None:
    """ParseError for an empty body and for JSON (naming the error NCBI sent, if any)."""
    start = body.lstrip()[:1]
    if not start:
        raise ParseError(f"{_where(url)}: empty body")
    if start in (b"{", b"["):
        _read_json(body, url)  # raises with the error it names, if any
        raise ParseError(f"{_where(url)}: expected XML, got JSON")


def _raise_ncbi_error(text: str | None, url: str) -> None:
    # NCBI reports failures inside a 200 response: <eSummaryResult><ERROR>…</ERROR>.
    error_text = collapse_whitespace(text)
    if error_text is not None:
        raise ParseError(f"{_where(url)}: NCBI error: {error_text}")


def _read_json(body: bytes, url: str) -> dict[str, Any]:
    data = read_json(body, _where(url), problem="malformed JSON").data
    if not isinstance(data, dict):
        raise ParseError(f"{_where(url)}: expected a JSON object, got {type(data).__name__}")
    # E-utilities JSON errors, e.g. {"error":"API rate limit exceeded", …}.
    if data.get("error"):
        raise ParseError(f"{_where(url)}: NCBI error: {data['error']}")
    return data
