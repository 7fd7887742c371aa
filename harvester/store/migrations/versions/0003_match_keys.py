"""Fuzzy matching against stored works: indexed blocking keys, and version links."""

from __future__ import annotations

import html
import json
import re
import unicodedata
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from alembic import op
from bs4 import BeautifulSoup
from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

from harvester.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "work_match_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_work_match_keys_work_id", "work_match_keys", ["work_id"])
    op.create_table(
        "work_links",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "other_work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("work_id", "other_work_id", name="uq_work_links_pair"),
    )
    op.create_index("ix_work_links_work_id", "work_links", ["work_id"])
    op.create_index("ix_work_links_other_work_id", "work_links", ["other_work_id"])
    # works stored before this revision get their keys when a record of theirs is stored again;
    # `harvester db upgrade` fills them for every work now, so old works are matched too (with
    # the keys as this revision defined them: see "frozen" below)
    conn = op.get_bind()
    keys = sa.table("work_match_keys", sa.column("key"), sa.column("work_id"))
    rows = conn.execute(sa.text("SELECT work_id, record FROM provenance ORDER BY id"))
    seen: set[tuple[str, int]] = set()
    batch: list[dict[str, object]] = []
    for work_id, record in rows:
        data = record if isinstance(record, dict) else json.loads(record)
        for key in _blocking_keys(data):
            if (key, work_id) not in seen:
                seen.add((key, work_id))
                batch.append({"key": key[:255], "work_id": work_id})
    if batch:
        op.bulk_insert(keys, batch)


def downgrade() -> None:
    op.drop_table("work_links")
    op.drop_table("work_match_keys")


# --- frozen -----------------------------------------------------------------------------------
# The blocking keys of harvester 2026-11 (harvester.dedup.features.blocking_keys and what it
# calls in harvester.text.normalize, since split into text.markup and text.identifiers), copied
# as they were, so a later change to the live match keys cannot change what this revision wrote.
# A record is read from its stored JSON as harvester.records.Record.from_json read it then. Works
# filed under keys that have changed since get the new keys when a record of theirs is stored
# again.

_ID_SCHEMES = ("doi", "pmid", "pmcid", "arxiv", "openalex", "s2")


def _blocking_keys(data: dict[str, Any]) -> tuple[str, ...]:
    """Short strings under which a record (its stored JSON) is filed: identifier keys
    (``id:doi:…``, a preprint's ``published_doi``), title start/end keys (``ts:``/``te:``), a
    title-words + author key (``tw:``) and first-author + year keys (``ay:family:year`` and
    ``ay:family:year+1``)."""

    def text(value: Any) -> str | None:
        return None if value in (None, "") else str(value)

    raw_ids = data.get("ids") or {}
    ids = {k: (str(raw_ids[k]) if raw_ids.get(k) else None) for k in _ID_SCHEMES if k in raw_ids}
    pairs = tuple((s, v) for s in _ID_SCHEMES if (v := ids.get(s)) is not None)
    out: list[tuple[str, str]] = []
    for scheme, value in pairs:
        if scheme == "doi" and value.startswith("10.48550/arxiv."):
            arxiv = normalize_arxiv(value)
            if arxiv and (ids.get("arxiv") in (None, arxiv)):
                out.append(("arxiv", arxiv))
                continue
        out.append((scheme, value))
    title = split_title(text(data.get("title")))[0]
    compact = title.replace(" ", "")
    families: list[str] = []
    for author in data.get("authors") or ():
        name = str(author["collective"]) if author.get("collective") else author.get("family")
        if key := family_key(name or None):
            families.append(key)
    family = families[0] if families else ""
    year_value = data.get("year")
    year = int(year_value) if year_value not in (None, "") else None
    published_doi = text(data.get("published_doi"))

    keys: list[str] = [f"id:{scheme}:{value}" for scheme, value in dict.fromkeys(out)]
    if published_doi:
        keys.append(f"id:doi:{published_doi}")
    if compact:
        keys.append(f"ts:{compact[:14]}")
        if len(compact) > 20:
            keys.append(f"te:{compact[-14:]}")
        tokens = sorted(set(title_tokens(title)), key=lambda t: (-len(t), t))[:2]
        if len(tokens) == 2 and family:
            keys.append(f"tw:{family[:8]}:{'.'.join(sorted(tokens))}")
    if family and year:
        keys.append(f"ay:{family[:12]}:{year}")
        keys.append(f"ay:{family[:12]}:{year + 1}")
    return tuple(keys)


_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu",
    "ξ": "xi", "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma", "τ": "tau",
    "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega", "µ": "mu", "ϐ": "beta",
    "ϑ": "theta", "ϕ": "phi", "ϵ": "epsilon",
}  # fmt: skip


