"""Wherever a study appears, its retraction or correction appears with it: exports (read back
by pybtex, citation-js, pdflatex + bibtex and feedparser, as tests/test_export_readers.py reads
every export), the JSONL Record, the web's Atom feed and `harvester status`.

The works are the real recorded records of ../shared/fixtures/updates, stored as a harvest
stores them (the Lancet registry study and its Retraction Watch / publisher updates; PubMed's
Wakefield article, retracted, and a PNAS article with an erratum).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harvester.exporters import EXPORTERS, atom_feed
from harvester.records import StoredWork
from harvester.sources.base import Window
from harvester.sources.crossref import parse_works
from harvester.sources.pubmed import parse_efetch
from harvester.store.database import open_engine
from harvester.store.repository import Repository
from tests.conftest import FixedClock, require_shared
from tests.test_export_readers import citation_js, require_tool

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
LANCET = "10.1016/s0140-6736(20)31180-6"


@pytest.fixture
def works(tmp_path: Path) -> list[StoredWork]:
    updates = require_shared() / "updates"
    records = [
        *parse_works(
            (updates / "crossref" / "works_doi_10.1016_s0140-6736_20_31180-6_updated_by_rw"
             "_retraction_eoc_correction.json").read_bytes()
        ).records,
        *parse_efetch(
            (updates / "pubmed" / "efetch_pubmed_retracted_and_retraction_notice_pair"
             "_9500320_20137807.xml").read_bytes()
        ).records[:1],
        *parse_efetch((updates / "pubmed" / "efetch_pubmed_erratum_in_38147649.xml").read_bytes())
        .records,
    ]  # fmt: skip
    engine = open_engine(f"sqlite:///{tmp_path / 'h.db'}")
    repo = Repository(engine, clock=FixedClock(NOW))
    run = repo.begin_run("t", "crossref", Window(NOW - timedelta(days=1), NOW))
    repo.store_page(run, "t", records)
    stored = repo.works("t")
    engine.dispose()
    assert [w.record.ids.doi for w in stored] == [
        LANCET, "10.1016/s0140-6736(97)11096-0", "10.1073/pnas.2308706120"
    ]  # fmt: skip
    return stored


def export(fmt: str, works: list[StoredWork]) -> str:
    out = io.StringIO()
    EXPORTERS[fmt](works, out)
    return out.getvalue()


def test_jsonl_export_carries_the_updates_with_their_provenance(works: list[StoredWork]) -> None:
    lancet, wakefield, pnas = (json.loads(line) for line in export("jsonl", works).splitlines())
    kinds = {(u["kind"], u["asserted_by"], u["source"]) for u in lancet["updates"]}
    assert ("retraction", "retraction-watch", "crossref") in kinds
    assert ("retraction", "publisher", "crossref") in kinds
    assert {u["notice"].get("pmid") for u in wakefield["updates"]} == {
        "15016483", "20137807", "21971344"
    }  # fmt: skip
    assert [u["kind"] for u in pnas["updates"]] == ["erratum"]


def test_ris_note_read_by_citation_js(works: list[StoredWork], tmp_path: Path) -> None:
    text = export("ris", works)
    lancet_note = next(
        line for line in text.splitlines() if line.startswith("N1") and "Retr" in line
    )
    assert "Retracted 2020-05-22: https://doi.org/10.1016/s0140-6736(20)31174-0" in lancet_note
    items = citation_js("ris", text, tmp_path)
    notes = [i.get("note", "") for i in items]
    assert "Retracted 2020-05-22" in notes[0] and "Expression of concern" in notes[0]
    assert notes[1].startswith("PMID: 9500320; Retracted")
    assert "Erratum published: https://doi.org/10.1073/pnas.2424381121" in notes[2]


def test_bibtex_note_read_by_pybtex_citation_js_and_compiled(
    works: list[StoredWork], tmp_path: Path
) -> None:
    from pybtex.database import parse_string

    text = export("bibtex", works)
    entries = list(parse_string(text, "bibtex", strict=True).entries.values())
    assert "Retracted 2020-05-22" in entries[0].fields["note"]
    assert "Erratum published" in entries[2].fields["note"]
    items = citation_js("bibtex", text, tmp_path)
    assert "Retracted 2020-05-22" in items[0]["note"]
    require_tool(
        all(shutil.which(t) for t in ("pdflatex", "bibtex", "kpsewhich")),
        "pdflatex and bibtex (apt-get install texlive-latex-base)",
    )
    (tmp_path / "refs.bib").write_text(text, encoding="utf-8")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\begin{document}\n\\nocite{*}\n"
        "\\bibliographystyle{plain}\n\\bibliography{refs}\n\\end{document}\n",
        encoding="ascii",
    )
    env = {**os.environ, "TEXMFVAR": str(tmp_path / "texmf-var")}
    for command in (["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc"],
                    ["bibtex", "doc"],
                    ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc"]):  # fmt: skip
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:]
    bbl = " ".join((tmp_path / "doc.bbl").read_text().split())
    assert bbl.count("Retracted 2020-05-22") == 1  # plain.bst prints the note


def test_csljson_status_read_by_citation_js(works: list[StoredWork], tmp_path: Path) -> None:
    items = citation_js("csljson", export("csljson", works), tmp_path)
    assert [i.get("status") for i in items] == ["retracted", "retracted", None]
    assert "Erratum published" in items[2]["note"]


def test_atom_feed_marks_a_retracted_study(works: list[StoredWork]) -> None:
    import feedparser

    parsed = feedparser.parse(atom_feed("t", works, now=NOW))
    assert not parsed.bozo
    titles = [e.title for e in parsed.entries]
    assert titles[-1].startswith("[retracted] RETRACTED: Hydroxychloroquine")  # newest first
    assert not titles[0].startswith("[")  # the erratum only: no badge in the title
    lancet = parsed.entries[-1]
    assert lancet.summary.startswith("Retracted 2020-05-22: https://doi.org/")


def test_web_topic_and_study_pages_show_the_badge_and_the_notice(tmp_path: Path) -> None:
    import httpx

    from harvester.app import build_app
    from harvester.config import parse_settings
    from harvester.web.server import create_app

    settings = parse_settings(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'web.db'}"},
            "topics": [{"name": "t", "query": "hydroxychloroquine", "sources": ["crossref"]}],
            "web": {"public_read": True},
        },
        path="web.toml",
    )
    app = build_app(settings, clock=FixedClock(NOW), sleep=lambda _s: None)
    try:
        body = (require_shared() / "updates" / "crossref" / "works_doi_10.1016_s0140-6736_20"
                "_31180-6_updated_by_rw_retraction_eoc_correction.json").read_bytes()  # fmt: skip
        run = app.repo.begin_run("t", "crossref", Window(NOW - timedelta(days=1), NOW))
        app.repo.store_page(run, "t", parse_works(body).records)
        (work,) = app.repo.works("t")
        from tests.web_fixtures import free_port, serving

        with (
            serving(create_app(app, secret="s" * 32), free_port()) as base,
            httpx.Client(base_url=base) as client,
        ):
            topic = client.get("/t/t")
            assert topic.status_code == 200
            assert '<span class="badge badge-retracted">retracted</span>' in topic.text
            assert '<div class="notice">Retracted 2020-05-22: https://doi.org/' in topic.text
            study = client.get(f"/w/{work.id}")
            assert '<p class="notice">Retracted 2020-05-22: https://doi.org/' in study.text
    finally:
        app.close()
