"""The one markup-to-text walk: HTML, JATS and MathML fragments as plain text.

``markup_to_text`` reads a fragment with an HTML parser; ``strip_markup`` removes only the
tags known to turn up in plain-text fields (LaTeX's ``<`` stays); ``markup_sections`` cuts a
structured abstract at its headings. Sub- and superscripts are written as Unicode script
characters where they can be. No I/O.
"""

from __future__ import annotations

import html
import re

from bs4 import BeautifulSoup
from bs4.element import (
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    ProcessingInstruction,
    Tag,
)

from harvester.records import Section
from harvester.text.fold import collapse_whitespace

# A "<" that cannot start a tag ("p<0.05", "< 5") is text; escaped so the HTML parser keeps it.
_STRAY_LT = re.compile(r"<(?![A-Za-z/!?])")
_SKIPPED_NODES = (Comment, Declaration, Doctype, ProcessingInstruction)
# Elements whose boundaries separate words (HTML and JATS block elements); inline ones
# (i, b, sub, sup, sc) join their neighbours: H<sub>2</sub>O.
_BLOCKS = frozenset(
    {
        "p", "div", "br", "hr", "li", "ul", "ol", "title", "sec", "label", "caption",
        "abstract", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "list",
        "list-item", "table", "def-item", "term", "def", "disp-formula",
    }
)  # fmt: skip
# MathML annotations repeat the formula as TeX or another markup; the presentation form is enough.
_MATH_SKIPPED = frozenset({"annotation", "annotation-xml", "none", "mprescripts"})


# Superscripts and subscripts (HTML/JATS <sup>/<sub>, MathML msup/msub/mmultiscripts) are
# written with Unicode's superscript and subscript characters when every character has one
# ("³He", "Ca²⁺", "H₂S", "F₁", "⁹⁹ᵐTc"), so "3He/129Xe" keeps its meaning and reads as it
# was printed; NFKD (which query matching and dedup apply) folds them back to "3He". Text
# that cannot be written so is marked instead: "^{1,2,3}", "_{O2}".
_SUPERSCRIPT = str.maketrans(
    "0123456789+-\u2212=()abcdefghijklmnoprstuvwxyz",
    "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ",
)
_SUBSCRIPT = str.maketrans(
    "0123456789+-\u2212=()aehijklmnoprstuvx",
    "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ",
)
_SUPERSCRIPTS = frozenset("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ")
_SUBSCRIPTS = frozenset("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")
# Signs printed raised anyway, kept as they are: "Tween<sup>®</sup>", "p<sup>*</sup>".
_RAISED_SIGNS = frozenset("®™©*†‡§°′″")


def superscript(text: str) -> str:
    """``text`` as superscript characters (``"2+"`` -> ``"²⁺"``), else ``"^{text}"``."""
    return _scripted(text, _SUPERSCRIPT, _SUPERSCRIPTS, "^")


def subscript(text: str) -> str:
    """``text`` as subscript characters (``"2"`` -> ``"₂"``), else ``"_{text}"``."""
    return _scripted(text, _SUBSCRIPT, _SUBSCRIPTS, "_")


def _scripted(text: str, table: dict[int, int], done: frozenset[str], mark: str) -> str:
    text = text.strip()
    if not text:
        return ""
    written = text.translate(table)
    if all(c in done or c in _RAISED_SIGNS for c in written):
        return written
    return f"{mark}{{{' '.join(text.split())}}}"


def markup_to_text(value: str | None) -> str | None:
    """Text of an HTML/JATS/MathML fragment: tags removed, entities unescaped, whitespace collapsed.

    ``<i>in vitro</i>`` -> ``in vitro``, ``H<sub>2</sub>O`` -> ``H₂O`` (see
    :func:`superscript`); MathML is written out compactly
    (``<mmultiscripts>He<mprescripts/><none/>3</mmultiscripts>`` -> ``³He``).
    Strings without ``<`` skip the parser.
    """
    if value is None:
        return None
    if "<" not in value:
        return collapse_whitespace(html.unescape(value))
    soup = BeautifulSoup(_STRAY_LT.sub("&lt;", value), "lxml")
    parts: list[str] = []
    _append_text(soup, parts)
    return collapse_whitespace("".join(parts))


