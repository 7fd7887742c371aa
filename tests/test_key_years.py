"""Blocking keys carry their work's year (work_match_keys.year = works.year), so candidates
beyond the year window are dropped without reading their works rows: the year follows the
work when a merge changes it, migration 0012 fills it, and matching finds what it found."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from harvester.dedup.cluster import MAX_BLOCK
from harvester.dedup.features import features, keys_of
from harvester.records import Identifiers, Record
from harvester.store.database import upgrade
from harvester.store.lookup import Item, PageLookup, provenance_key
from harvester.store.repository import Repository
from harvester.store.writer import PageWriter
from tests.conftest import FixedClock
from tests.test_record_once import crossref_twin, downgrade
from tests.test_store import pubmed_records, repo, window

__all__ = ["repo"]  # the store fixture of test_store, on both backends

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def key_years(engine: sa.Engine) -> set[tuple[int, int | None, int | None]]:
    """(work id, key year, works.year) of every key row."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT k.work_id, k.year, w.year FROM work_match_keys k "
                "JOIN works w ON w.id = k.work_id"
            )
        ).all()
    return {(w, k, y) for w, k, y in rows}


def test_keys_follow_their_works_year(repo: Repository, clock: FixedClock) -> None:
    pubmed = next(r for r in pubmed_records() if r.ids.doi and r.abstract and r.year)
    assert pubmed.year is not None
    # a DOI-only source gives the year after (the online date): stored first, it sets the year
    other = crossref_twin(pubmed).with_changes(year=pubmed.year + 1)
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", [other])
    assert {(k, y) for _, k, y in key_years(repo.engine)} == {(pubmed.year + 1,) * 2}
    repo.store_page(run, "t", [pubmed])  # PubMed's year is preferred: the work's year moves
    rows = key_years(repo.engine)
    assert {(k, y) for _, k, y in rows} == {(pubmed.year, pubmed.year)}
    assert len({w for w, _, _ in rows}) == 1


def test_a_page_meets_its_duplicates_beside_works_of_other_years(
    repo: Repository, clock: FixedClock
) -> None:
    records = pubmed_records()
    run = repo.begin_run("t", "pubmed", window(clock))
    # the same titles 40 years on, as other works: under the same title keys, beyond the window
    repo.store_page(
        run,
        "t",
        [
            r.with_changes(source_id=f"x{r.source_id}", ids=type(r.ids)(), year=r.year + 40)
            for r in records
            if r.year
        ],
    )
    repo.store_page(run, "t", records)
    # the same records from another source, without identifiers: found by their keys
    twins = [r.with_changes(source="europepmc", source_id=f"e{r.source_id}", ids=type(r.ids)())
             for r in records]  # fmt: skip
    outcome = repo.store_page(run, "t", twins)
    assert (outcome.duplicates, outcome.new_works) == (len(twins), 0)


def test_migration_0012_fills_the_years(repo: Repository, clock: FixedClock) -> None:
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", pubmed_records())
    downgrade(repo.engine, "0011")
    upgrade(repo.engine)
    rows = key_years(repo.engine)
    assert rows and all(k == y for _, k, y in rows)


# --- a title or author key read within the page's years (PageLookup.key_ranges) -------------


def far_copies(record: Record, count: int) -> list[Record]:
    """Other works under the record's title keys: the same title ten years apart each, without
    its identifiers (derived from the real record), all beyond the rules' year window."""
    assert record.year is not None
    return [
        record.with_changes(source_id=f"far{k}-{record.source_id}", ids=Identifiers(),
                            year=record.year + 10 * k)
        for k in range(1, count + 1)
    ]  # fmt: skip


def twin(record: Record, **changes: Any) -> Record:
    """The record as another source without identifiers gives it."""
    changes = {"ids": Identifiers(), **changes}
    return record.with_changes(source="europepmc", source_id=f"e{record.source_id}", **changes)


def stored_with_copies(repo: Repository, clock: FixedClock, copies: int) -> tuple[Record, int]:
    record = next(r for r in pubmed_records() if r.ids.doi and r.year and r.authors)
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", [record])
    repo.store_page(run, "t", far_copies(record, copies))
    with repo.engine.connect() as conn:
        work_id = conn.execute(
            sa.text("SELECT work_id FROM identifiers WHERE value = :v"), {"v": record.ids.doi}
        ).scalar_one()
    return record, work_id


def item_of(record: Record) -> Item:
    f = features(record)
    return Item(record, (record.source, provenance_key(record)), f, list(keys_of(f)))


