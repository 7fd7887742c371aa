"""PubMed esearch responses, XML or JSON, read to an ESearchResult (pure).

::

    esearch.fcgi?db=pubmed&term=…&usehistory=y -> parse_esearch -> ESearchResult (ids, WebEnv)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harvester.errors import ParseError
from harvester.sources.pubmed.bodies import read_json_object, read_xml, response_where
from harvester.text.fold import collapse_whitespace

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element

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
        return _esearch_json(read_json_object(body, url), url)
    root = read_xml(body, url)
    if root.tag != "eSearchResult":
        raise ParseError(f"{response_where(url)}: expected <eSearchResult>, got <{root.tag}>")
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
        raise ParseError(f'{response_where(url)}: no "esearchresult" in JSON')
    if result.get("ERROR"):
        raise ParseError(f"{response_where(url)}: NCBI error: {result['ERROR']}")

    def listed(key: str) -> tuple[str, ...]:
        found = result.get(key) or {}
        if not isinstance(found, dict):
            raise ParseError(
                f"{response_where(url)}: {key} is {type(found).__name__}, not an object"
            )
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
        raise ParseError(f"{response_where(url)}: <{name}> is {value!r}, not a number")
    return int(text)
