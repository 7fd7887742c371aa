"""The exports read back by readers other than the ones that wrote them.

The corpus is every record the API emulator serves (tests/test_harvest_all_sources.py's SERVED
files of all eight sources, parsed with each source's own parser), stored in one SQLite store
so that the exported works are what a user's store holds. The readers:

- pybtex (an independent BibTeX implementation) on the BibTeX export, strict;
- citation-js (node; tests/js, installed by `npm ci`) on the BibTeX, RIS and CSL-JSON exports;
- pdflatex + bibtex with plain.bst, compiling a document that cites every exported entry;
- feedparser on the Atom feed.

A reader that is not installed skips its test with the reason, except under CI=true, where
.ci/run installs them all and a missing one fails.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harvester.exporters import EXPORTERS, atom_feed, tex_escape
from harvester.records import StoredWork
from harvester.sources.base import Window
from harvester.store.database import open_engine
from harvester.store.repository import Repository
from tests.conftest import FixedClock
from tests.test_harvest_all_sources import ALL, recorded_records

NOW = datetime(2026, 12, 31, 12, tzinfo=UTC)
JS = Path(__file__).parent / "js"


def require_tool(ok: bool, what: str) -> None:
    """Skip when a reader is absent; fail under CI, which installs every reader."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed, and CI installs it (.ci/run)")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[StoredWork]:
    """Every record the emulator serves, of all sources, stored as works."""
    db = tmp_path_factory.mktemp("corpus") / "corpus.db"
    engine = open_engine(f"sqlite:///{db}")
    repo = Repository(engine, clock=FixedClock(NOW))
    for source in ALL:
        run = repo.begin_run("all", source, Window(NOW - timedelta(days=36_500), NOW))
        repo.store_page(run, "all", recorded_records(source))
    works = repo.works("all")
    engine.dispose()
    assert len(works) > 400
    return works


def export(fmt: str, works: list[StoredWork]) -> str:
    out = io.StringIO()
    assert EXPORTERS[fmt](works, out) == len(works)
    return out.getvalue()


