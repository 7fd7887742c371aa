"""The JSON envelope every JSON API's answer comes in, read once for all of them.

A body is read as JSON (:func:`read_json`; damaged bytes and over-long numbers cost only the
record holding them, see :class:`JsonBody`), checked to be an object (:func:`expect_object`),
and its values read as the API documents them (``json_object``, ``json_list``, ``json_text``,
``json_int``: a value of another type raises :class:`UnexpectedValue` naming where it was).
Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harvester.errors import ParseError
from harvester.sources.base import LONE_SURROGATE, MAX_RECORD_BYTES
from harvester.text.fields import partial_date
from harvester.text.fold import collapse_whitespace

# --- JSON bodies -----------------------------------------------------------------------------


class TooLongNumber:
    """A JSON integer with more digits than Python converts (``sys.get_int_max_str_digits``,
    4,300 by default): kept as a marker, so only the record holding it is skipped."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"TooLongNumber({self.digits} digits)"


def _int_or_marker(text: str) -> int | TooLongNumber:
    try:
        return int(text)
    except ValueError:
        return TooLongNumber(text)


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A response body read as JSON. ``degraded`` when it could only be read leniently:
    bytes that are not UTF-8 kept as lone surrogates (``surrogateescape``), or integers too
    long to convert kept as :class:`TooLongNumber`; the records holding them are skipped."""

    data: Any
    size: int
    degraded: bool = False

    def screen(
        self, max_record_bytes: int = MAX_RECORD_BYTES
    ) -> Callable[[Any], str | None] | None:
        """A check of one item for :func:`parse_items`, or None when no item can fail it: a
        clean body no larger than the cap (the common case: nothing is walked)."""
        if not self.degraded and self.size <= max_record_bytes:
            return None
        if not self.degraded:
            return lambda item: _size_problem(item, max_record_bytes)
        return lambda item: screen_value(item, max_record_bytes, degraded=True)


def _size_problem(value: Any, max_record_bytes: int) -> str | None:
    size = _estimated_size(value)
    if size > max_record_bytes:
        return f"larger than the record size cap of {max_record_bytes:,} bytes (about {size:,})"
    return None


def _estimated_size(value: Any) -> int:
    """About the JSON size of one record from its first level only: strings by their length,
    lists and objects by their count of members. Walking the whole record would cost a sixth
    of parsing it; an enormous abstract or author list shows at this level, and what does
    not is caught on the Record (:func:`record_size`)."""
    if isinstance(value, Mapping):
        members: Iterable[Any] = value.values()
    elif isinstance(value, list | tuple):
        members = value
    else:
        return len(value) if isinstance(value, str) else 8
    size = 0
    for member in members:
        if isinstance(member, str):
            size += len(member)
        elif isinstance(member, Mapping | list | tuple):
            size += 16 * len(member)
    return size


def screen_value(value: Any, max_record_bytes: int, *, degraded: bool = True) -> str | None:
    """Why one JSON value (a record) cannot be read, or None: holding bytes that were not
    UTF-8 or a number too long to convert (looked for when ``degraded``), or over
    ``max_record_bytes`` (the length of all its keys and strings, about its size as JSON)."""
    size = 0
    stack = [value]
    while stack:  # a loop, not recursion: the value may be as deep as the JSON decoder allows
        node = stack.pop()
        if isinstance(node, str):
            size += len(node) + 2
            if degraded and LONE_SURROGATE.search(node):
                return "holds bytes that are not UTF-8 (the API's text is damaged)"
        elif isinstance(node, dict):
            size += 2 * len(node) + 2
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            size += len(node) + 2
            stack.extend(node)
        elif isinstance(node, TooLongNumber):
            return f"holds a number of {node.digits} digits, more than can be read"
        else:
            size += 5
        if size > max_record_bytes:
            return f"larger than the record size cap of {max_record_bytes:,} bytes"
    return None


def read_json(body: bytes, where: str, *, problem: str = "malformed or truncated JSON") -> JsonBody:
    """A response body as JSON. A byte that is not UTF-8 or an integer too long to convert
    costs only the record holding it (the body is read again leniently, see
    :class:`JsonBody`); ParseError ``"{where}: {problem}: {error}"`` if the body is not JSON,
    or is nested deeper than the decoder's recursion allows."""
    try:
        return JsonBody(json.loads(body), len(body))
    except json.JSONDecodeError as error:
        raise ParseError(f"{where}: {problem}: {error}") from error
    except RecursionError as error:
        raise ParseError(f"{where}: {problem}: nested too deeply to read") from error
    except ValueError as error:  # UnicodeDecodeError, or an integer of over 4,300 digits
        first = error
    encoding = json.detect_encoding(body)
    if not encoding.startswith("utf-8"):
        raise ParseError(f"{where}: {problem}: {first}") from first
    try:
        text = body.decode(encoding, "surrogateescape")
        return JsonBody(json.loads(text, parse_int=_int_or_marker), len(body), degraded=True)
    except RecursionError as error:
        raise ParseError(f"{where}: {problem}: nested too deeply to read") from error
    except ValueError as error:
        raise ParseError(f"{where}: {problem}: {error}") from error


