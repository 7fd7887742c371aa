"""Stored works out as files for reference managers and feed readers.

JSONL (the Record schema), CSV (the dedup CSV columns), RIS (rispy), BibTeX (written here, for
classic BibTeX and biber alike: see its section), CSL-JSON (the Citation Style Language's JSON,
which Zotero and Pandoc read) and Atom (feedgen). tests/test_export_readers.py reads each back
with readers other than the writers: pybtex, citation-js, pdflatex with bibtex, feedparser.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TextIO
from urllib.parse import urlsplit

from harvester.errors import ConfigError
from harvester.records import Author, StoredWork

CSV_COLUMNS: tuple[str, ...] = (
    "record_id",
    "author",
    "year",
    "journal",
    "doi",
    "title",
    "pages",
    "volume",
    "number",
    "abstract",
    "isbn",
    "source",
    "pmid",
    "pmcid",
    "url",
    "type",
    "published",
)


def write_jsonl(works: Iterable[StoredWork], out: TextIO) -> int:
    """One Record per line, with every identifier the work has."""
    count = 0
    for work in works:
        out.write(json.dumps(work.record.to_json(), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(works: Iterable[StoredWork], out: TextIO) -> int:
    """The columns of the dedup CSV contract (plus ids), authors joined with " and "."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for work in works:
        r = work.record
        writer.writerow(
            {
                "record_id": work.id,
                "author": " and ".join(
                    a.collective or ", ".join(p for p in (a.family, a.given) if p)
                    for a in r.authors
                ),
                "year": r.year or "",
                "journal": r.venue or "",
                "doi": r.ids.doi or "",
                "title": r.title or "",
                "pages": r.pages or "",
                "volume": r.volume or "",
                "number": r.issue or "",
                "abstract": r.abstract or "",
                "isbn": "",
                "source": ";".join(work.sources),
                "pmid": r.ids.pmid or "",
                "pmcid": r.ids.pmcid or "",
                "url": r.url or "",
                "type": r.type or "",
                "published": r.published or "",
            }
        )
        count += 1
    return count


# Record.type -> RIS TY, BibTeX entry type, CSL type
_TYPES: dict[str, tuple[str, str, str]] = {
    "journal-article": ("JOUR", "article", "article-journal"),
    "review": ("JOUR", "article", "article-journal"),
    "editorial": ("JOUR", "article", "article-journal"),
    "letter": ("JOUR", "article", "article-journal"),
    "erratum": ("JOUR", "article", "article-journal"),
    "retraction": ("JOUR", "article", "article-journal"),
    "preprint": ("UNPB", "misc", "article"),
    "proceedings-article": ("CPAPER", "inproceedings", "paper-conference"),
    "book-chapter": ("CHAP", "incollection", "chapter"),
    "book": ("BOOK", "book", "book"),
}
_DEFAULT_TYPE = ("GEN", "misc", "article")


def _kind(work: StoredWork) -> tuple[str, str, str]:
    return _TYPES.get(work.record.type or "", _DEFAULT_TYPE)


def _page_range(pages: str | None) -> tuple[str | None, str | None]:
    if not pages:
        return None, None
    first, _, last = pages.partition("-")
    return first or None, last or None


def _ris_author(author: Author) -> str:
    """Writes "Family, Given" as RIS wants it. A collective name's commas become semicolons: Zotero
    and citation-js split an author at its first comma (into family and given names), and
    read a name without one as a single, institutional name."""
    if author.collective:
        return re.sub(r"\s*,\s*", "; ", author.collective)
    return ", ".join(p for p in (author.family, author.given) if p)


def _ris_ids_note(work: StoredWork) -> str | None:
    """The identifiers as one note line: readers keep N1 as the item's note (several N1 lines
    become several notes in Zotero, but an invalid list in citation-js)."""
    ids = work.record.ids
    parts = [f"{label}: {value}" for label, value in (
        ("PMID", ids.pmid), ("PMCID", ids.pmcid), ("arXiv", ids.arxiv)) if value]  # fmt: skip
    return "; ".join(parts) or None