def citation_js(fmt: str, text: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The export as citation-js understood it (CSL-JSON items)."""
    require_tool(
        shutil.which("node") is not None and (JS / "node_modules" / "@citation-js").is_dir(),
        "node with citation-js (cd tests/js && npm ci)",
    )
    path = tmp_path / f"export.{fmt}"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        ["node", str(JS / "read.js"), fmt, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items: list[dict[str, Any]] = json.loads(proc.stdout)
    return items


# What a text means, for comparing a field read back with the record's: its words (letters and
# digits, NFKC-folded, so "²" is "2" and "ﬁ" is "fi"; spacing accents such as the "´" of
# "Catarina´s" and format characters such as soft hyphens, which the export drops, left out)
# and how often each LaTeX special occurs.
SPECIALS = "$&%#{}<>|\\"


def meaning(text: str | None) -> tuple[list[str], Counter[str]]:
    bare = "".join(c for c in text or "" if unicodedata.category(c) != "Cf")
    # a spacing accent, as NFKC has it: an accent over a space, which pylatexenc drops
    folded = re.sub(" [\u0300-\u036f]", "", unicodedata.normalize("NFKC", bare))
    return re.findall(r"[^\W_]+", folded), Counter(c for c in folded if c in SPECIALS)


def _latex_db() -> Any:
    from pylatexenc import latex2text

    db = latex2text.get_default_latex_context_db()
    db.add_context_category(
        "text-symbols",  # LaTeX text commands pylatexenc 2 does not list
        prepend=True,
        macros=[
            latex2text.MacroTextSpec(name, simplify_repl=repl)
            for name, repl in (
                ("textbraceleft", "{"),
                ("textbraceright", "}"),
                ("textless", "<"),
                ("textgreater", ">"),
                ("textbar", "|"),
                ("textasciicircum", "^"),
                ("textminus", "\u2212"),
            )
        ],
    )
    return db


LATEX_DB = _latex_db()


def latex_to_text(value: str) -> str:
    """A BibTeX field's LaTeX as text, by pylatexenc (which knows no harvester code)."""
    from pylatexenc import latex2text

    text: str = latex2text.LatexNodes2Text(latex_context=LATEX_DB, math_mode="text").latex_to_text(
        value
    )
    return text


def dashes(pages: str) -> str:
    return re.sub(r"\s*[-\u2010-\u2015]+\s*", "-", pages)


def math_as_text(value: str | None) -> str | None:
    """citation-js decodes LaTeX's text commands but leaves math ones as TeX, and drops the space
    after them ("P\\neqNP"): read them (the longest name pylatexenc knows), and alike any the
    record itself holds, such as an arXiv abstract's "\\le"."""

    def command(match: re.Match[str]) -> str:
        name = match.group(1)
        for end in range(len(name), 0, -1):
            if LATEX_DB.get_macro_spec(name[:end]) is not None:
                return latex_to_text("\\" + name[:end] + " ") + name[end:]
        return match.group()

    return value and re.sub(r"\\([A-Za-z]+)", command, value)


# --- BibTeX ----------------------------------------------------------------------------------


def test_bibtex_reads_back_with_pybtex_with_every_field_and_special_kept(
    corpus: list[StoredWork],
) -> None:
    import pybtex.errors
    from pybtex.database import parse_string

    text = export("bibtex", corpus)
    pybtex.errors.set_strict_mode(True)  # any warning (bad brace, duplicate key...) raises
    try:
        bib = parse_string(text, "bibtex")
    finally:
        pybtex.errors.set_strict_mode(False)
    assert len(bib.entries) == len(corpus)
    kept = Counter[str]()
    for work, (_key, entry) in zip(corpus, bib.entries.items(), strict=True):
        r = work.record
        f = entry.fields
        for name, value in (("title", r.title), ("abstract", r.abstract)):
            assert meaning(latex_to_text(f.get(name, ""))) == meaning(value), (work.id, name)
            kept.update(c for c in (value or "") if c in "$&%")
        assert f.get("year") == (str(r.year) if r.year else None)
        assert f.get("doi") == r.ids.doi and f.get("pmid") == r.ids.pmid
        assert f.get("pmcid") == r.ids.pmcid and f.get("eprint") == r.ids.arxiv
        assert dashes(latex_to_text(f.get("pages", ""))) == dashes(r.pages or "")
        people = entry.persons.get("author", [])
        assert len(people) == len(r.authors), work.id
        for person, author in zip(people, r.authors, strict=True):
            last = latex_to_text(" ".join(person.prelast_names + person.last_names))
            assert meaning(last) == meaning(author.collective or author.family or author.given)
    # the corpus does hold the characters that broke readers (Europe PMC's "$35,000", "R&D")
    assert kept["$"] and kept["&"] and kept["%"], kept


def test_bibtex_is_ascii_but_for_scripts_latex_has_no_commands_for(
    corpus: list[StoredWork],
) -> None:
    """Accented Latin, Greek and signs are LaTeX commands (8-bit BibTeX sorts, purifies and
    abbreviates those correctly); the corpus's only other characters are a Hangul name's."""
    text = export("bibtex", corpus)
    assert "{\\'{e}}" in text and "{$\\alpha$}" in text and "{\\textpm}" in text
    others = {c for c in text if not c.isascii()}
    assert others and all(unicodedata.name(c).startswith("HANGUL") for c in others), others


def test_bibtex_titles_are_protected_from_lower_casing(corpus: list[StoredWork]) -> None:
    """plain.bst lower-cases titles except braced parts: the whole title is braced."""
    text = export("bibtex", corpus)
    titles = re.findall(r"^  title = \{(.*)\},$", text, flags=re.MULTILINE)
    assert len(titles) == sum(1 for w in corpus if w.record.title)
    assert all(t.startswith("{") and t.endswith("}") for t in titles)


def test_bibtex_reads_back_with_citation_js(corpus: list[StoredWork], tmp_path: Path) -> None:
    items = citation_js("bibtex", export("bibtex", corpus), tmp_path)
    assert len(items) == len(corpus)
    dollars = 0
    for work, item in zip(corpus, items, strict=True):
        r = work.record
        for name, value in (("title", r.title), ("abstract", r.abstract)):
            # citation-js gives \textsuperscript{6} as CSL's rich text, "<sup>6</sup>"
            text = re.sub(r"</?su[bp]>", "", item.get(name) or "")
            read = meaning(math_as_text(text))
            assert read == meaning(math_as_text(value)), (work.id, name)
        dollars += (item.get("abstract") or "").count("$")
        assert item.get("DOI") == r.ids.doi and item.get("PMID") == r.ids.pmid
        assert item.get("PMCID") == r.ids.pmcid
        assert len(item.get("author", [])) == len(r.authors), work.id
        for name, author in zip(item.get("author", []), r.authors, strict=True):
            if author.collective:  # braced: one name, all of it the family part
                assert name == {"family": author.collective}, name
    assert dollars >= 1


def test_bibtex_compiles_with_pdflatex_and_plain_bst(
    corpus: list[StoredWork], tmp_path: Path
) -> None:
    """Every entry, through bibtex (8-bit) and pdflatex with no package at all.

    Scripts LaTeX has no commands for (the corpus has a Korean name in Hangul) need the
    document's own setup (CJKutf8, kotex, or xelatex with a font): here each such character is
    declared as a placeholder, as a document set up for that script would typeset it.
    Everything else (accented Latin, Greek, math signs, R&D, $35,000, 50%) needs nothing."""
    require_tool(
        all(shutil.which(t) for t in ("pdflatex", "bibtex", "kpsewhich")),
        "pdflatex and bibtex (apt-get install texlive-latex-base)",
    )
    text = export("bibtex", corpus)
    (tmp_path / "refs.bib").write_text(text, encoding="utf-8")
    other_scripts = sorted({c for c in text if not c.isascii()})
    assert all(unicodedata.name(c).startswith("HANGUL") for c in other_scripts), other_scripts
    placeholders = "".join(
        f"\\DeclareUnicodeCharacter{{{ord(c):04X}}}{{[U+{ord(c):04X}]}}\n" for c in other_scripts
    )
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n" + placeholders + "\\begin{document}\n\\nocite{*}\n"
        "\\bibliographystyle{plain}\n\\bibliography{refs}\n\\end{document}\n",
        encoding="ascii",
    )
    env = {**os.environ, "TEXMFVAR": str(tmp_path / "texmf-var")}

    def tex(*command: str) -> str:
        proc = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stdout[-4000:]
        return proc.stdout

    latex = ("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-draftmode", "doc")
    tex(*latex)
    blg = tex("bibtex", "doc")
    assert "error message" not in blg, blg
    tex(*latex)
    log = tex(*latex)
    assert "Missing character" not in log
    bbl = " ".join((tmp_path / "doc.bbl").read_text(encoding="utf-8").split())
    assert bbl.count("\\bibitem") == len(corpus)
    # plain.bst lower-cases titles but braced ones: each is printed as recorded
    titled = [w for w in corpus if w.record.title]
    kept = [w for w in titled if f"{{{tex_escape(w.record.title or '')}}}" in bbl]
    assert len(kept) == len(titled)
    assert "{ChatGPT and Software Testing Education: Promises {\\&} Perils}" in bbl
    # the names with accents went through BibTeX's name formatting as LaTeX commands
    assert "Folty{\\'{n}}ski" in bbl
    # and abbreviating styles cut an accented initial whole (Łukasz, Árpád, Çaglar)
    (tmp_path / "doc.aux").write_text(
        (tmp_path / "doc.aux").read_text().replace("\\bibstyle{plain}", "\\bibstyle{abbrv}")
    )
    tex("bibtex", "doc")
    abbreviated = " ".join((tmp_path / "doc.bbl").read_text(encoding="utf-8").split())
    for initial in ("{\\L}.~Kaiser", "{\\'{A}}.~Knap", '{\\c{C}}.~G{\\"{u}}l{\\c{c}}ehre'):
        assert initial in abbreviated, initial


