"""PubMed efetch pages read: cut at article ends into pieces, or streamed (pure).

::

    efetch.fcgi?db=pubmed&retmode=xml&…  -> parse_efetch -> ParseResult (Records, Skipped)

A plain page is cut, byte by byte, into pieces of whole articles (their reference lists left
out) that lxml parses whole; any other body is streamed. Each article element is then read by
:mod:`harvester.sources.pubmed.records`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lxml import etree

from harvester.errors import ParseError
from harvester.records import Record
from harvester.sources.base import MAX_RECORD_BYTES, ParseResult, Skipped, cut_records, is_utf8
from harvester.sources.pubmed.bodies import (
    PARSER_OPTIONS,
    check_body,
    raise_ncbi_error,
    read_xml,
    response_where,
)
from harvester.sources.pubmed.fields import pmid_or_none
from harvester.sources.pubmed.records import add_article

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element

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
    check_body(body, url)
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
    return pmid_or_none(found.group(1).decode()) if found else None


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
    parser = etree.XMLParser(**PARSER_OPTIONS)
    try:
        # The prolog must be well-formed too: the pattern lets through what libxml2 refuses.
        etree.fromstring(body[:start] + b"<PubmedArticleSet/>", parser)
        for piece in _pieces(content, skipped, max_record_bytes):
            for element in etree.fromstring(piece, parser):
                if element.tag not in _PIECE_TAGS:
                    return None  # an NCBI <ERROR>, a comment, an unknown element
                add_article(element, records, skipped)
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
    parser = etree.XMLPullParser(tag=_TOP_TAGS, **PARSER_OPTIONS)
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
                        add_article(node, records, skipped)
                        parent.remove(node)
                add_article(element, records, skipped)
            except Exception as error:  # noqa: BLE001 - re-raised after the syntax check
                failure = error
                continue
            parent.remove(element)  # read: its memory is freed
    except etree.XMLSyntaxError as error:
        # libxml2's incremental parser words some errors differently ("…Start Tag Jour"
        # without "line 4"): the message is the one reading the whole body gives.
        read_xml(body, url)
        raise ParseError(f"{response_where(url)}: malformed or truncated XML: {error}") from error
    root = roots[0]
    raise_ncbi_error(root.text if root.tag == "ERROR" else error_text, url)
    if root.tag != "PubmedArticleSet":
        raise ParseError(f"{response_where(url)}: expected <PubmedArticleSet>, got <{root.tag}>")
    if failure is not None:
        raise failure
    for node in root.iterchildren():  # after the last reported article
        add_article(node, records, skipped)
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