_FOLD = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ł": "l",
    "ı": "i",
}


_TRANSLATION = str.maketrans({**_GREEK, **_FOLD})


_LANGUAGE_NOTE = re.compile(
    r"\s*[\[(](?:article in |in )?[a-z]+(?: with [a-z ]+ abstract)?[\])]\.?$"
)


_NON_WORD = re.compile(r"[\W_]+")


_COMBINING = dict.fromkeys(
    c for c in range(0x300, 0x370)
)  # combining diacritical marks, dropped after NFKD decomposition


_STOPWORDS = frozenset(
    {"a", "an", "and", "the", "of", "in", "on", "for", "to", "with", "by", "at", "from", "or",
     "de", "la", "le", "et", "der", "die", "und", "des", "du", "en"}
)  # fmt: skip


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower case letters and digits separated by single spaces: diacritics, Greek letters,
    HTML entities and punctuation resolved; other scripts (Cyrillic, CJK) kept as they are.
    Cached: author and venue names repeat across a file."""
    if "&" in text:
        text = html.unescape(text)
    text = text.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_TRANSLATION))
        text = text.translate(_COMBINING)
    return _NON_WORD.sub(" ", text).strip()


_BRACKETED = re.compile(r"\s*\[([^\]]*)(?:\]|$)")


_CITED_ARTICLE = re.compile(
    r"\s*\((?:vol\.? \w+,? pg\.? \w+,? \d{4}|[^()]+\(\d{4}\)\s*\w+\s*\([\w\s-]+\))\)\W*$"
)


def split_title(title: str | None) -> tuple[str, str]:
    """The comparable form of a title and of a bracketed alternative title (a translated
    title's original, ``"Working in … [Arbeiten in …]"``), folded; language notes, enclosing
    brackets and bracketed export notes removed."""
    if not title:
        return "", ""
    text = markup_to_text(title) if "<" in title else title
    text = _CITED_ARTICLE.sub("", (text or "").lower()).strip().rstrip(".").strip()
    text = _LANGUAGE_NOTE.sub("", text).strip().rstrip(".")
    if text.startswith("[") and "]" in text:
        # "[Indications and contraindications …]. [Spanish]": the translated title itself.
        inner, _, rest = text[1:].partition("]")
        text = inner + " " + rest
    alt = ""
    for note in _BRACKETED.findall(text):
        words = note.split()
        if len(words) >= 3 and not note.startswith(("erratum", "published erratum", "comment")):
            alt = alt or note
    text = _BRACKETED.sub(" ", text)
    folded = fold(text)
    return folded, fold(alt) if alt and folded else ""


def family_key(family: str | None) -> str:
    """A family name reduced to its letters (``"Cesa-Bianchi"`` -> ``"cesabianchi"``)."""
    return fold(family or "").replace(" ", "")


def title_tokens(title: str) -> list[str]:
    return [t for t in title.split() if t not in _STOPWORDS]


def collapse_whitespace(value: str | None) -> str | None:
    """Runs of whitespace (including non-breaking spaces) as one space; None when empty."""
    if value is None:
        return None
    return " ".join(value.split()) or None


_STRAY_LT = re.compile(r"<(?![A-Za-z/!?])")


_SKIPPED_NODES = (Comment, Declaration, Doctype, ProcessingInstruction)


_BLOCKS = frozenset(
    {
        "p", "div", "br", "hr", "li", "ul", "ol", "title", "sec", "label", "caption",
        "abstract", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "list",
        "list-item", "table", "def-item", "term", "def", "disp-formula",
    }
)  # fmt: skip


_MATH_SKIPPED = frozenset({"annotation", "annotation-xml", "none", "mprescripts"})


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


_ARXIV_PREFIX = re.compile(
    r"^(?:https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/|(?:10\.48550/)?arxiv[:.])", re.I
)


_ARXIV_NEW = re.compile(r"^(\d{4}\.\d{4,5})(?:v\d+)?$")


_ARXIV_OLD = re.compile(r"^([a-z][a-z-]*(?:\.[a-z]{2})?)/(\d{7})(?:v\d+)?$", re.I)


def normalize_arxiv(value: str | None) -> str | None:
    """arXiv id without version: ``2101.00001``, ``hep-th/9901001``, ``math.GT/0309136``."""
    if value is None:
        return None
    text = _ARXIV_PREFIX.sub("", value.strip()).removesuffix(".pdf").rstrip("/")
    if new := _ARXIV_NEW.match(text):
        return new.group(1)
    if old := _ARXIV_OLD.match(text):
        archive, _, subject = old.group(1).partition(".")
        subject = f".{subject.upper()}" if subject else ""
        return f"{archive.lower()}{subject}/{old.group(2)}"
    return None
