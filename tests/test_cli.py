"""The command line as a user runs it: the installed `harvester` script, in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harvester.records import ID_SCHEMES
from tests.conftest import require_shared
from tests.emulator import Emulator

pytestmark = pytest.mark.integration

QUERY = '"natural language processing" OR "machine learning" OR NLP OR "deep learning"'


def harvester_command() -> list[str]:
    script = shutil.which("harvester", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "harvester.cli"]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if env is None:  # the project's own config decides, not the caller's environment
        full_env.pop("HARVESTER_DATABASE_URL", None)
    proc = subprocess.run(
        [*harvester_command(), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(require_shared()) as emu:
        yield emu


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator) -> Path:
    """An init'ed project whose config points PubMed at the emulator, with an NLP topic."""
    run("init", cwd=tmp_path)
    config = tmp_path / "config" / "harvester.toml"
    text = config.read_text()
    text = text.replace(
        '# base_url = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"',
        f'base_url = "{emulator.base_url("pubmed")}"\nrequests_per_second = 50',
    )
    # only the emulator is ever contacted: the example topic keeps to PubMed here
    text = text.replace(
        'sources = ["pubmed", "europepmc", "crossref", "openalex", "arxiv", "medrxiv"]',
        'sources = ["pubmed"]',
    )
    text = text.replace(
        "[[subscriptions]]",
        f"""[[topics]]
name = "nlp"
query = '{QUERY}'
sources = ["pubmed"]
lookback_days = 20000

[[subscriptions]]""",
    )
    text = text.replace(
        'topics = ["online-self-help-anxiety-depression"]',
        'topics = ["online-self-help-anxiety-depression", "nlp"]',
    )
    config.write_text(text)
    return tmp_path


def test_init_writes_the_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = run("init", cwd=tmp_path)
    config = tmp_path / "config" / "harvester.toml"
    assert "online-self-help-anxiety-depression" in config.read_text()
    assert "wrote" in out.stdout
    again = run("init", cwd=tmp_path, check=2)
    assert "exists" in again.stderr


def test_harvest_digest_export_round_trip(project: Path) -> None:
    first = run("harvest", "nlp", cwd=project)
    assert "nlp × pubmed: ok" in first.stdout
    assert "new works" in first.stdout and "nothing new" not in first.stdout
    second = run("harvest", "nlp", cwd=project)
    assert "0 new works, 0 new for the topic" in second.stdout
    assert "nothing new" in second.stdout

    digest = run("digest", "--dry-run", cwd=project).stdout
    assert "nlp:" in digest and "new studies" in digest
    assert "https://pubmed.ncbi.nlm.nih.gov/" in digest
    assert " · " in digest and "et al." in digest
    assert "found in PubMed" in digest
    # structured abstracts keep their headings, each on its own paragraph
    assert "\n    BACKGROUND: " in digest or "\n    OBJECTIVE: " in digest

    lines = run("export", "nlp", "--format", "jsonl", cwd=project).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) >= 30
    assert all(set(r["ids"]) <= set(ID_SCHEMES) and r["ids"]["pmid"] for r in records)
    assert all(r["source"] == "pubmed" for r in records)

    rows = list(csv.reader(io.StringIO(run("export", "--format", "csv", cwd=project).stdout)))
    assert rows[0][:6] == ["record_id", "author", "year", "journal", "doi", "title"]
    assert len(rows) == len(records) + 1


