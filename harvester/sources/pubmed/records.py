"""One PubMed article element (PubmedArticle, PubmedBookArticle) read into a Record (pure).

Element names follow the PubMed DTD (https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd)
and NLM's element descriptions (https://www.nlm.nih.gov/bsd/licensee/elements_descriptions.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harvester.records import Author, Record, join_sections
from harvester.sources.base import Skipped
from harvester.sources.pubmed.fields import (
    _authors,
    _BadArticle,
    _checked_pmid,
    _find_pmid,
    _first_date,
    _ids,
    _keywords,
    _other_abstracts,
    _pages,
    _pmid,
    _pmid_or_none,
    _pub_date,
    _record_type,
    _required,
    _sections,
    _text,
    _title,
)
from harvester.text.fields import language_code

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element

SOURCE = "pubmed"
ARTICLE_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


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
# would have picked: the first child of each tag wanted once, every child of each tag wanted as
# a list. One find() costs about as much as walking a dozen children, and a record asks for ~40.


def _children(
    parent: _Element, first: frozenset[str], every: frozenset[str] = frozenset()
) -> tuple[dict[str, _Element], dict[str, list[_Element]]]:
    """``parent``'s first child of each tag in ``first`` and all its children of each tag in
    ``every``, in one pass over its children."""
    firsts: dict[str, _Element] = {}
    lists: dict[str, list[_Element]] = {}
    for child in parent:
        tag = child.tag
        if tag in every:
            lists.setdefault(tag, []).append(child)
        elif tag in first and tag not in firsts:
            firsts[tag] = child
    return firsts, lists


_IN_ARTICLE = frozenset({"MedlineCitation"}), frozenset({"PubmedData"})
_IN_CITATION = (
    frozenset({"PMID", "Article"}),
    frozenset({"MeshHeadingList", "KeywordList", "OtherAbstract"}),
)
_IN_ARTICLE_BODY = (
    frozenset(
        {"ArticleTitle", "VernacularTitle", "Pagination", "Abstract", "AuthorList", "Language"}
    ),
    frozenset({"Journal", "ELocationID", "PublicationTypeList", "ArticleDate"}),
)
_IN_JOURNAL = frozenset({"JournalIssue", "Title"})
_IN_ISSUE = frozenset({"Volume", "Issue", "PubDate"})


def _journal_record(element: _Element) -> Record:
    top, data = _children(element, *_IN_ARTICLE)
    citation = top.get("MedlineCitation")
    if citation is None:
        raise _BadArticle("no <MedlineCitation> in <PubmedArticle>")
    parts, lists = _children(citation, *_IN_CITATION)
    pmid_element = parts.get("PMID")
    pmid = _checked_pmid(None if pmid_element is None else pmid_element.text or "")
    article = parts.get("Article")
    if article is None:
        raise _BadArticle("no <Article> in <MedlineCitation>")
    fields, many = _children(article, *_IN_ARTICLE_BODY)
    language = fields.get("Language")

    issue = journal_title = None
    for journal in many.get("Journal", ()):  # find("Journal/JournalIssue"), find("Journal/Title")
        found, _ = _children(journal, _IN_JOURNAL)
        if issue is None:
            issue = found.get("JournalIssue")
        if journal_title is None:
            journal_title = found.get("Title")
    numbering = _children(issue, _IN_ISSUE)[0] if issue is not None else {}
    sections = _sections(fields.get("Abstract"))
    year, published = _pub_date(numbering.get("PubDate"))
    if published is None:
        year, published = _first_date(many.get("ArticleDate", ()))
    id_list = None
    for pubmed_data in data.get("PubmedData", ()):  # find("PubmedData/ArticleIdList")
        for child in pubmed_data.iterchildren("ArticleIdList"):
            id_list = child
            break
        if id_list is not None:
            break
    return Record(
        source=SOURCE,
        source_id=pmid,
        ids=_ids(pmid, id_list, many.get("ELocationID", ())),
        title=_title(fields.get("ArticleTitle"), fields.get("VernacularTitle")),
        abstract=join_sections(sections),
        abstract_sections=sections,
        other_abstracts=_other_abstracts(lists.get("OtherAbstract", ())),
        authors=_authors(fields.get("AuthorList")),
        venue=_text(journal_title),
        year=year,
        volume=_text(numbering.get("Volume")),
        issue=_text(numbering.get("Issue")),
        pages=_pages(fields.get("Pagination")),
        published=published,
        type=_record_type(many.get("PublicationTypeList", ())),
        language=language_code(None if language is None else language.text or ""),
        url=ARTICLE_URL.format(pmid=pmid),
        keywords=_keywords(lists.get("MeshHeadingList", ()), lists.get("KeywordList", ())),
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