def add_key_rows(engine: sa.Engine, key: str, count: int, year: int) -> None:
    """``count`` works filed under ``key`` (rows shaped as a one-record work stores them; the
    works are synthesized, their record empty)."""
    with engine.begin() as conn:
        first = conn.execute(sa.text("SELECT coalesce(max(id), 0) + 1000 FROM works")).scalar()
        ids = [first + n for n in range(count)]
        conn.execute(
            sa.text(
                "INSERT INTO works (id, title, year, record, created_at, updated_at) "
                "VALUES (:id, 'filler', :y, '{}', :at, :at)"
            ),
            [{"id": i, "y": year, "at": NOW} for i in ids],
        )
        conn.execute(
            sa.text("INSERT INTO work_match_keys (key, work_id, year) VALUES (:k, :w, :y)"),
            [{"k": key, "w": i, "y": year} for i in ids],
        )


def twin_item(record: Record) -> tuple[Item, str]:
    """The record's twin as the page writer takes it, and its title-start key."""
    item = item_of(twin(record))
    return item, next(k for k in item.keys if k.startswith("ts:"))


def prefetched(session: Session, repo: Repository, item: Item) -> PageLookup:
    """What the page of ``item`` alone meets in the store."""
    lookup = PageLookup(session, repo.engine.dialect.name == "postgresql")
    lookup.prefetch([item])
    return lookup


def test_title_keys_are_read_within_the_years_of_the_page_and_counted_whole(
    repo: Repository, clock: FixedClock
) -> None:
    record, work_id = stored_with_copies(repo, clock, 30)
    item, title_key = twin_item(record)
    with Session(repo.engine) as session:
        lookup = prefetched(session, repo, item)
        # the 30 works decades away are counted (31 under the key) but not read
        assert lookup.count(title_key) == 31
        assert lookup.db_keys[title_key] == [work_id]
        far = (
            session.execute(
                sa.text("SELECT work_id FROM work_match_keys WHERE key = :k AND work_id != :w"),
                {"k": title_key, "w": work_id},
            )
            .scalars()
            .first()
        )
        assert far is not None
        assert lookup.filed(title_key, far) and not lookup.filed(title_key, far + 10**6)
    run = repo.begin_run("t", "europepmc", window(clock))
    outcome = repo.store_page(run, "t", [twin(record)])
    assert (outcome.duplicates, outcome.new_works) == (1, 0)


def test_a_key_of_many_works_in_other_years_is_still_common(
    repo: Repository, clock: FixedClock
) -> None:
    record, work_id = stored_with_copies(repo, clock, 3)
    full, title_key = twin_item(record)
    assert record.year is not None
    # the record and its 3 copies, and works centuries away: MAX_BLOCK under the key in all
    add_key_rows(repo.engine, title_key, MAX_BLOCK - 4, record.year + 500)
    for count, candidates in ((MAX_BLOCK, [work_id]), (MAX_BLOCK + 1, [])):
        if count > MAX_BLOCK:
            add_key_rows(repo.engine, title_key, 1, record.year + 600)
        # the record under that key alone
        item = Item(full.record, full.key, full.f, [title_key])
        with Session(repo.engine) as session:
            lookup = prefetched(session, repo, item)
            assert lookup.count(title_key) == count
            assert lookup.db_keys[title_key] == [work_id]  # the others are not read
            assert lookup._stored_candidates(item) == candidates


def test_a_record_whose_identifier_links_are_unknown_reads_its_keys_whole(
    repo: Repository, clock: FixedClock
) -> None:
    record, work_id = stored_with_copies(repo, clock, 30)
    linked = twin(record, ids=Identifiers(doi=record.ids.doi))
    item = item_of(linked)
    id_key = next(k for k in item.keys if k.startswith("id:doi:"))
    title_key = next(k for k in item.keys if k.startswith("ts:"))
    assert record.year is not None
    # more works under its DOI's key than are read: which works it shares an identifier
    # with is not known, so every work under its keys is decoded, decades away too
    add_key_rows(repo.engine, id_key, MAX_BLOCK + 1, record.year)
    with Session(repo.engine) as session:
        lookup = prefetched(session, repo, item)
        assert item.linked is None
        assert len(lookup.db_keys[title_key]) == 31 and title_key not in lookup.ranges


def test_past_the_candidate_cap_the_keys_are_read_whole(
    repo: Repository, clock: FixedClock
) -> None:
    """More than 4 · MAX_BLOCK works under a record's keys: which ones the cap keeps depends on
    the unread rows too, so the record's keys are read whole and it meets what it met before
    keys were read by year."""
    record, work_id = stored_with_copies(repo, clock, 3)
    item = item_of(twin(record))
    assert record.year is not None
    plain = [k for k in item.keys if not k.startswith("id:")]
    assert len(plain) >= 5
    for key in plain:
        add_key_rows(repo.engine, key, MAX_BLOCK - 10, record.year + 500)
    with Session(repo.engine) as session:
        run = repo.begin_run("t", "europepmc", window(clock))
        writer = PageWriter(repo, session, run, NOW)
        assert writer.add([item.record]) == (0, 1)  # it still joins its work
        assert not set(plain) & set(writer.lookup.ranges)
        assert all(len(writer.lookup.db_keys[k]) == writer.lookup.count(k) for k in plain)
        assert writer.lookup.provs[item.key].work_id == work_id
