"""Stored works as BibTeX, for classic BibTeX and biber alike (see the notes below)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import TextIO

from harvester.exporters.kinds import type_of
from harvester.records import Author, StoredWork

# --- BibTeX ---------------------------------------------------------------------------------
#
# The file targets classic BibTeX (8-bit, plain.bst and the like) and biber alike: every
# character LaTeX has a command for is written as that command in braces ({\'e}, {\&},
# {$\alpha$}), so the file is ASCII wherever it can be and compiles under pdflatex with no
# package; BibTeX sorts, abbreviates and purifies such braced commands correctly. Characters with
# no LaTeX command (Hangul, CJK, Cyrillic, ...) stay UTF-8: biber reads them, BibTeX copies the
# bytes, and the document needs that script's setup (CJKutf8, or xelatex with a font).

# LaTeX's special characters; braced, so that a title starting with one is still protected
# and BibTeX's brace count is never upset (a bare "\{" would open a group for BibTeX)
_TEX_SPECIALS: dict[str, str] = {
    "\\": r"{\textbackslash}",
    "{": r"{\textbraceleft}",
    "}": r"{\textbraceright}",
    "$": r"{\$}",
    "&": r"{\&}",
    "%": r"{\%}",
    "#": r"{\#}",
    "_": r"{\_}",
    "~": r"{\textasciitilde}",
    "^": r"{\textasciicircum}",
    "<": r"{\textless}",
    ">": r"{\textgreater}",
    "|": r"{\textbar}",
    "\u00a0": "~",
}
# text commands (the LaTeX kernel's, in its default OT1/TS1 encodings: no package needed; the
# T1-only ones, such as \\th or \\guillemotleft, are left as UTF-8 for a T1 document)
_TEX_TEXT: dict[str, str] = {
    "ß": r"\ss", "æ": r"\ae", "Æ": r"\AE", "œ": r"\oe", "Œ": r"\OE", "ø": r"\o", "Ø": r"\O",
    "ł": r"\l", "Ł": r"\L", "ı": r"\i", "ȷ": r"\j", "‘": "`", "’": "'", "“": "``", "”": "''",
    "–": "--", "—": "---", "‒": "--", "―": "---", "‐": "-", "‑": "-", "…": r"\textellipsis",
    "•": r"\textbullet", "†": r"\textdagger", "‡": r"\textdaggerdbl", "§": r"\textsection",
    "¶": r"\textparagraph", "©": r"\textcopyright", "®": r"\textregistered",
    "™": r"\texttrademark", "°": r"\textdegree", "º": r"\textordmasculine",
    "ª": r"\textordfeminine", "£": r"\textsterling", "€": r"\texteuro", "¢": r"\textcent",
    "¥": r"\textyen", "¡": "!`", "¿": "?`", "‰": r"\textperthousand", "´": r"\'{ }",
    "˚": r"\r{ }", "˙": r"\.{ }", "¨": r'\"{ }', "¯": r"\={ }", "¸": r"\c{ }", "˜": r"\~{ }",
    "ˆ": r"\^{ }", "ˇ": r"\v{ }", "˘": r"\u{ }", "˝": r"\H{ }", "\u2009": r"\,", "\u202f": r"\,",
    "½": r"\textonehalf", "¼": r"\textonequarter", "¾": r"\textthreequarters",
    "±": r"\textpm", "×": r"\texttimes", "÷": r"\textdiv", "·": r"\textperiodcentered",
    "√": r"\textsurd", "→": r"\textrightarrow", "←": r"\textleftarrow", "↑": r"\textuparrow",
    "↓": r"\textdownarrow", "µ": r"\textmu", "−": r"\textminus", "¬": r"\textlnot",
    "¹": r"\textonesuperior", "²": r"\texttwosuperior", "³": r"\textthreesuperior",
}  # fmt: skip
# math commands, for the signs LaTeX has no text command for (and Greek)
_TEX_MATH: dict[str, str] = {
    "∓": r"\mp", "≤": r"\leq", "≥": r"\geq", "⩽": r"\leq", "⩾": r"\geq", "≠": r"\neq",
    "≈": r"\approx", "≡": r"\equiv", "∼": r"\sim", "≃": r"\simeq", "≅": r"\cong",
    "∝": r"\propto", "∞": r"\infty", "∑": r"\sum", "∏": r"\prod", "∫": r"\int",
    "∂": r"\partial", "∇": r"\nabla", "∈": r"\in", "∉": r"\notin", "⊂": r"\subset",
    "⊆": r"\subseteq", "⊃": r"\supset", "⊇": r"\supseteq", "∪": r"\cup", "∩": r"\cap",
    "∅": r"\emptyset", "∀": r"\forall", "∃": r"\exists", "∧": r"\wedge", "∨": r"\vee",
    "↔": r"\leftrightarrow", "⇒": r"\Rightarrow", "⇐": r"\Leftarrow", "⇔": r"\Leftrightarrow",
    "≪": r"\ll", "≫": r"\gg", "∗": r"\ast", "∘": r"\circ", "⊕": r"\oplus", "⊗": r"\otimes",
    "⟨": r"\langle", "⟩": r"\rangle", "‖": r"\|", "ℓ": r"\ell", "ℏ": r"\hbar", "′": "'",
    "″": "''", "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta",
    "ε": r"\epsilon", "ϵ": r"\epsilon", "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta",
    "ϑ": r"\vartheta", "ι": r"\iota", "κ": r"\kappa", "λ": r"\lambda", "μ": r"\mu",
    "ν": r"\nu", "ξ": r"\xi", "ο": "o", "π": r"\pi", "ϖ": r"\varpi", "ρ": r"\rho",
    "ϱ": r"\varrho", "σ": r"\sigma", "ς": r"\varsigma", "τ": r"\tau", "υ": r"\upsilon",
    "φ": r"\phi", "ϕ": r"\phi", "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega",
    "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi",
    "Π": r"\Pi", "Σ": r"\Sigma", "Υ": r"\Upsilon", "Φ": r"\Phi", "Ψ": r"\Psi",
    "Ω": r"\Omega", "⁰": "^{0}", "⁴": "^{4}", "⁵": "^{5}", "⁶": "^{6}", "⁷": "^{7}",
    "⁸": "^{8}", "⁹": "^{9}", "⁺": "^{+}", "⁻": "^{-}", "₀": "_{0}", "₁": "_{1}", "₂": "_{2}",
    "₃": "_{3}", "₄": "_{4}", "₅": "_{5}", "₆": "_{6}", "₇": "_{7}", "₈": "_{8}", "₉": "_{9}",
}  # fmt: skip
# combining marks (after NFD) -> LaTeX accent commands
_TEX_ACCENTS: dict[str, str] = {
    "\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=", "\u0306": "u",
    "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H", "\u030c": "v", "\u0323": "d",
    "\u0327": "c", "\u0328": "k", "\u0331": "b",
}  # fmt: skip
_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
# dropped: soft hyphen, zero-width characters, byte-order mark
_INVISIBLE = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")


def _tex_accented(char: str) -> str | None:
    """``{\\'e}`` for é: an ASCII letter under accents LaTeX has commands for, else None."""
    decomposed = unicodedata.normalize("NFD", char)
    base, marks = decomposed[0], decomposed[1:]
    if not marks or not base.isascii() or not all(m in _TEX_ACCENTS for m in marks):
        return None
    text = base  # í is {\'i}, as LaTeX's own UTF-8 reading has it (biber and citation-js agree)
    for mark in marks:
        text = f"\\{_TEX_ACCENTS[mark]}{{{text}}}"
    return f"{{{text}}}"


def tex_escape(text: str) -> str:
    """Plain text as the value of a BibTeX field (see the comment above for what it targets)."""
    out: list[str] = []
    script: tuple[str, list[str]] | None = None  # a run of super- or subscript characters
    for char in " ".join(unicodedata.normalize("NFC", text).split()):
        kind = _script_kind(char)
        if script is not None and kind != script[0]:
            out.append(f"{{\\text{script[0]}script{{{''.join(script[1])}}}}}")
            script = None
        if kind is not None:
            # ³He, Ca²⁺, H₂S (normalize.py writes markup scripts so): LaTeX's own commands,
            # which every reader decodes to the plain characters
            plain = unicodedata.normalize("NFKC", char)
            if script is None:
                script = (kind, [])
            script[1].append(tex_escape(plain) if plain != char else plain)
            continue
        if char.isascii() and char not in _TEX_SPECIALS:
            if char.isprintable():
                out.append(char)
        elif char in _TEX_SPECIALS:
            out.append(_TEX_SPECIALS[char])
        elif char in _TEX_TEXT:
            out.append(f"{{{_TEX_TEXT[char]}}}")
        elif char in _TEX_MATH:
            out.append(f"{{${_TEX_MATH[char]}$}}")
        elif char in _LIGATURES:
            out.append(_LIGATURES[char])
        elif char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            continue
        elif unicodedata.category(char) == "Zs":
            out.append(" ")
        else:
            out.append(_tex_accented(char) or char)
    if script is not None:
        out.append(f"{{\\text{script[0]}script{{{''.join(script[1])}}}}}")
    return " ".join("".join(out).split())  # a dropped character may have left two spaces


def _script_kind(char: str) -> str | None:
    """Whether a character is a Unicode superscript ("super"), subscript ("sub"), or neither."""
    tag = unicodedata.decomposition(char).split(" ", 1)[0]
    return {"<super>": "super", "<sub>": "sub"}.get(tag)


def _tex_verbatim(value: str) -> str:
    """DOIs and URLs are verbatim for biblatex: raw, but with BibTeX's braces kept balanced."""
    escapes = {"{": "%7B", "}": "%7D", "\\": "%5C"}
    return "".join(escapes.get(c, c) for c in value if c.isprintable())


_BIBTEX_AND = re.compile(r"\band\b", re.IGNORECASE)


def _bibtex_name_part(part: str) -> str:
    """One part of a person's name. A part holding a comma or the word "and" is braced (BibTeX
    would split the name there); a word starting with a character left as UTF-8 gets that
    character braced, so that 8-bit BibTeX abbreviates it whole instead of cutting its bytes."""
    words = []
    for word in tex_escape(part).split(" "):
        if word and not word[0].isascii():
            word = f"{{{word[0]}}}{word[1:]}"
        words.append(word)
    text = " ".join(words)
    return f"{{{text}}}" if "," in text or _BIBTEX_AND.search(text) else text


def _bibtex_author(author: Author) -> str:
    if author.collective:  # braced: one name, never split at its "and"s or commas
        return f"{{{tex_escape(author.collective)}}}"
    parts = [_bibtex_name_part(p) for p in (author.family, author.given) if p]
    return ", ".join(parts)


def _bibtex_key(work: StoredWork) -> str:
    """First author's family name, year and work id: unique, and ASCII (LaTeX's \\cite under
    pdflatex and BibTeX both choke on other keys)."""
    r = work.record
    first = next((a.family or a.collective for a in r.authors if a.family or a.collective), "")
    word = unicodedata.normalize("NFKD", (first or "anon").split()[0])
    stem = "".join(c for c in word if c.isascii() and c.isalnum()) or "anon"
    return f"{stem.lower()}{r.year or ''}w{work.id}"


def _bibtex_pages(pages: str) -> str:
    """A page range with BibTeX's en dash ("--"), whatever dash the source used."""
    return "--".join(tex_escape(p) for p in re.split(r"\s*[-\u2010-\u2015]+\s*", pages))


def bibtex_entry(work: StoredWork) -> str:
    """One work as a BibTeX entry. The title is braced whole, so styles that lower-case titles
    (plain.bst makes "R&D" and "Tobin's Q" into "r&d" and "tobin's q") print it as recorded."""
    r = work.record
    entry_type = type_of(work)[1]
    venue_field = {"article": "journal", "inproceedings": "booktitle", "incollection": "booktitle"}
    fields: list[tuple[str, str | None]] = [
        ("title", f"{{{tex_escape(r.title)}}}" if r.title else None),
        ("author", " and ".join(_bibtex_author(a) for a in r.authors) or None),
        (venue_field.get(entry_type, "howpublished"), tex_escape(r.venue) if r.venue else None),
        ("year", str(r.year) if r.year else None),
        ("volume", tex_escape(r.volume) if r.volume else None),
        ("number", tex_escape(r.issue) if r.issue else None),
        ("pages", _bibtex_pages(r.pages) if r.pages else None),
        ("doi", _tex_verbatim(r.ids.doi) if r.ids.doi else None),
        ("pmid", _tex_verbatim(r.ids.pmid) if r.ids.pmid else None),
        ("pmcid", _tex_verbatim(r.ids.pmcid) if r.ids.pmcid else None),
        # biblatex's eprint and eprinttype; archiveprefix for the arXiv-aware .bst styles
        ("eprint", _tex_verbatim(r.ids.arxiv) if r.ids.arxiv else None),
        ("eprinttype", "arxiv" if r.ids.arxiv else None),
        ("archiveprefix", "arXiv" if r.ids.arxiv else None),
        ("url", _tex_verbatim(r.url) if r.url else None),
        ("abstract", tex_escape(r.abstract) if r.abstract else None),
    ]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@{entry_type}{{{_bibtex_key(work)},\n{body}\n}}\n"


def write_bibtex(works: Iterable[StoredWork], out: TextIO) -> int:
    """BibTeX (keys: first author, year and work id, unique), one entry per work."""
    count = 0
    for work in works:
        if count:
            out.write("\n")
        out.write(bibtex_entry(work))
        count += 1
    return count


__all__ = ["bibtex_entry", "tex_escape", "write_bibtex"]