def _local_name(tag: Tag) -> str:
    # The HTML parser keeps prefixes as part of the name ("mml:math", "jats:p").
    return tag.name.rpartition(":")[2].lower()


def _append_text(node: Tag, parts: list[str]) -> None:
    for child in node.children:
        if isinstance(child, Tag):
            name = _local_name(child)
            if name in {"script", "style"}:
                continue
            if name == "math":
                parts.append(_math_text(child))
            elif name in _BLOCKS:
                parts.append(" ")
                _append_text(child, parts)
                parts.append(" ")
            elif name in _SCRIPTS:
                parts.append(_script_text(child, name))
            else:
                _append_text(child, parts)
        elif isinstance(child, NavigableString) and not isinstance(child, _SKIPPED_NODES):
            parts.append(str(child))


_SCRIPTS = frozenset({"sup", "sub"})


def _script_text(node: Tag, name: str) -> str:
    inner: list[str] = []
    _append_text(node, inner)
    text = "".join(inner)
    return superscript(text) if name == "sup" else subscript(text)


def _math_text(node: Tag) -> str:
    """MathML as one compact run: whitespace between tokens is layout, not content."""
    name = _local_name(node)
    if name in _MATH_SKIPPED:
        return ""
    if name in {"mi", "mn", "mo", "ms"}:
        return node.get_text().strip()
    if name == "mtext":
        return " ".join(node.get_text().split()) or " "
    children = [c for c in node.children if isinstance(c, Tag)]
    if name == "mmultiscripts":
        # base, (post-sub, post-sup)…, <mprescripts/>, (pre-sub, pre-sup)… : isotopes read
        # "³He", "¹²⁹Xe" (<none/> is an empty script).
        names = [_local_name(c) for c in children]
        cut = names.index("mprescripts") if "mprescripts" in names else len(children)
        base = _math_text(children[0]) if cut > 0 else ""
        return _script_pairs(children[cut + 1 :]) + base + _script_pairs(children[1:cut])
    texts = [_math_text(c) for c in children]
    if name in {"msup", "msub"} and len(texts) == 2:
        return texts[0] + (superscript if name == "msup" else subscript)(texts[1])
    if name == "msubsup" and len(texts) == 3:
        return texts[0] + subscript(texts[1]) + superscript(texts[2])
    if name == "mfrac" and len(texts) == 2:
        return f"{texts[0]}/{texts[1]}"
    if name == "msqrt":
        return f"√({''.join(texts)})"
    return "".join(texts)


def _script_pairs(children: list[Tag]) -> str:
    """MathML's (subscript, superscript) pairs of an mmultiscripts, written out."""
    parts = []
    for index in range(0, len(children), 2):
        parts.append(subscript(_math_text(children[index])))
        if index + 1 < len(children):
            parts.append(superscript(_math_text(children[index + 1])))
    return "".join(parts)


# --- plain text with stray markup ------------------------------------------------------------

# HTML and JATS tags that turn up in preprint servers' plain-text fields (arXiv, bioRxiv).
# Only these are removed: a "<" that does not open one of them is text, as in LaTeX
# ("$n<k$", "$a <b$"), which markup_to_text would read as the start of an element.
_KNOWN_TAG = re.compile(
    r"</?(?P<name>i|b|u|em|strong|sub|sup|sc|span|font|a|tt|code|p|br|hr|div|li|ul|ol|h[1-6]"
    r"|italic|bold|underline|monospace|jats:[a-z-]+)(?:\s[^<>]*)?/?>",
    re.I,
)
_BLOCK_TAGS = frozenset({"p", "br", "hr", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4"})


def strip_markup(value: str | None) -> str | None:
    """Plain text of a field that is meant to be plain: known HTML/JATS tags removed,
    entities unescaped, whitespace collapsed; any other ``<`` (LaTeX) stays. MathML goes
    through :func:`markup_to_text`."""
    if value is None:
        return None
    if re.search(r"<(?:\w+:)?math[\s>]", value):
        return markup_to_text(value)

    def replace(match: re.Match[str]) -> str:
        name = match.group("name").lower()
        return " " if name.removeprefix("jats:") in _BLOCK_TAGS | {"title", "sec"} else ""

    if "<su" in value:
        value = _SCRIPT_TAG.sub(_scripted_match, value)
    return collapse_whitespace(html.unescape(_KNOWN_TAG.sub(replace, value)))


_SCRIPT_TAG = re.compile(r"<(sup|sub)(?:\s[^<>]*)?>([^<]*)</\1\s*>", re.I)


def _scripted_match(match: re.Match[str]) -> str:
    text = html.unescape(match.group(2))
    return (superscript if match.group(1).lower() == "sup" else subscript)(text)


# --- structured abstracts --------------------------------------------------------------------

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "title"})
_BOLD = frozenset({"b", "strong"})
# Containers in which a leading bold run reads as a section label ("<p><b>Methods:</b> …").
_LABEL_PARENTS = frozenset({"[document]", "html", "body", "p", "div", "sec", "abstract"})
_MAX_LABEL_CHARS = 60
# A first heading that only announces the abstract is not a section label
# (Crossref JATS: <jats:title>Abstract</jats:title>, Europe PMC <h4>Summary</h4>).
_ABSTRACT_HEADINGS = frozenset({"abstract", "summary", "graphical abstract"})


