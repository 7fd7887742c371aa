"""Folding for comparison: whitespace collapsed; case and diacritics folded away.

No I/O; every function returns ``None`` rather than ``""`` where a value can be missing.
"""

from __future__ import annotations

import re
import unicodedata


def collapse_whitespace(value: str | None) -> str | None:
    """Runs of whitespace (including non-breaking spaces) as one space; None when empty."""
    if value is None:
        return None
    return " ".join(value.split()) or None


# --- speed helpers (private) -----------------------------------------------------------------

# The whitespace other than " " that str.split() splits on: str.isspace(), none above U+3000.
_OTHER_SPACES = tuple(c for c in map(chr, range(0x3001)) if c.isspace() and c != " ")
_ASCII_OTHER_SPACES = tuple(c for c in _OTHER_SPACES if c.isascii())
# Below this length splitting and joining is as quick as looking for whitespace to collapse.
_SHORT_TEXT = 48


def collapse_text(text: str) -> str | None:
    """``collapse_whitespace(text)`` for a str, quicker on text already collapsed (most text):
    looking for each kind of whitespace is quicker than splitting a long text into words."""
    if len(text) < _SHORT_TEXT or text[0] == " " or text[-1] == " " or "  " in text:
        return " ".join(text.split()) or None
    for space in _ASCII_OTHER_SPACES if text.isascii() else _OTHER_SPACES:
        if space in text:
            return " ".join(text.split()) or None
    return text


# --- tokens, folded for matching ---------------------------------------------------------------

_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
TOKEN = re.compile(rf"[\w{_MARKS}]+")  # callers replace "_" first (terms cannot hold one)
# Letters NFKD does not decompose but readers expect to fold (ø→o as in "Jørgensen").
_FOLD_EXTRA = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def fold_token(token: str) -> str:
    """``token`` lower-cased, its diacritics (NFKD) and punctuation folded away."""
    if token.isascii():
        return token.lower()
    decomposed = unicodedata.normalize("NFKD", token)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(c for c in folded.translate(_FOLD_EXTRA) if c.isalnum())


def fold_tokens(text: str) -> list[str]:
    """The folded tokens of ``text`` (see :func:`fold_token`), empty ones left out."""
    tokens = (fold_token(m.group()) for m in TOKEN.finditer(unicodedata.normalize("NFC", text)))
    return [t for t in tokens if t]