# --- RIS -------------------------------------------------------------------------------------


def test_ris_read_by_citation_js_keeps_identifiers_and_collective_names(
    corpus: list[StoredWork], tmp_path: Path
) -> None:
    items = citation_js("ris", export("ris", corpus), tmp_path)
    assert len(items) == len(corpus)
    by_id = {item["id"]: item for item in items}
    collectives = pmcids = 0
    for work in corpus:
        r, item = work.record, by_id[str(work.id)]
        assert item.get("DOI") == r.ids.doi
        note = item.get("note", "")
        assert isinstance(note, str)  # one note: several N1 lines make an invalid list
        if r.ids.pmid:
            assert f"PMID: {r.ids.pmid}" in note, work.id
        if r.ids.arxiv:
            assert f"arXiv: {r.ids.arxiv}" in note, work.id
        if r.ids.pmcid and item["type"] == "article-journal":
            assert item.get("PMCID") == r.ids.pmcid, work.id
            pmcids += 1
        names = item.get("author", [])
        assert len(names) == len(r.authors), work.id
        for name, author in zip(names, r.authors, strict=True):
            if author.collective:
                assert set(name) <= {"literal", "family"} and len(name) == 1, name
                assert meaning(next(iter(name.values())))[0] == meaning(author.collective)[0]
                collectives += 1
    assert collectives >= 2 and pmcids >= 40, (collectives, pmcids)


