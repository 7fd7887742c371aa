"""Each source record's JSON is stored once (issue 13.4): a provenance row holds NULL where it
is byte for byte its work's record and the work's only provenance, gets its JSON back before
the work gains another provenance or changes, and every reader sees the record the source
gave. Real PubMed records; SQLite and PostgreSQL; migration 0011 both ways."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import command

from harvester.records import Identifiers, Record
from harvester.store.database import _alembic_config, current_revision, upgrade
from harvester.store.lookup import provenance_key
from harvester.store.repository import Repository
from harvester.store.sharing import SharedStore
from tests.conftest import FixedClock
from tests.test_store import pubmed_records, repo, window

__all__ = ["repo"]  # the store fixture of test_store, on both backends

# (source, source_id) → (work id, provenance.record as stored (text or None), works.record text)
Rows = dict[tuple[str, str], tuple[int, str | None, str]]


def rows(engine: sa.Engine) -> Rows:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT p.source, p.source_id, p.work_id, CAST(p.record AS TEXT), "
                "CAST(w.record AS TEXT) FROM provenance p JOIN works w ON w.id = p.work_id"
            )
        ).all()
    return {(s, k): (w, own, work) for s, k, w, own, work in found}


def effective(engine: sa.Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """The record each provenance row stands for."""
    return {
        key: json.loads(own if own is not None else work)
        for key, (_, own, work) in rows(engine).items()
    }


def given(records: list[Record]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.source, provenance_key(r)): r.to_json() for r in records}


def crossref_twin(pubmed: Record) -> Record:
    """The same article as a DOI-only source gives it (derived from the real record)."""
    return Record(
        source="crossref",
        source_id=pubmed.ids.doi,
        ids=Identifiers(doi=pubmed.ids.doi),
        title=(pubmed.title or "").upper(),
        venue=pubmed.venue,
        year=pubmed.year,
    )


def test_a_one_record_work_keeps_its_json_once(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records()
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", records)
    stored = rows(repo.engine)
    assert len(stored) == len(records)
    assert all(own is None for _, own, _ in stored.values())
    assert effective(repo.engine) == given(records)
    repo.store_page(run, "t", records)  # again: nothing to write, nothing changes
    assert rows(repo.engine) == stored
    assert sorted(w.record.to_json()["source_id"] for w in repo.works("t")) == sorted(
        r.source_id for r in records
    )


def test_a_shared_window_reads_back_what_it_fetched(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records()
    shared = SharedStore(repo)
    runs = shared.begin_runs("pubmed", {"a": window(clock), "b": window(clock)})
    window_id = shared.open_window("pubmed", "window", window(clock), 2)
    matches = [("a", "b")[: n % 3] for n in range(len(records))]  # a third matched by none
    shared.store_page(window_id, records, matches, runs)
    assert all(own is None for _, own, _ in rows(repo.engine).values())
    with repo.engine.connect() as conn:
        null_json = conn.execute(
            sa.text("SELECT count(*) FROM source_records WHERE CAST(record AS TEXT) = 'null'")
        ).scalar_one()
    assert null_json == 0  # a matched record's JSON is SQL NULL there, not JSON null
    back = sorted((r.to_json() for _, r in shared.stored_records([window_id])), key=str)
    assert back == sorted((r.to_json() for r in records), key=str)


def test_a_second_provenance_gets_the_first_its_json_back(
    repo: Repository, clock: FixedClock
) -> None:
    pubmed = next(r for r in pubmed_records() if r.ids.doi and r.abstract)
    other = crossref_twin(pubmed)
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", [pubmed])
    assert rows(repo.engine)[("pubmed", pubmed.source_id)][1] is None
    repo.store_page(run, "t", [other])
    stored = rows(repo.engine)
    assert len({work for work, _, _ in stored.values()}) == 1
    assert all(own is not None for _, own, _ in stored.values())
    # the first row holds the JSON its work held for it, byte for byte
    assert stored[("pubmed", pubmed.source_id)][1] == json.dumps(pubmed.to_json())
    assert effective(repo.engine) == given([pubmed, other])
    (work,) = repo.works("t")
    assert work.record.title == pubmed.title and work.sources == ("crossref", "pubmed")


def test_two_provenances_in_one_page_are_both_kept(repo: Repository, clock: FixedClock) -> None:
    pubmed = next(r for r in pubmed_records() if r.ids.doi and r.abstract)
    other = crossref_twin(pubmed)
    run = repo.begin_run("t", "pubmed", window(clock))
    assert repo.store_page(run, "t", [pubmed, other]).new_works == 1
    assert all(own is not None for _, own, _ in rows(repo.engine).values())
    assert effective(repo.engine) == given([pubmed, other])


def test_a_provenance_updated_in_place(repo: Repository, clock: FixedClock) -> None:
    first, second = [r for r in pubmed_records() if r.ids.doi and r.abstract][:2]
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", [first, second, crossref_twin(second)])
    # the source corrects a title: the single record's work follows, its row stays NULL
    corrected = first.with_changes(title=f"{first.title} (corrected)")
    repo.store_page(run, "t", [corrected])
    stored = rows(repo.engine)
    assert stored[("pubmed", first.source_id)][1] is None
    assert json.loads(stored[("pubmed", first.source_id)][2])["title"] == corrected.title
    # the merged record changes when one of two provenances does; both rows keep their own
    twin = crossref_twin(second).with_changes(venue="Another Venue")
    repo.store_page(run, "t", [twin])
    stored = rows(repo.engine)
    assert stored[("pubmed", second.source_id)][1] == json.dumps(second.to_json())
    assert stored[("crossref", twin.source_id)][1] == json.dumps(twin.to_json())
    assert effective(repo.engine) == given([corrected, second, twin])


def test_a_record_without_ids_keeps_its_content_hash_key(
    repo: Repository, clock: FixedClock
) -> None:
    real = pubmed_records()[0]
    bare = Record(source="pubmed", title=real.title, year=real.year, abstract=real.abstract)
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", [bare])
    ((key, (_, own, _)),) = rows(repo.engine).items()
    assert own is None and key == ("pubmed", provenance_key(bare))
    assert key[1].startswith("sha1:")
    # the record read back hashes to the key it is stored under: the same key next time
    (back,) = effective(repo.engine).values()
    assert provenance_key(Record.from_json(back)) == key[1]
    assert repo.store_page(run, "t", [bare]).new_works == 0
    assert repo.count_provenance() == 1


def downgrade(engine: sa.Engine, revision: str) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def record_nullable(engine: sa.Engine) -> bool:
    (column,) = [c for c in sa.inspect(engine).get_columns("provenance") if c["name"] == "record"]
    return bool(column["nullable"])


def test_migration_0011_up_and_down(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records() + pubmed_records("efetch_pubmed_43_authors.xml")
    pubmed = next(r for r in records if r.ids.doi and r.abstract)
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", records)
    repo.store_page(run, "t", [crossref_twin(pubmed)])
    engine = repo.engine
    before = rows(engine)
    records_before = effective(engine)
    assert sum(own is None for _, own, _ in before.values()) == len(before) - 2

    downgrade(engine, "0010")
    assert current_revision(engine) == "0010" and not record_nullable(engine)
    copies = rows(engine)
    assert all(own is not None for _, own, _ in copies.values())
    for key, (_, own, work_json) in copies.items():
        if before[key][1] is None:
            assert own == work_json  # the copy restored, byte for byte
        else:
            assert own == before[key][1]
    assert effective(engine) == records_before

    upgrade(engine)
    assert record_nullable(engine)
    assert rows(engine) == before
    assert effective(engine) == records_before
    # and the store goes on as before: the records again change nothing
    repo.store_page(run, "t", records)
    assert rows(engine) == before
