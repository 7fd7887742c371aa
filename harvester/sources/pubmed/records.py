"""One PubMed article element (PubmedArticle, PubmedBookArticle) read into a Record (pure).

Element names follow the PubMed DTD (https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd)
and NLM's element descriptions (https://www.nlm.nih.gov/bsd/licensee/elements_descriptions.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harvester.records import Author, Record, join_sections
from harvester.sources.base import Skipped
from harvester.sources.pubmed.fields import (
    BadArticle,
    checked_pmid,
    element_text,
    find_pmid,
    first_date,
    pmid_or_none,
    publication_type_names,
    read_authors,
    read_ids,
    read_keywords,
    read_other_abstracts,
    read_pages,
    read_pmid,
    read_pub_date,
    read_sections,
    read_title,
    record_type,
    required_child,
)
from harvester.sources.updates import pubmed_updates
from harvester.text.fields import language_code

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element

SOURCE = "pubmed"
ARTICLE_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def add_article(element: _Element, records: list[Record], skipped: list[Skipped]) -> None:
    """One child of the PubmedArticleSet, as a Record or a Skipped (comments are ignored)."""
    tag = element.tag
    if not isinstance(tag, str):
        return  # a comment, processing instruction or entity reference
    if tag == "DeleteCitation":
        # NLM: citations deleted from PubMed since they were distributed.
        skipped.extend(
            Skipped(source_id=pmid_or_none(pmid.text), reason="deleted from PubMed")
            for pmid in element.iterchildren("PMID")
        )
        return
    try:
        if tag == "PubmedArticle":
            records.append(_journal_record(element))
        elif tag == "PubmedBookArticle":
            records.append(_book_record(element))
        else:
            raise BadArticle(f"unexpected element <{tag}>")
    except BadArticle as error:
        skipped.append(Skipped(source_id=pmid_or_none(find_pmid(element)), reason=str(error)))
    except RecursionError:  # markup nested deeper than Python's recursion (libxml2 allows 2,048)
        pmid = pmid_or_none(find_pmid(element))
        skipped.append(Skipped(source_id=pmid, reason="markup nested too deeply to read"))


# Each container's children are read in one pass that keeps what find()/findtext()/iterfind()
# would have picked: the first child of a tag, or every child of a tag for the lists. One
# find() costs about as much as walking a dozen children, and a record asks for ~40. The
# passes are written out, a ``match`` per container: a shared helper returning dicts of the
# children cost 5 % more instructions per article (calls, dicts, lookups; callgrind).


def _journal_record(element: _Element) -> Record:
    citation: _Element | None = None
    pubmed_data: list[_Element] = []
    for child in element:
        match child.tag:
            case "MedlineCitation" if citation is None:
                citation = child
            case "PubmedData":
                pubmed_data.append(child)
    if citation is None:
        raise BadArticle("no <MedlineCitation> in <PubmedArticle>")

    pmid_element: _Element | None = None
    articles: list[_Element] = []
    other_abstracts: list[_Element] = []
    headings: list[_Element] = []
    keyword_lists: list[_Element] = []
    comment_lists: list[_Element] = []
    for child in citation:
        match child.tag:
            case "PMID" if pmid_element is None:
                pmid_element = child
            case "Article":
                articles.append(child)
            case "MeshHeadingList":
                headings.append(child)
            case "KeywordList":
                keyword_lists.append(child)
            case "OtherAbstract":
                other_abstracts.append(child)
            case "CommentsCorrectionsList":
                comment_lists.append(child)
    pmid = checked_pmid(None if pmid_element is None else pmid_element.text or "")
    if not articles:
        raise BadArticle("no <Article> in <MedlineCitation>")

    title = vernacular = abstract = author_list = pagination = language = None
    journals: list[_Element] = []
    type_lists: list[_Element] = []
    article_dates: list[_Element] = []
    elocations: list[_Element] = []
    for child in articles[0]:
        match child.tag:
            case "Journal":
                journals.append(child)
            case "ArticleTitle" if title is None:
                title = child
            case "Pagination" if pagination is None:
                pagination = child
            case "ELocationID":
                elocations.append(child)
            case "Abstract" if abstract is None:
                abstract = child
            case "AuthorList" if author_list is None:
                author_list = child
            case "Language" if language is None:
                language = child
            case "PublicationTypeList":
                type_lists.append(child)
            case "ArticleDate":
                article_dates.append(child)
            case "VernacularTitle" if vernacular is None:
                vernacular = child

    issue = journal_title = None
    for journal in journals:  # find("Journal/JournalIssue"), find("Journal/Title")
        for child in journal:
            match child.tag:
                case "JournalIssue" if issue is None:
                    issue = child
                case "Title" if journal_title is None:
                    journal_title = child
    volume = issue_number = pub_date = None
    if issue is not None:
        for child in issue:
            match child.tag:
                case "Volume" if volume is None:
                    volume = child
                case "Issue" if issue_number is None:
                    issue_number = child
                case "PubDate" if pub_date is None:
                    pub_date = child
    sections = read_sections(abstract)
    year, published = read_pub_date(pub_date)
    if published is None:
        year, published = first_date(article_dates)
    id_list = None
    for data in pubmed_data:  # find("PubmedData/ArticleIdList")
        for child in data.iterchildren("ArticleIdList"):
            id_list = child
            break
        if id_list is not None:
            break
    type_names = publication_type_names(type_lists)
    # The record's type is its Article's; a retraction is read from every Article (the DTD
    # allows one: a second one only in a broken page).
    every_type = type_names
    if len(articles) > 1:
        every_type = publication_type_names(
            t for a in articles for t in a.iterchildren("PublicationTypeList")
        )
    return Record(
        source=SOURCE,
        source_id=pmid,
        ids=read_ids(pmid, id_list, elocations),
        title=read_title(title, vernacular),
        abstract=join_sections(sections),
        abstract_sections=sections,
        other_abstracts=read_other_abstracts(other_abstracts),
        authors=read_authors(author_list),
        venue=element_text(journal_title),
        year=year,
        volume=element_text(volume),
        issue=element_text(issue_number),
        pages=read_pages(pagination),
        published=published,
        type=record_type(type_names),
        language=language_code(None if language is None else language.text or ""),
        url=ARTICLE_URL.format(pmid=pmid),
        keywords=read_keywords(headings, keyword_lists),
        updates=pubmed_updates(comment_lists, every_type, published),
    )


def _book_record(element: _Element) -> Record:
    # A chapter (ArticleTitle present) has the book as its venue; a whole book has none.
    document = required_child(element, "BookDocument")
    pmid = read_pmid(document)
    book = document.find("Book")
    book_title = element_text(book.find("BookTitle")) if book is not None else None
    chapter_title = read_title(document.find("ArticleTitle"), document.find("VernacularTitle"))
    sections = read_sections(document.find("Abstract"))
    year, published = read_pub_date(book.find("PubDate") if book is not None else None)
    author_lists = [*document.iterchildren("AuthorList")]
    if book is not None:
        author_lists += book.iterchildren("AuthorList")
    authors: tuple[Author, ...] = ()
    for author_list in author_lists:  # the chapter's authors, else the book's (not its editors)
        if author_list.get("Type", "authors") == "authors" and (
            authors := read_authors(author_list)
        ):
            break
    return Record(
        source=SOURCE,
        source_id=pmid,
        ids=read_ids(pmid, element.find("PubmedBookData/ArticleIdList"), ()),
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
        keywords=read_keywords(
            [*document.iterchildren("MeshHeadingList")], [*document.iterchildren("KeywordList")]
        ),
    )