def test_ris_puts_the_pmid_in_the_accession_number(corpus: list[StoredWork]) -> None:
    """AN is where EndNote's PubMed import puts the PMID (Zotero: "Loc. in Archive")."""
    import rispy

    entries = {e["id"]: e for e in rispy.loads(export("ris", corpus))}
    with_pmid = [w for w in corpus if w.record.ids.pmid]
    assert len(with_pmid) > 100
    for work in with_pmid:
        assert entries[str(work.id)]["accession_number"] == work.record.ids.pmid
    # Zotero's RIS import takes an author's text up to its first comma as the family name and
    # reads a name with no comma as one institutional name: collective names have none
    collective = 0
    for work in corpus:
        names = entries[str(work.id)].get("authors", [])
        for au, author in zip(names, work.record.authors, strict=True):
            if author.collective:
                assert "," not in au and au.replace(";", ",") == author.collective, au
                collective += 1
    assert collective >= 2


# --- CSL-JSON --------------------------------------------------------------------------------


def test_csljson_read_by_citation_js_keeps_identifiers_and_literal_names(
    corpus: list[StoredWork], tmp_path: Path
) -> None:
    items = citation_js("csljson", export("csljson", corpus), tmp_path)
    assert len(items) == len(corpus)
    literal = 0
    for work, item in zip(corpus, items, strict=True):
        r = work.record
        assert (item.get("DOI"), item.get("PMID"), item.get("PMCID")) == (
            r.ids.doi,
            r.ids.pmid,
            r.ids.pmcid,
        )
        for name, author in zip(item.get("author", []), r.authors, strict=True):
            if author.collective:
                assert name == {"literal": author.collective}
                literal += 1
    assert literal >= 2


# --- Atom ------------------------------------------------------------------------------------


def test_atom_feed_is_valid_for_feedparser_without_a_made_up_self_link(
    corpus: list[StoredWork],
) -> None:
    import feedparser

    works = corpus[:60]
    parsed = feedparser.parse(atom_feed("all", works, now=NOW))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert not [link for link in parsed.feed.get("links", []) if link.rel == "self"]
    assert parsed.feed.get("author")  # RFC 4287: some works have no authors
    assert len(parsed.entries) == len(works)
    for entry in parsed.entries:
        assert re.match(r"^[a-z][a-z0-9+.-]*:", entry.id)  # ids are URIs
        assert entry.published_parsed and entry.updated_parsed
        alternate = [link for link in entry.get("links", []) if link.rel == "alternate"]
        assert alternate or entry.get("content"), entry.id


def test_atom_feed_self_link_is_the_given_url() -> None:
    import feedparser

    url = "https://feeds.example.org/harvester/nlp.xml"
    parsed = feedparser.parse(atom_feed("nlp", [], now=NOW, self_url=url))
    assert not parsed.bozo
    selves = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert selves == [url]


def test_atom_feed_refuses_a_self_url_that_is_not_http() -> None:
    from harvester.errors import ConfigError

    with pytest.raises(ConfigError, match="http"):
        atom_feed("nlp", [], now=NOW, self_url="tag:harvester,2026:topic:nlp")


def test_feed_command_writes_the_self_url_it_is_given(
    corpus: list[StoredWork], tmp_path: Path
) -> None:
    """`harvester feed --self-url`, as a user runs it (the installed script, in a subprocess)."""
    import feedparser

    from tests.test_cli import run

    run("init", cwd=tmp_path)
    topic = "online-self-help-anxiety-depression"  # the example topic `init` writes
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    engine = open_engine(url)
    repo = Repository(engine, clock=FixedClock(datetime.now(UTC)))
    now = datetime.now(UTC)
    run_id = repo.begin_run(topic, "pubmed", Window(now - timedelta(days=1), now))
    repo.store_page(run_id, topic, [w.record for w in corpus[:5]])
    engine.dispose()
    env = {"HARVESTER_DATABASE_URL": url}
    self_url = "https://example.org/feeds/anxiety.xml"
    run("feed", topic, "-o", "with.xml", "--self-url", self_url, cwd=tmp_path, env=env)
    run("feed", topic, "-o", "without.xml", cwd=tmp_path, env=env)
    with_self = feedparser.parse(str(tmp_path / "with.xml"))
    without = feedparser.parse(str(tmp_path / "without.xml"))
    assert len(with_self.entries) == len(without.entries) == 5
    assert [link.href for link in with_self.feed.links if link.rel == "self"] == [self_url]
    assert not [link for link in without.feed.get("links", []) if link.rel == "self"]
    refused = run(
        "feed", topic, "-o", "bad.xml", "--self-url", "feeds/anxiety.xml", cwd=tmp_path,
        env=env, check=None,
    )  # fmt: skip
    assert refused.returncode != 0 and "http" in refused.stderr
    assert not (tmp_path / "bad.xml").exists()
