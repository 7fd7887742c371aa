"""The portable query in each API's own syntax, as far as that API allows.

Translations follow one rule: an API query may be *broader* than the local query (local
evaluation, :meth:`harvester.query.syntax.Query.match`, filters afterwards) but never narrower.
Where an API cannot say a term exactly, a positive term is approximated and a negated clause is left
out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harvester.query.syntax import OPERATORS, Node, Not, Or, Query, Term
from harvester.text.fold import TOKEN, fold_tokens


@dataclass(frozen=True, slots=True)
class _Dialect:
    """How one API writes a query. ``term(t, positive)`` returns an atomic clause; for a
    negated term it returns None when the API cannot express it exactly."""

    term: Callable[[Term, bool], str | None]
    and_op: str
    or_op: str
    and_not: str


def _render(node: Node, d: _Dialect, positive: bool) -> tuple[str, bool] | None:
    """(text, atomic), or None if ``node`` under this polarity cannot be said safely."""
    if isinstance(node, Term):
        clause = d.term(node, positive)
        return None if clause is None else (clause, True)
    if isinstance(node, Not):
        raise ValueError("a NOT outside an AND cannot be translated")  # parse_query forbids it
    if isinstance(node, Or):
        parts = [p for c in node.children if (p := _render(c, d, positive)) is not None]
        # Dropping a branch of a negated OR excludes less: broader, so allowed.
        if not parts or (positive and len(parts) < len(node.children)):
            return None
        return parts[0] if len(parts) == 1 else (d.or_op.join(_wrap(p) for p in parts), False)
    plus = [_render(c, d, positive) for c in node.children if not isinstance(c, Not)]
    minus = [_render(c.child, d, not positive) for c in node.children if isinstance(c, Not)]
    if any(p is None for p in plus) or (not positive and any(m is None for m in minus)):
        return None  # dropping a conjunct of a negated AND would exclude more
    pos = [p for p in plus if p is not None]
    neg = [m for m in minus if m is not None]  # a dropped negated clause only broadens
    text, atomic = pos[0] if len(pos) == 1 else (d.and_op.join(_wrap(p) for p in pos), False)
    if not neg:
        return text, atomic
    base = text if atomic else f"({text})"
    return base + "".join(d.and_not + _wrap(m) for m in neg), False


def _wrap(part: tuple[str, bool]) -> str:
    return part[0] if part[1] else f"({part[0]})"


def _translate(query: Query, dialect: _Dialect) -> str:
    rendered = _render(query.root, dialect, True)
    assert rendered is not None  # a positive rendering always exists
    return rendered[0]


def _simple(term: Term) -> bool:
    """One plain word (no space, hyphen or apostrophe), so no API needs it quoted."""
    return term.text.isalnum() and term.text.upper() not in ("AND", "OR", "NOT", "ANDNOT")


def _unit(term: Term) -> str | None:
    """A single clause with exact meaning in Lucene-like syntaxes: word, word*, "phrase"."""
    if _simple(term):
        return term.text + ("*" if term.truncated else "")
    return None if term.truncated else f'"{term.text}"'


def _split_truncated(term: Term) -> tuple[str, str]:
    """A truncated phrase as (leading words as one clause, stem): "self help", group."""
    words = [m.group() for m in TOKEN.finditer(term.text)]
    head = words[:-1]
    return (head[0] if len(head) == 1 else f'"{" ".join(head)}"'), words[-1]


def _stemmed(term: Term) -> str:
    """An API without truncation: the stem as typed (approximate; relies on its stemming)."""
    return term.text if _simple(term) else f'"{term.text}"'


def _pubmed_term(term: Term, positive: bool) -> str:
    # PubMed Help: truncation works in a quoted phrase with [tiab] ("breast feed*"[tiab]),
    # on the last word only; [tiab] = title, abstract and author keywords (not MeSH).
    # Hyphenated words are searched as phrases by PubMed itself (breast-feed*).
    text = term.text + ("*" if term.truncated else "")
    if term.phrase or term.text.upper() in OPERATORS:  # lower-case "and" stays a term
        text = f'"{text}"'
    return f"{text}[tiab]"


def _europepmc_term(term: Term, positive: bool) -> str | None:
    # Europe PMC search syntax: TITLE_ABS (title or abstract) and KW (keywords) fields,
    # upper-case AND/OR/NOT, "phrases", word* wildcards; no wildcard inside a phrase is
    # documented, so a truncated phrase becomes "leading words" AND stem* (broader).
    fields = ("TITLE_ABS", "KW")
    if (unit := _unit(term)) is not None:
        return "(" + " OR ".join(f"{f}:{unit}" for f in fields) + ")"
    if not positive:
        return None
    head, stem = _split_truncated(term)
    return "(" + " OR ".join(f"({f}:{head} AND {f}:{stem}*)" for f in fields) + ")"


def _openalex_term(term: Term, positive: bool) -> str | None:
    # OpenAlex "Search": upper-case AND/OR/NOT and "phrases" work in .search filters, but
    # "searches match whole words only" (Kstem stemming, no wildcard): a truncated term is
    # sent as its stem, an approximation that can miss words the stemmer does not reduce.
    if term.truncated:
        return _stemmed(term) if positive else None
    return term.text if _simple(term) else f'"{term.text}"'


def _arxiv_term(term: Term, positive: bool) -> str | None:
    # arXiv API user manual: prefixes ti/abs/all, operators AND, OR, ANDNOT, "phrases",
    # parentheses; no truncation, so a stem is sent as typed (arXiv stems words itself).
    # Positive terms search all: (broader); negated ones only ti/abs, as local matching does.
    if term.truncated and not positive:
        return None
    unit = _stemmed(term) if term.truncated else (_unit(term) or "")
    return f"all:{unit}" if positive else f"(ti:{unit} OR abs:{unit})"


def _semanticscholar_term(term: Term, positive: bool) -> str | None:
    # Semantic Scholar /paper/search/bulk `query`: + AND, | OR, - negates, "phrase",
    # word* prefix, ( ) precedence; a * inside quotes is not a prefix, so a truncated
    # phrase becomes (leading words + stem*), broader.
    if (unit := _unit(term)) is not None:
        return unit
    if not positive:
        return None
    head, stem = _split_truncated(term)
    return f"({head} + {stem}*)"


_PUBMED = _Dialect(_pubmed_term, " AND ", " OR ", " NOT ")
_EUROPEPMC = _Dialect(_europepmc_term, " AND ", " OR ", " NOT ")
_OPENALEX = _Dialect(_openalex_term, " AND ", " OR ", " NOT ")
_ARXIV = _Dialect(_arxiv_term, " AND ", " OR ", " ANDNOT ")
_SEMANTICSCHOLAR = _Dialect(_semanticscholar_term, " + ", " | ", " + -")


def to_pubmed(query: Query) -> str:
    """E-utilities ``term``: every term tagged [tiab], explicit parentheses (PubMed reads
    Boolean operators left to right, without precedence)."""
    return _translate(query, _PUBMED)


def to_europepmc(query: Query) -> str:
    """Europe PMC REST ``query``: each term searched in TITLE_ABS or KW."""
    return _translate(query, _EUROPEPMC)


def to_crossref(query: Query) -> str:
    """Crossref ``query.bibliographic``: free text ranked by relevance, no Boolean logic, so
    the distinct words of the positive terms (no NOT terms, stems without ``*``)."""
    words: dict[str, str] = {}
    for term in query.positive_terms():
        for word in term.text.split():
            words.setdefault(" ".join(fold_tokens(word)), word)
    return " ".join(words.values())


def to_openalex(query: Query) -> str:
    """OpenAlex works filter clause ``title_and_abstract.search:…``, for ``filter=`` (whose
    values are comma-separated, so commas are removed; the parser admits none anyway)."""
    return "title_and_abstract.search:" + _translate(query, _OPENALEX).replace(",", " ")


def to_arxiv(query: Query) -> str:
    """arXiv API ``search_query`` (httpx percent-encodes spaces, quotes and parentheses)."""
    return _translate(query, _ARXIV)


def to_semanticscholar(query: Query) -> str:
    """Semantic Scholar bulk search ``query``."""
    return _translate(query, _SEMANTICSCHOLAR)


def _no_search(query: Query) -> str:
    # bioRxiv/medRxiv API (api.biorxiv.org/details) lists a date interval and has no search
    # parameter: the whole interval is fetched and the query is applied locally.
    return ""


TRANSLATORS: dict[str, Callable[[Query], str]] = {
    "pubmed": to_pubmed,
    "europepmc": to_europepmc,
    "crossref": to_crossref,
    "openalex": to_openalex,
    "arxiv": to_arxiv,
    "biorxiv": _no_search,
    "medrxiv": _no_search,
    "semanticscholar": to_semanticscholar,
}
