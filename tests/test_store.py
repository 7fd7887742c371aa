"""The store on SQLite and on PostgreSQL: the same tests, both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from harvester.records import Identifiers, Record
from harvester.sources.base import Window
from harvester.sources.pubmed import parse_efetch
from harvester.store.database import current_revision, head_revision, open_engine
from harvester.store.repository import Repository
from harvester.store.values import RunCounts
from tests.conftest import FixedClock, require_shared


def pubmed_records(name: str = "efetch_pubmed_50_records_structured_abstracts.xml") -> list[Record]:
    path = require_shared() / "pubmed" / name
    return list(parse_efetch(path.read_bytes(), url=str(path)).records)


@pytest.fixture
def repo(database_url: str, clock: FixedClock) -> Repository:
    engine = open_engine(database_url)
    yield Repository(engine, clock=clock)
    engine.dispose()


def window(clock: FixedClock) -> Window:
    return Window(clock.now - timedelta(days=7), clock.now)


def test_new_database_is_migrated_to_head(database_url: str) -> None:
    for _ in range(2):  # the second opening finds the schema current and changes nothing
        engine = open_engine(database_url)
        try:
            assert current_revision(engine) == head_revision()
        finally:
            engine.dispose()


def test_upgrade_from_0001_keeps_what_was_delivered(database_url: str) -> None:
    import sqlalchemy as sa

    from harvester.store.database import create, upgrade

    engine = create(database_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            work = conn.execute(
                sa.text(
                    "INSERT INTO works (title, year, record, created_at, updated_at) "
                    "VALUES ('t', 2020, '{}', :now, :now) RETURNING id"
                ),
                {"now": "2025-01-01 00:00:00"},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO deliveries (subscription, topic, work_id, delivered_at) "
                    "VALUES ('sub', 'topic', :w, :now)"
                ),
                {"w": work, "now": "2025-01-02 00:00:00"},
            )
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT d.status, i.subscription, i.topic, i.work_id FROM digest_items i "
                    "JOIN digests d ON d.id = i.digest_id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [("sent", "sub", "topic", work)]
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def work_counts(repo: Repository) -> dict[str, int]:
    return {
        "works": repo.count_works(),
        "identifiers": repo.count_identifiers(),
        "provenance": repo.count_provenance(),
        "topic_hits": repo.count_topic_hits(),
    }


def test_storing_a_page_twice_changes_nothing(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records()
    run = repo.begin_run("nlp", "pubmed", window(clock))
    first = repo.store_page(run, "nlp", records)
    assert (first.new_works, first.new_hits, first.duplicates) == (len(records), len(records), 0)
    counts = work_counts(repo)

    again = repo.store_page(run, "nlp", records)
    assert (again.new_works, again.new_hits, again.duplicates) == (0, 0, len(records))
    assert work_counts(repo) == counts
    # every record's PMID and DOI became a unique identifier row
    expected_ids = sum(len(r.ids.items()) for r in records)
    assert counts["identifiers"] == expected_ids


def test_same_identifier_from_two_sources_is_one_work_with_two_provenances(
    repo: Repository, clock: FixedClock
) -> None:
    pubmed = next(r for r in pubmed_records() if r.ids.doi and r.abstract)
    # A second description of the same article, derived from the real PubMed record as a
    # DOI-only source would give it (no PMID, no abstract, a shorter title casing).
    other = Record(
        source="crossref",
        source_id=pubmed.ids.doi,
        ids=Identifiers(doi=pubmed.ids.doi),
        title=(pubmed.title or "").upper(),
        venue=pubmed.venue,
        year=pubmed.year,
    )
    run = repo.begin_run("t", "pubmed", window(clock))
    assert repo.store_page(run, "t", [pubmed]).new_works == 1
    outcome = repo.store_page(run, "t", [other])
    assert (outcome.new_works, outcome.new_hits, outcome.duplicates) == (0, 0, 1)

    (work,) = repo.works("t")
    assert work.sources == ("crossref", "pubmed")
    assert work.record.ids.pmid == pubmed.ids.pmid and work.record.ids.doi == pubmed.ids.doi
    assert work.record.abstract == pubmed.abstract  # the complete abstract is kept
    assert work.record.title == pubmed.title  # PubMed is preferred for bibliographic fields
    assert repo.count_provenance() == 2


def test_watermark_moves_forward_only(repo: Repository, clock: FixedClock) -> None:
    assert repo.watermark("t", "pubmed") is None
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.finish_run(run, status="ok", counts=RunCounts(requests=3, pages=1), watermark=clock.now)
    assert repo.watermark("t", "pubmed") == clock.now
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.finish_run(run, status="ok", counts=RunCounts(), watermark=clock.now - timedelta(days=1))
    assert repo.watermark("t", "pubmed") == clock.now
    latest = repo.runs("t", "pubmed")
    assert [r.status for r in latest] == ["ok", "ok"]
    assert latest[-1].counts.requests == 3 and latest[-1].finished_at == clock.now
    assert latest[0].window.start.tzinfo is not None


def test_failed_run_keeps_its_error(repo: Repository, clock: FixedClock) -> None:
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.finish_run(run, status="failed", counts=RunCounts(errors=1), error="HTTP 503 (url)")
    (row,) = repo.runs("t")
    assert (row.status, row.error, row.counts.errors) == ("failed", "HTTP 503 (url)", 1)
    assert repo.watermark("t", "pubmed") is None


def test_a_run_keeps_its_skipped_count_and_first_reasons(
    repo: Repository, clock: FixedClock
) -> None:
    run = repo.begin_run("t", "pubmed", window(clock))
    reasons = [f"{n}: missing or invalid PMID 'x{n}'" for n in range(8)]
    counts = RunCounts(pages=2, records=40, skipped=8)
    repo.finish_run(run, status="partial", counts=counts, skip_reasons=reasons, watermark=clock.now)
    (row,) = repo.runs("t", "pubmed", backfill=False)
    assert (row.status, row.counts.skipped, row.counts.errors) == ("partial", 8, 0)
    assert row.skip_reasons == tuple(reasons[:5])  # the first few; the log has every one
    assert repo.watermark("t", "pubmed") == clock.now  # skipped records do not hold it
    assert repo.runs("t", "pubmed", backfill=True) == []


def test_a_watermark_beyond_now_is_replaced_by_the_next_one(
    repo: Repository, clock: FixedClock
) -> None:
    """A watermark a clock running ahead stored is not kept by 'forward only'."""
    start = clock.now
    clock.now = start + timedelta(days=30)
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.finish_run(run, status="ok", counts=RunCounts(), watermark=clock.now)
    clock.now = start + timedelta(days=1)
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.finish_run(run, status="ok", counts=RunCounts(), watermark=clock.now)
    assert repo.watermark("t", "pubmed") == start + timedelta(days=1)


def test_stored_errors_are_redacted(database_url: str, clock: FixedClock) -> None:
    engine = open_engine(database_url)
    try:
        repo = Repository(engine, clock=clock, redact=lambda t: t.replace("k3y-123456", "REDACTED"))
        run = repo.begin_run("t", "pubmed", window(clock))
        repo.finish_run(
            run,
            status="failed",
            counts=RunCounts(errors=1, skipped=1),
            error="HTTP 401: key k3y-123456 refused",
            skip_reasons=["1: echo k3y-123456"],
        )
        (row,) = repo.runs("t")
        assert (row.error, row.skip_reasons) == (
            "HTTP 401: key REDACTED refused",
            ("1: echo REDACTED",),
        )
    finally:
        engine.dispose()


def test_pending_skips_delivered_and_backfill(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records()[:5]
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", records[:3])
    repo.store_page(run, "t", records[3:], backfill=True)
    pending = repo.pending("sub", ["t"])
    assert len(pending) == 3
    assert len(repo.pending("sub", ["t"], include_backfill=True)) == 5
    digest = repo.create_digest("sub", "email", [("t", w.id) for w in pending[:2]])
    assert digest is not None
    # an item already in a digest of the subscription is never taken again
    assert repo.create_digest("sub", "email", [("t", pending[0].id)]) is None
    assert [w.id for w in repo.pending("sub", ["t"])] == [pending[2].id]
    assert len(repo.pending("other-sub", ["t"])) == 3


def test_pending_pages_read_what_pending_reads(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records()[:12]
    run = repo.begin_run("t", "pubmed", window(clock))
    # hits of one page share their first_seen: the pages must break those ties by id
    repo.store_page(run, "t", records[:5])
    repo.store_page(run, "u", records[3:8])
    clock.now += timedelta(seconds=1)
    repo.store_page(run, "t", records[8:], backfill=True)
    repo.store_page(run, "u", records[10:])
    taken = repo.pending("sub", ["t"])[1:3]
    assert repo.create_digest("sub", "email", [("t", w.id) for w in taken]) is not None
    for backfill in (False, True):
        whole = [
            (w.topic, w.id) for w in repo.pending("sub", ["t", "u"], include_backfill=backfill)
        ]
        assert len(whole) == (14 if backfill else 10)
        for size in (1, 2, 5, 100):
            pages = list(
                repo.pending_pages("sub", ["t", "u"], include_backfill=backfill, page=size)
            )
            assert all(0 < len(p) <= size for p in pages)
            assert [(w.topic, w.id) for p in pages for w in p] == whole


def test_outbox_keeps_a_digest_until_it_is_sent(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records()[:4]
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", records)
    items = [("t", w.id) for w in repo.pending("sub", ["t"])]
    digest = repo.create_digest("sub", "email", items)
    assert digest is not None
    assert repo.due_digests("sub", clock.now) == [digest]
    assert [w.id for w in repo.digest_works(digest)] == [work_id for _, work_id in items]

    retry_at = clock.now + timedelta(minutes=5)
    assert repo.mark_attempt_failed(
        digest, "SMTP 451 try later", lambda attempts: timedelta(minutes=5 * attempts)
    ) == (1, retry_at)
    assert repo.due_digests("sub", clock.now) == []  # backing off
    assert repo.due_digests("sub", retry_at) == [digest]
    assert repo.pending_digests() == [("sub", digest, 1, "SMTP 451 try later")]

    repo.mark_sent(digest)
    assert repo.due_digests("sub", retry_at) == [] and repo.pending_digests() == []
    assert repo.pending("sub", ["t"]) == []


def test_heartbeats_and_backfill_checkpoints(repo: Repository, clock: FixedClock) -> None:
    repo.beat("d1", host="h", pid=1)
    clock.now += timedelta(seconds=30)
    repo.beat("d1", host="h", pid=1)
    ((daemon, host, pid, started, beat, stopped),) = repo.heartbeats()
    assert (daemon, started, beat, stopped) == ("d1", beat - timedelta(seconds=30), clock.now, None)
    w = window(clock)
    run = repo.begin_run("t", "pubmed", w, backfill=True)
    repo.finish_slice("t", "pubmed", w, run)
    repo.finish_slice("t", "pubmed", w, run)  # idempotent
    assert repo.finished_slices("t", "pubmed") == {(w.start, w.end)}


def test_record_without_ids_is_stored_once(repo: Repository, clock: FixedClock) -> None:
    # derived from a real record: the same title and year, every identifier removed
    real = pubmed_records()[0]
    bare = Record(source="pubmed", title=real.title, year=real.year)
    run = repo.begin_run("t", "pubmed", window(clock))
    assert repo.store_page(run, "t", [bare]).new_works == 1
    assert repo.store_page(run, "t", [bare]).new_works == 0
    assert repo.count_works() == 1


def test_topic_hits_are_per_topic(repo: Repository, clock: FixedClock) -> None:
    records = pubmed_records()[:2]
    run = repo.begin_run("a", "pubmed", window(clock))
    repo.store_page(run, "a", records)
    run_b = repo.begin_run("b", "pubmed", window(clock))
    outcome = repo.store_page(run_b, "b", records[:1])
    assert (outcome.new_works, outcome.new_hits) == (0, 1)
    assert len(repo.works("a")) == 2 and len(repo.works("b")) == 1
    assert len(repo.works()) == 2
    since = repo.works("a", since=clock.now + timedelta(seconds=1))
    assert since == []


def test_sqlite_file_uses_wal_foreign_keys_and_a_64_mb_page_cache(tmp_path: Path) -> None:
    import sqlalchemy as sa

    engine = open_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        # negative: KiB, not pages; the default (-2000) made every probe of a large store
        # re-read its B-tree pages through the OS (README, "Ingest at 1,000,000 works")
        assert conn.execute(sa.text("PRAGMA cache_size")).scalar() == -64 * 1024
    engine.dispose()


# -- incremental matching against stored works (fuzzy, through indexed blocking keys) -----------


def dataset_record(dataset: str, record_id: str, source: str) -> Record:
    import csv

    from harvester.dedup.files import record_from_fields

    path = require_shared().parent / "dedup" / dataset / "records.csv"
    with path.open(encoding="utf-8", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["record_id"] == record_id)
    return record_from_fields(row, source=source).with_changes(source_id=f"{source}:{record_id}")


def test_same_study_without_shared_identifier_is_found_among_stored_works(
    repo: Repository, clock: FixedClock
) -> None:
    # colrev_special_cases id_0000007 (no DOI column) and id_0000011 (with its DOI) are one
    # article as two databases exported it; stored one after the other, in two harvests
    first = dataset_record("colrev_special_cases", "id_0000007", "europepmc")
    second = dataset_record("colrev_special_cases", "id_0000011", "crossref")
    run = repo.begin_run("t", "europepmc", window(clock))
    repo.store_page(run, "t", [first] + pubmed_records()[:10])  # other works around it
    outcome = repo.store_page(repo.begin_run("t", "crossref", window(clock)), "t", [second])
    assert (outcome.new_works, outcome.duplicates) == (0, 1)
    work = next(w for w in repo.works("t") if "crossref" in w.sources)
    assert work.sources == ("crossref", "europepmc")
    assert work.record.ids.doi == second.ids.doi


def test_preprint_and_article_are_linked_in_the_store(repo: Repository, clock: FixedClock) -> None:
    # the article: colrev_special_cases id_0000011; its preprint derived from it (a bioRxiv
    # DOI, no journal details), as the dedup tests do
    article = dataset_record("colrev_special_cases", "id_0000011", "crossref")
    preprint = article.with_changes(
        source="biorxiv", source_id="10.1101/2004.01.01.123456",
        ids=Identifiers(doi="10.1101/2004.01.01.123456"), venue=None, volume=None, issue=None,
        pages=None, type="preprint",
    )  # fmt: skip
    run = repo.begin_run("t", "biorxiv", window(clock))
    repo.store_page(run, "t", [preprint])
    outcome = repo.store_page(repo.begin_run("t", "crossref", window(clock)), "t", [article])
    assert outcome.new_works == 1  # linked, not merged
    pre, art = sorted(repo.works("t"), key=lambda w: w.id)
    assert repo.links(art.id) == [(pre.id, repo.links(pre.id)[0][1])]
    assert link_kinds(repo) == ["preprint"]
    assert repo.versions([art.id, pre.id]) == {art.id: (pre.record,), pre.id: (art.record,)}


def link_kinds(repo: Repository) -> list[str]:
    import sqlalchemy as sa

    with repo.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT kind FROM work_links ORDER BY id")).scalars())


def test_conference_paper_and_journal_version_years_apart_are_linked_in_the_store(
    repo: Repository, clock: FixedClock
) -> None:
    # colrev_special_cases id_0000009 (Symposium on Dependable Autonomic and Secure Computing
    # 2011) and id_0000010 (J. Organizational Computing and Electronic Commerce 2014): one
    # paper's conference and journal versions, three years apart, harvested a day apart
    conference = dataset_record("colrev_special_cases", "id_0000009", "crossref")
    journal = dataset_record("colrev_special_cases", "id_0000010", "crossref")
    repo.store_page(repo.begin_run("t", "crossref", window(clock)), "t", [conference])
    outcome = repo.store_page(repo.begin_run("t", "crossref", window(clock)), "t", [journal])
    assert outcome.new_works == 1  # linked, never merged
    first, second = sorted(repo.works("t"), key=lambda w: w.id)
    assert [w for w, _ in repo.links(second.id)] == [first.id]
    assert link_kinds(repo) == ["venue"]
    assert repo.versions([first.id]) == {first.id: (second.record,)}


def test_upgrade_to_0008_gives_old_version_links_their_kind(database_url: str) -> None:
    import sqlalchemy as sa

    from harvester.store.database import create, upgrade

    engine = create(database_url)
    try:
        upgrade(engine, "0007")
        reasons = ["the preprint names the article's DOI",
                   "one paper in two venues: same title and authors"]  # fmt: skip
        with engine.begin() as conn:
            works = [
                conn.execute(
                    sa.text(
                        "INSERT INTO works (title, year, record, created_at, updated_at) "
                        "VALUES ('t', 2020, '{}', :now, :now) RETURNING id"
                    ),
                    {"now": "2025-01-01 00:00:00"},
                ).scalar_one()
                for _ in range(3)
            ]
            for other, reason in zip(works[1:], reasons, strict=True):
                conn.execute(
                    sa.text(
                        "INSERT INTO work_links (work_id, other_work_id, reason, created_at) "
                        "VALUES (:a, :b, :reason, :now)"
                    ),
                    {"a": works[0], "b": other, "reason": reason, "now": "2025-01-01 00:00:00"},
                )
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT reason, kind FROM work_links ORDER BY id")).all()
        assert [tuple(r) for r in rows] == list(zip(reasons, ["preprint", "venue"], strict=True))
    finally:
        engine.dispose()


def test_supplement_doi_does_not_merge_different_abstracts(
    repo: Repository, clock: FixedClock
) -> None:
    # sra_haematology id_0000243 and id_0000326: two abstracts of one meeting supplement,
    # both given the supplement's single DOI (as some databases do)
    supplement = Identifiers(doi="10.1007/s00467-011-1948-4")
    a = dataset_record("sra_haematology", "id_0000243", "crossref").with_changes(ids=supplement)
    b = dataset_record("sra_haematology", "id_0000326", "openalex").with_changes(ids=supplement)
    run = repo.begin_run("t", "crossref", window(clock))
    repo.store_page(run, "t", [a])
    assert repo.store_page(run, "t", [b]).new_works == 1
    assert repo.count_works() == 2


def test_a_retry_time_set_by_a_clock_far_ahead_is_due_once_the_clock_is_right(
    repo: Repository, clock: FixedClock
) -> None:
    """Issue 18.9: a digest refused while the clock ran 30 days ahead was not due again for a
    month after the clock was put right; and a Retry-After is not believed beyond a day."""
    records = pubmed_records()[:2]
    run = repo.begin_run("t", "pubmed", window(clock))
    repo.store_page(run, "t", records)
    digest = repo.create_digest("sub", "email", [("t", w.id) for w in repo.pending("sub", ["t"])])
    assert digest is not None
    right = clock.now
    clock.now = right + timedelta(days=30)  # the clock jumps ahead, the send fails
    repo.mark_attempt_failed(digest, "SMTP 451", lambda attempts: timedelta(minutes=1))
    clock.now = right  # put right
    assert repo.due_digests("sub", right) == [digest]
    # a Slack Retry-After of a week waits a day at most
    _, retry_at = repo.mark_attempt_failed(
        digest, "HTTP 429", lambda a: timedelta(minutes=1), not_before=right + timedelta(days=7)
    )
    assert retry_at == right + timedelta(days=1)
    assert repo.due_digests("sub", right + timedelta(hours=23)) == []
    assert repo.due_digests("sub", right + timedelta(days=1)) == [digest]