def test_environment_config_and_database_url_are_honoured(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = tmp_path / "env.db"
    env = {
        "HARVESTER_CONFIG": str(project / "config" / "harvester.toml"),
        "HARVESTER_DATABASE_URL": f"sqlite:///{db}",
    }
    run("harvest", "nlp", cwd=elsewhere, env=env)
    assert db.exists() and not (elsewhere / "harvester.db").exists()
    exported = run("export", "nlp", cwd=elsewhere, env=env).stdout
    assert exported.count("\n") >= 30


def test_bad_config_exits_2_naming_file_key_and_problem(project: Path) -> None:
    config = project / "config" / "harvester.toml"
    config.write_text(config.read_text().replace('schedule = "0 6 * * *"', 'schedule = "0 6 *"'))
    out = run("harvest", cwd=project, check=2)
    assert f"{Path('config/harvester.toml')}: topics[0].schedule: invalid cron" in out.stderr


def test_unknown_topic_and_source_are_usage_errors(project: Path) -> None:
    assert "unknown topic 'nope'" in run("harvest", "nope", cwd=project, check=2).stderr
    assert (
        "unknown source 'scopus'"
        in run("harvest", "--source", "scopus", cwd=project, check=2).stderr
    )


def test_failed_source_exits_1_and_is_recorded(project: Path, emulator: Emulator) -> None:
    emulator.faults.add(
        source="pubmed", kind="status", status=400, path_suffix="esearch.fcgi", body=b"bad request"
    )
    out = run("harvest", "nlp", cwd=project, check=1)
    assert "nlp × pubmed: failed" in out.stdout and "HTTP 400" in out.stdout + out.stderr


def test_parse_prints_schema_records_for_every_pubmed_fixture(tmp_path: Path) -> None:
    files = sorted((require_shared() / "pubmed").glob("efetch_*.xml"))
    out = run("parse", "--source", "pubmed", *map(str, files), cwd=tmp_path).stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 56
    for r in records:
        assert r["source"] == "pubmed" and r["ids"]["pmid"].isdigit()
        assert r["year"] is None or isinstance(r["year"], int)
        assert "" not in [v for v in r.values() if not isinstance(v, list | dict)]


def test_parse_reports_an_unreadable_file(tmp_path: Path) -> None:
    error_file = require_shared() / "pubmed" / "esummary_error_no_id.xml"
    out = run("parse", "--source", "pubmed", str(error_file), cwd=tmp_path, check=1)
    assert "Neither query_key nor id specified" in out.stderr and str(error_file) in out.stderr


def test_db_upgrade_without_config(tmp_path: Path) -> None:
    out = run("db", "upgrade", "--help", cwd=tmp_path)
    assert "migrations" in out.stdout
    out = run("--database-url", f"sqlite:///{tmp_path / 'x.db'}", "db", "upgrade", cwd=tmp_path)
    assert "database at revision" in out.stdout


def test_dedup_writes_duplicate_ids_for_a_labelled_dataset(tmp_path: Path) -> None:
    source = require_shared().parent / "dedup" / "colrev_special_cases" / "records.csv"
    out = tmp_path / "deduped.csv"
    proc = run("dedup", str(source), "-o", str(out), cwd=tmp_path)
    assert "12 records" in proc.stderr
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with source.open(encoding="utf-8") as f:
        original = list(csv.DictReader(f))
    assert [r["record_id"] for r in rows] == [r["record_id"] for r in original]
    # the dataset's labels: 3 duplicate pairs; each duplicate points at the record kept
    with (source.parent / "labels.csv").open(encoding="utf-8") as f:
        truth = {r["record_id"]: r["cluster_id"] for r in csv.DictReader(f)}
    predicted = {r["record_id"]: r["duplicate_id"] for r in rows}
    pairs = lambda m: {(a, b) for a in m for b in m if a < b and m[a] == m[b]}  # noqa: E731
    assert pairs(predicted) == pairs(truth)


def test_dedup_bad_input_is_named(tmp_path: Path) -> None:
    assert "no such file" in run("dedup", "absent.csv", cwd=tmp_path, check=2).stderr
    broken = tmp_path / "broken.csv"
    broken.write_text('record_id,title\n1,"A study"\n2,"Another",extra\n')
    assert "broken.csv:3:" in run("dedup", str(broken), cwd=tmp_path, check=2).stderr


def test_status_shows_runs_next_run_failures_and_pending_digests(
    project: Path, emulator: Emulator
) -> None:
    run("harvest", "nlp", cwd=project)
    emulator.faults.add(
        source="pubmed",
        kind="status",
        status=400,
        path_suffix="esearch.fcgi",
        body=b"bad request",
        times=2,
    )
    run("harvest", "online-self-help-anxiety-depression", cwd=project, check=1)
    out = run("status", cwd=project).stdout
    assert "nlp  (next run " in out and "schedule '0 6 * * *'" in out
    assert "  pubmed: last run: " in out and ", ok; " in out and " of 56 announced" in out
    assert ", failed; " in out and "error: HTTP 400" in out
    assert "new studies waiting" in out and "email:" in out
    assert "daemons\n  none running" in out


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The error of a refused command: exactly one line on stderr, no traceback."""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.rstrip("\n")


def test_unwritable_outputs_are_one_line_naming_the_path(project: Path, tmp_path: Path) -> None:
    run("db", "upgrade", cwd=project)  # so that no "database migrated" line comes first
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    missing = tmp_path / "no-such-dir"
    feed = run("feed", "nlp", "-o", str(missing / "nlp.xml"), cwd=project, check=2)
    assert one_line(feed) == (
        f"harvester: cannot write {missing / 'nlp.xml'}: No such file or directory"
    )
    export = run("export", "--format", "ris", "-o", str(blocker / "x.ris"), cwd=project, check=2)
    assert one_line(export) == f"harvester: cannot write {blocker / 'x.ris'}: Not a directory"
    assert one_line(run("export", "-o", str(tmp_path), cwd=project, check=2)) == (
        f"harvester: cannot write {tmp_path}: Is a directory"
    )
    init = run("init", str(blocker / "project"), cwd=project, check=2)
    assert (
        one_line(init)
        == f"harvester: cannot write {blocker / 'project' / 'config'}: Not a directory"
    )
    preview = blocker / "preview"
    digest = run("digest", "--dry-run", "--preview-dir", str(preview), cwd=project, check=2)
    assert one_line(digest) == f"harvester: cannot write {preview}: Not a directory"
    records = tmp_path / "records.csv"
    records.write_text('record_id,title\n1,"A study"\n')
    dedup = run("dedup", str(records), "-o", str(missing / "out.csv"), cwd=project, check=2)
    assert one_line(dedup) == (
        f"harvester: cannot write {missing / 'out.csv'}: No such file or directory"
    )
    assert not missing.exists()


def test_nesting_and_encoding_problems_in_the_config_exit_2(project: Path) -> None:
    config = project / "config" / "harvester.toml"
    good = config.read_text(encoding="utf-8")
    name = Path("config/harvester.toml")

    config.write_text(
        good.replace("query = '(", "query = '" + "(" * 50_001, 1).replace(
            "depress*)'", "depress*)" + ")" * 50_000 + "'", 1
        )
    )
    error = one_line(run("export", cwd=project, check=2))
    assert error.startswith(
        f"harvester: {name}: topics[0].query: query syntax error: nesting deeper than 100 "
        "levels of parentheses and NOT at position 100: …"
    )
    assert one_line(run("harvest", "nlp", cwd=project, check=2)) == error

    config.write_text(good + "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert one_line(run("export", cwd=project, check=2)).startswith(
        f"harvester: {name}: not valid TOML: arrays or inline tables nested too deeply (line "
    )

    config.write_bytes(good.encode("utf-8") + b"# \xff\n")
    offset = len(good.encode("utf-8")) + 2
    assert one_line(run("export", cwd=project, check=2)) == (
        f"harvester: {name}: not UTF-8 text (byte 0xff at offset {offset})"
    )
    assert not (project / "harvester.db").exists()  # refused before the database was opened


def test_dedup_deeply_nested_jsonl_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"title": "A study"}\n{"title": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    proc = run("dedup", str(path), cwd=tmp_path, check=2)
    assert one_line(proc) == f"harvester: {path}:2: nesting too deep"


def test_parse_reports_a_file_nested_too_deeply(tmp_path: Path) -> None:
    # shaped like a Crossref works answer, its "message" a wall of arrays
    path = tmp_path / "works.json"
    path.write_text('{"status": "ok", "message": ' + "[" * 100_000 + "]" * 100_000 + "}")
    proc = run("parse", "--source", "crossref", str(path), cwd=tmp_path, check=1)
    line = one_line(proc)  # the source's own ParseError, naming the file and the problem
    assert line.startswith(f"harvester: {path}: ") and line.endswith("nested too deeply to read")


def test_a_secret_an_api_echoes_is_neither_stored_nor_printed(
    project: Path, emulator: Emulator
) -> None:
    """Issue 18.12: an API that echoes the key in an error put it in harvest_runs.error and
    on stdout. The efetch answer is NCBI's real error document with its message changed
    to echo the key (derived from pubmed/esummary_error_no_id.xml)."""
    import sqlite3

    emulator.reset()  # no fault left over from an earlier test
    secret = "ncbi-key-0c7d2b9e41"
    config = project / "config" / "harvester.toml"
    text = config.read_text()
    assert "[sources.pubmed]\n" in text
    config.write_text(
        text.replace("[sources.pubmed]\n", '[sources.pubmed]\napi_key_env = "HV_TEST_KEY"\n', 1)
    )
    echo = (require_shared() / "pubmed" / "esummary_error_no_id.xml").read_bytes()
    echo = echo.replace(b"Neither query_key nor id specified", f"bad key {secret}".encode())
    emulator.faults.add(source="pubmed", kind="body", path_suffix="efetch.fcgi", body=echo)
    env = {"HV_TEST_KEY": secret, "HARVESTER_DATABASE_URL": f"sqlite:///{project / 'harvester.db'}"}
    out = run("--log-format", "json", "harvest", "nlp", cwd=project, env=env, check=1)
    assert "nlp × pubmed: failed" in out.stdout and "bad key REDACTED" in out.stdout
    assert secret not in out.stdout + out.stderr
    status = run("status", cwd=project, env=env)
    assert "bad key REDACTED" in status.stdout and secret not in status.stdout + status.stderr
    with sqlite3.connect(project / "harvester.db") as db:
        (error,) = db.execute("SELECT error FROM harvest_runs WHERE topic = 'nlp'").fetchone()
    assert "bad key REDACTED" in error and secret not in error


def test_harvest_and_status_report_skipped_records(project: Path, emulator: Emulator) -> None:
    """A record that cannot be read is skipped, counted and named; the watermark moves."""
    from tests.recorded_source import TWO_RECORDS, recorded, with_unreadable_pmid

    emulator.reset()
    assert TWO_RECORDS.startswith("pubmed/")
    emulator.faults.add(
        source="pubmed",
        kind="body",
        path_suffix="efetch.fcgi",
        body=with_unreadable_pmid(recorded()),  # derived from the real recorded page
        times=None,
    )
    try:
        out = run("harvest", "nlp", cwd=project)
    finally:
        emulator.faults.clear()
    assert "nlp × pubmed: partial; " in out.stdout
    assert ", 1 records skipped: not-a-pmid: missing or invalid PMID 'not-a-pmid'" in out.stdout
    status = run("status", cwd=project).stdout
    assert "partial; " in status and "1 records skipped: not-a-pmid: missing or invalid" in status
    nlp = status.split("\nnlp  (next run", 1)[1].split("\n\n", 1)[0]
    assert "covered up to never" not in nlp and "    covered up to 20" in nlp
