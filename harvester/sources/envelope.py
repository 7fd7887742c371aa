"""JSON values read as the API documents them."""

from __future__ import annotations

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
