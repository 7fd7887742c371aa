"""Blocking keys carry their work's year (work_match_keys.year = works.year), so candidates
beyond the year window are dropped without reading their works rows: the year follows the
work when a merge changes it, migration 0012 fills it, and matching finds what it found."""

from __future__ import annotations

import sqlalchemy as sa

from harvester.store.database import upgrade
from harvester.store.repository import Repository
from tests.conftest import FixedClock
from tests.test_record_once import crossref_twin, downgrade
from tests.test_store import pubmed_records, repo, window

__all__ = ["repo"]  # the store fixture of test_store, on both backends


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