def markup_sections(value: str | None) -> tuple[Section, ...]:
    """Labelled Sections of an HTML or JATS abstract; plain text gives one unlabelled Section.

    Labels come from headings (``<h4>Background</h4>``, JATS ``<sec><title>Methods</title>``)
    and from a bold run opening a paragraph (``<p><b>Results:</b> …``); the trailing colon is
    dropped. Text before the first label is an unlabelled Section; an opening "Abstract"
    heading is dropped. Inline markup is removed as :func:`markup_to_text` does.
    """
    if value is None:
        return ()
    if "<" not in value:
        text = collapse_whitespace(html.unescape(value))
        return (Section(label=None, text=text),) if text else ()
    soup = BeautifulSoup(_STRAY_LT.sub("&lt;", value), "lxml")
    pieces: list[tuple[str | None, list[str]]] = [(None, [])]
    _split_sections(soup, pieces)
    sections: list[Section] = []
    for index, (label, parts) in enumerate(pieces):
        text = collapse_whitespace("".join(parts))
        if index == 1 and label is not None and label.lower() in _ABSTRACT_HEADINGS:
            label = None  # an opening "Abstract" heading (index 0 is the text before it)
        if text:
            sections.append(Section(label=label, text=text))
    return tuple(sections)


def _split_sections(node: Tag, pieces: list[tuple[str | None, list[str]]]) -> None:
    for child in node.children:
        if isinstance(child, Tag):
            name = _local_name(child)
            if name in {"script", "style"}:
                continue
            if name in _HEADINGS or (name in _BOLD and _opens_paragraph(child)):
                label = _label(child)
                if label is not None:
                    pieces.append((label, []))
                    continue
            parts = pieces[-1][1]
            if name == "math":
                parts.append(_math_text(child))
            elif name in _SCRIPTS:
                parts.append(_script_text(child, name))
            elif name in _BLOCKS:
                parts.append(" ")
                _split_sections(child, pieces)
                pieces[-1][1].append(" ")
            else:  # html/body wrappers and inline markup: headings may still be inside
                _split_sections(child, pieces)
        elif isinstance(child, NavigableString) and not isinstance(child, _SKIPPED_NODES):
            pieces[-1][1].append(str(child))


def _opens_paragraph(tag: Tag) -> bool:
    """A bold run that is the first thing in its paragraph, or follows a line break."""
    parent = tag.parent
    if parent is None or parent.name is None:
        return False
    if parent.name.rpartition(":")[2] not in _LABEL_PARENTS:
        return False
    previous = tag.previous_sibling
    while isinstance(previous, NavigableString) and not str(previous).strip():
        previous = previous.previous_sibling
    return previous is None or (isinstance(previous, Tag) and _local_name(previous) == "br")


def _label(tag: Tag) -> str | None:
    text = markup_to_text(str(tag.decode_contents()))
    if text is None:
        return None
    text = text.rstrip(":.").strip()
    if not text or len(text) > _MAX_LABEL_CHARS or not any(c.isalpha() for c in text):
        return None
    return text
