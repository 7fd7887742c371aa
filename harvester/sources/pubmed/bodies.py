"""PubMed response bodies checked and read: XML parsed without DTDs, entities or network,
and the errors NCBI sends inside a 200 response raised as ParseError (pure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree

from harvester.errors import ParseError
from harvester.sources.envelope import read_json
from harvester.text.fold import collapse_whitespace

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element


# --- bodies ----------------------------------------------------------------------------------


def response_where(url: str) -> str:
    return f"PubMed response from {url}" if url else "PubMed response"


def read_xml(body: bytes, url: str) -> _Element:
    """The root element; ParseError for empty, malformed or truncated bodies and NCBI errors."""
    check_body(body, url)
    try:
        root = etree.fromstring(body, etree.XMLParser(**PARSER_OPTIONS))
    except etree.XMLSyntaxError as error:
        raise ParseError(f"{response_where(url)}: malformed or truncated XML: {error}") from error
    raise_ncbi_error(root.text if root.tag == "ERROR" else root.findtext("ERROR"), url)
    return root


# No DTD loading, no entity expansion, no network: the body is untrusted input.
PARSER_OPTIONS: dict[str, bool] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "recover": False,
    "huge_tree": True,
}


def check_body(body: bytes, url: str) -> None:
    """ParseError for an empty body and for JSON (naming the error NCBI sent, if any)."""
    start = body.lstrip()[:1]
    if not start:
        raise ParseError(f"{response_where(url)}: empty body")
    if start in (b"{", b"["):
        read_json_object(body, url)  # raises with the error it names, if any
        raise ParseError(f"{response_where(url)}: expected XML, got JSON")


def raise_ncbi_error(text: str | None, url: str) -> None:
    # NCBI reports failures inside a 200 response: <eSummaryResult><ERROR>…</ERROR>.
    error_text = collapse_whitespace(text)
    if error_text is not None:
        raise ParseError(f"{response_where(url)}: NCBI error: {error_text}")


def read_json_object(body: bytes, url: str) -> dict[str, Any]:
    data = read_json(body, response_where(url), problem="malformed JSON").data
    if not isinstance(data, dict):
        raise ParseError(
            f"{response_where(url)}: expected a JSON object, got {type(data).__name__}"
        )
    # E-utilities JSON errors, e.g. {"error":"API rate limit exceeded", …}.
    if data.get("error"):
        raise ParseError(f"{response_where(url)}: NCBI error: {data['error']}")
    return data