def load_json(body: bytes, where: str, *, problem: str = "malformed or truncated JSON") -> Any:
    """The JSON value of a response body, read as :func:`read_json` reads it (ParseError if
    the body is not JSON)."""
    return read_json(body, where, problem=problem).data


def expect_object(data: Any, where: str) -> dict[str, Any]:
    """``data`` if it is a JSON object, else ParseError naming what it is instead."""
    if not isinstance(data, dict):
        raise ParseError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data


# --- JSON values -----------------------------------------------------------------------------
# JSON APIs (OpenAlex, Semantic Scholar) send values whose type the parser must not trust:
# these read one value as the documented type or raise UnexpectedValue naming where it was,
# so the parser can skip that one record and say why.


class UnexpectedValue(ValueError):
    """A JSON value of another type than the API documents; the message says where."""


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "?")


def json_object(value: object, where: str) -> dict[str, object] | None:
    """``value`` if it is a JSON object, None if null; UnexpectedValue otherwise."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    raise UnexpectedValue(f"{where}: expected an object, got {_json_type(value)}")


def json_list(value: object, where: str) -> list[object]:
    """``value`` if it is a JSON array, ``[]`` if null; UnexpectedValue otherwise."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise UnexpectedValue(f"{where}: expected an array, got {_json_type(value)}")


def json_text(value: object, where: str, *, numbers: bool = False) -> str | None:
    """``value`` if it is a string (numbers too when ``numbers``: volume 12), None if null."""
    if value is None or isinstance(value, str):
        return value
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise UnexpectedValue(f"{where}: expected a string, got {_json_type(value)}")


def json_date(value: str | None) -> str | None:
    """The partial date of a JSON API's ISO date text (``2024-03-05``, ``2024-03``,
    ``2024``); none when it is empty."""
    parts = (value or "").strip().split("-")
    return partial_date(*parts[:3]) if parts[0] else None


def json_int(value: object, where: str) -> int | None:
    """``value`` if it is an integer (or a string of digits), None if null."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    # ASCII digits only ("²".isdigit() is true but int() refuses it), and few of them.
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    raise UnexpectedValue(f"{where}: expected an integer, got {_json_type(value)}")


# --- fields of one item ----------------------------------------------------------------------
# Crossref and Europe PMC items are read field by field: a field of another shape than the API
# documents makes its item a BadItem (skipped, with the field named), never the whole page.


class BadItem(ValueError):
    """One item of a page that cannot become a Record; the message says why. The rest of its
    page is still used."""


def item_text(data: Mapping[str, Any] | None, key: str) -> str | None:
    """``data[key]`` as text, whitespace collapsed (a number as its digits); None when
    ``data`` or the value is missing or null; BadItem for another type."""
    if data is None:
        return None
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadItem(f"{key} is a {type(value).__name__}, expected text")
    return collapse_whitespace(str(value))


def item_object(data: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    """``data[key]`` if it is an object; None when ``data`` or the value is missing or null;
    BadItem for another type."""
    if data is None:
        return None
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadItem(f"{key} is a {type(value).__name__}, expected an object")
    return value


def item_list(data: Mapping[str, Any], key: str, path: str | None = None) -> Iterator[Any]:
    """The members of ``data[key]`` if it is a list, none if missing or null; BadItem (naming
    ``path``, else ``key``) for another type."""
    value = data.get(key)
    if value is None:
        return iter(())
    if not isinstance(value, list):
        raise BadItem(f"{path or key} is a {type(value).__name__}, expected a list")
    return iter(value)