def write_ris(works: Iterable[StoredWork], out: TextIO) -> int:
    """RIS, as rispy writes it (one reference per work, the work id as ID).

    Identifiers go where reference managers read them: the DOI in DO; the PMID in AN (the
    accession number, where EndNote's PubMed import puts it and Zotero keeps it as "Loc. in
    Archive"); for journal articles the PMCID in C2 (EndNote's "PMCID" field, which citation-js
    reads as PMCID); and PMID, PMCID and arXiv id together in one N1 note, which every reader
    keeps.
    """
    import rispy

    from harvester.dedup.files import PlainRisWriter

    entries = []
    for work in works:
        r = work.record
        kind = _kind(work)[0]
        start, end = _page_range(r.pages)
        entry: dict[str, object] = {
            "type_of_reference": kind,
            "id": str(work.id),
            "title": r.title,
            "authors": [_ris_author(a) for a in r.authors],
            "journal_name": r.venue,
            "year": str(r.year) if r.year else None,
            "date": r.published.replace("-", "/") if r.published else None,
            "volume": r.volume,
            "number": r.issue,
            "start_page": start,
            "end_page": end,
            "doi": r.ids.doi,
            "accession_number": r.ids.pmid,
            "custom2": r.ids.pmcid if kind == "JOUR" else None,
            "abstract": r.abstract,
            "language": r.language,
            "urls": [u for u in (r.url,) if u],
            "keywords": list(r.keywords),
            "notes": [n for n in (_ris_ids_note(work),) if n],
        }
        entries.append({k: v for k, v in entry.items() if v not in (None, [], "")})
    out.write(rispy.dumps(entries, implementation=PlainRisWriter))
    return len(entries)


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
    entry_type = _kind(work)[1]
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


def csl_item(work: StoredWork) -> dict[str, object]:
    """One work as a CSL-JSON item (https://citeproc-js.readthedocs.io/en/latest/csl-json/)."""
    r = work.record
    item: dict[str, object] = {"id": str(work.id), "type": _kind(work)[2]}
    if r.title:
        item["title"] = r.title
    authors = [
        {"literal": a.collective}
        if a.collective
        else {k: v for k, v in (("family", a.family), ("given", a.given)) if v}
        for a in r.authors
    ]
    if authors:
        item["author"] = authors
    if r.published or r.year:
        parts = [int(p) for p in (r.published or str(r.year)).split("-")]
        item["issued"] = {"date-parts": [parts]}
    for key, value in (
        ("container-title", r.venue),
        ("volume", r.volume),
        ("issue", r.issue),
        ("page", r.pages),
        ("DOI", r.ids.doi),
        ("PMID", r.ids.pmid),
        ("PMCID", r.ids.pmcid),
        ("URL", r.url),
        ("abstract", r.abstract),
        ("language", r.language),
    ):
        if value:
            item[key] = value
    return item


def write_csljson(works: Iterable[StoredWork], out: TextIO) -> int:
    items = [csl_item(w) for w in works]
    out.write(json.dumps(items, ensure_ascii=False, indent=1) + "\n")
    return len(items)


EXPORTERS: dict[str, Callable[[Iterable[StoredWork], TextIO], int]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "ris": write_ris,
    "bibtex": write_bibtex,
    "csljson": write_csljson,
}


def atom_feed(
    topic: str, works: Sequence[StoredWork], *, now: datetime, self_url: str | None = None
) -> bytes:
    """An Atom feed (RFC 4287) of a topic's works, newest first (feedgen).

    ``self_url`` is where the feed is published (``harvester feed --self-url``): it becomes the
    feed's rel="self" link, which feed readers use to subscribe; without one the feed has no
    self link (a made-up one would send readers nowhere). Each entry's <published> and
    <updated> are the time harvester first stored the work (when the entry first appeared);
    the work's own publication date is in the entry's summary.
    """
    from feedgen.feed import FeedGenerator

    from harvester.digests.assemble import citation_line, format_authors, record_links

    if self_url is not None and urlsplit(self_url).scheme not in ("http", "https"):
        raise ConfigError(f"the feed's self URL must be an http(s) URL, not {self_url!r}")
    feed = FeedGenerator()
    feed.id(f"tag:harvester,2026:topic:{topic}")
    feed.title(f"harvester: {topic}")
    feed.updated(now)
    # RFC 4287: a feed names an author unless every entry does, and some works have none
    feed.author({"name": "harvester"})
    if self_url is not None:
        feed.link(href=self_url, rel="self", type="application/atom+xml")
    feed.generator("harvester")
    for work in works:  # feedgen prepends: the last added is the first entry
        r = work.record
        entry = feed.add_entry()
        entry.id(f"tag:harvester,2026:work:{work.id}")
        entry.title(r.title or "(untitled)")
        links = record_links(r)
        if links:
            entry.link(href=links[0], rel="alternate")
        seen = work.first_seen or now
        entry.published(seen)
        entry.updated(seen)
        for author in r.authors[:20]:
            entry.author({"name": author.display})
        summary = " — ".join(p for p in (format_authors(r.authors), citation_line(r)) if p)
        if r.abstract:
            summary = f"{summary}\n\n{r.abstract}" if summary else r.abstract
        if not links:  # RFC 4287: an entry without an alternate link must have content
            entry.content(summary or r.title or "(untitled)", type="text")
        elif summary:
            entry.summary(summary)
    data: bytes = feed.atom_str(pretty=True)
    return data
