"""`harvester try`: the installed command against the API emulator (real recorded responses),
each API's published limit enforced by the emulator; nothing may be stored."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harvester.harvesting.trial import broader_notes
from harvester.query.syntax import parse_query
from tests.conftest import require_shared
from tests.emulator import Emulator
from tests.test_cli import run

pytestmark = pytest.mark.integration

EXAMPLE_TOPIC = "online-self-help-anxiety-depression"
EXAMPLE_SOURCES = ("pubmed", "europepmc", "crossref", "openalex", "arxiv", "medrxiv")
NLP = '"machine learning" OR "natural language processing" OR NLP'
OPENALEX_KEY = "emulator-key-7f3a"  # the emulator refuses keyless OpenAlex requests
# the published limits (README "Sources"), enforced by the emulator: a 429 would show in its log
LIMITS = {"europepmc": 500 / 60, "crossref": 10.0, "openalex": 10.0, "arxiv": 1 / 3, "medrxiv": 1.0}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(require_shared()) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    emulator.reset()
    emulator.set_rate_limit("pubmed", ncbi=True)
    for name, rate in LIMITS.items():
        emulator.set_rate_limit(name, rate)
    return emulator


def point_at(config: Path, emu: Emulator, extra: str = "") -> None:
    """The example config with every source's base_url at the emulator."""
    text = config.read_text()
    for name in EXAMPLE_SOURCES:
        line = f'base_url = "{emu.base_url(name)}"\n'
        if f"[sources.{name}]\n" in text:
            text = text.replace(f"[sources.{name}]\n", f"[sources.{name}]\n{line}")
        else:
            text += f"\n[sources.{name}]\n{line}"
    text = text.replace('# api_key_env = "OPENALEX_API_KEY"', 'api_key_env = "OPENALEX_API_KEY"')
    config.write_text(text.replace("[sources.pubmed]\n", f"[sources.pubmed]\n{extra}"))


@pytest.fixture
def project(tmp_path: Path, emu: Emulator) -> Path:
    run("init", cwd=tmp_path)
    point_at(tmp_path / "config" / "harvester.toml", emu)
    return tmp_path


ENV = {"OPENALEX_API_KEY": OPENALEX_KEY}


def env() -> dict[str, str]:
    return {**ENV, "HARVESTER_DATABASE_URL": ""}  # the project's own config decides


def db_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.glob("harvester.db*")}


def test_try_example_topic_per_source_counts_translations_no_database(
    project: Path, emu: Emulator
) -> None:
    out = run("try", EXAMPLE_TOPIC, "--since", "1990-01-01", cwd=project, env=env()).stdout
    for name in EXAMPLE_SOURCES:
        block = out.split(f"\n{name}:\n", 1)[1].split("\n\n", 1)[0]
        assert "sent: " in block and "announced " in block and "matched locally" in block
        assert "covered: " in block
    assert '"self-help group*"[tiab]' in out  # the PubMed translation, as sent
    assert "broader than the query: free text ranked by relevance" in out  # Crossref
    assert "broader than the query: no search" in out  # medRxiv
    assert re.search(r"merged: \d+ studies after dedup", out)
    assert re.search(r"≈ [\d.]+ new studies per week", out)
    statuses = [r.status for r in emu.requests]
    assert statuses and 429 not in statuses
    assert {r.source for r in emu.requests} == set(EXAMPLE_SOURCES)
    assert not db_files(project), "try must not create the database"


def test_try_leaves_an_existing_database_byte_for_byte_unchanged(
    project: Path, emu: Emulator
) -> None:
    config = project / "config" / "harvester.toml"
    config.write_text(
        config.read_text().replace(
            'sources = ["pubmed", "europepmc", "crossref", "openalex", "arxiv", "medrxiv"]',
            'sources = ["pubmed"]',
        )
    )
    run("harvest", cwd=project, env=env())
    before = db_files(project)
    assert before
    out = run(
        "try", "--query", NLP, "--sources", "pubmed", "--since", "1990-01-01",
        cwd=project, env=env(),
    ).stdout  # fmt: skip
    assert "first 10 in digest order" in out
    assert db_files(project) == before


def test_try_stops_at_the_budget_and_says_what_it_did_not_fetch(
    tmp_path: Path, emu: Emulator
) -> None:
    run("init", cwd=tmp_path)
    point_at(tmp_path / "config" / "harvester.toml", emu, extra="page_size = 10\n")
    out = run(
        "try", "--query", NLP, "--sources", "pubmed", "--since", "1990-01-01", "--pages", "2",
        cwd=tmp_path, env=env(),
    ).stdout  # fmt: skip
    assert "budget: 2 pages per source" in out
    assert "stopped at the budget of 2 pages: 35 announced records not fetched" in out
    assert "fetched 20 (2 pages" in out
    assert "≈ 36 % of the window" in out
    efetches = [r for r in emu.requests if r.source == "pubmed" and "efetch" in r.path]
    assert len(efetches) == 2  # the third page is never requested


def test_try_json_merged_studies_in_digest_order_with_why(project: Path, emu: Emulator) -> None:
    out = run(
        "try", "--query", NLP, "--sources", "pubmed,openalex", "--since", "1990-01-01",
        "--limit", "3", "--format", "json", cwd=project, env=env(),
    ).stdout  # fmt: skip
    data = json.loads(out)
    assert [s["source"] for s in data["sources"]] == ["pubmed", "openalex"]
    for s in data["sources"]:
        assert s["fetched"] >= s["matched"] > 0 and s["announced"] and s["complete"]
    assert data["studies_total"] <= data["matched_records"]
    assert len(data["studies"]) == 3
    scores = [s["score"] for s in data["studies"]]
    assert scores == sorted(scores, reverse=True)
    assert all(" in " in s["why"] for s in data["studies"])
    assert data["per_week"] > 0
    assert not db_files(project)


def test_try_without_a_config_and_syntax_errors(tmp_path: Path, emu: Emulator) -> None:
    bad = run("try", "--query", '"machine learning', cwd=tmp_path, check=2, env=env())
    assert "--query: query syntax error" in bad.stderr and "position" in bad.stderr
    usage = run("try", cwd=tmp_path, check=2, env=env())
    assert "TOPIC or --query" in usage.stderr
    unknown = run("try", "--query", "NLP", "--sources", "pubmd", cwd=tmp_path, check=2, env=env())
    assert "unknown source 'pubmd'" in unknown.stderr


def test_a_source_that_needs_a_missing_key_is_skipped(project: Path, emu: Emulator) -> None:
    out = run(
        "try", "--query", NLP, "--sources", "openalex,pubmed", "--since", "1990-01-01",
        cwd=project, env={"OPENALEX_API_KEY": "", "HARVESTER_DATABASE_URL": ""},
    ).stdout  # fmt: skip
    assert "openalex: skipped: needs an API key: export OPENALEX_API_KEY" in out
    assert {r.source for r in emu.requests} == {"pubmed"}


def test_broader_notes_name_what_each_translation_adds() -> None:
    query = parse_query('("self-help group*" OR forum*) AND online NOT children')
    assert broader_notes("pubmed", query, "x NOT children[tiab]") == ()
    assert "NOT children left out" in broader_notes("openalex", query, "online")[-1]
    assert any("truncated phrase" in n for n in broader_notes("europepmc", query, "children"))
    assert broader_notes("crossref", query, "")[0].startswith("free text")
