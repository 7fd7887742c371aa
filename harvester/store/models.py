"""The tables. Only the repository reads and writes them; migrations create them.

::

    works ─┬─< identifiers   (scheme, value) unique: exact-identifier merging
           ├─< provenance    one row per source record (source, source_id) unique; its
           │                 JSON NULL where it is the work's record (stored once)
           ├─< topic_hits    (topic, work) unique: what a topic found, and when
           └─< digest_items  (subscription, topic, work) unique: what a digest carries
    digests                  the outbox: stored before sending, marked sent after acceptance
    harvest_runs             one row per topic × source × window attempt (recent ones)
    harvest_run_days         older runs rolled up: counts per topic × source × day
    watermarks               (topic, source) → end of the last completely stored window
    heartbeats               one row per daemon, refreshed while it runs
    backfill_slices          checkpoints of a backfill, one per finished date slice
    source_windows ─< source_records   a source's window fetched once for every topic, and
                             what it held (JSON kept only for records no topic matched)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT on PostgreSQL; SQLite needs INTEGER for its rowid alias to autoincrement
Id = BigInteger().with_variant(Integer(), "sqlite")


# the columns most tables share: a surrogate key, and references to a work and to a run
Key = Annotated[int, mapped_column(Id, primary_key=True, autoincrement=True)]
WorkRef = Annotated[int, mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)]
RunRef = Annotated[
    int | None, mapped_column(ForeignKey("harvest_runs.id", ondelete="SET NULL"), index=True)
]


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Work(Base):
    __tablename__ = "works"

    id: Mapped[Key]
    title: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Identifier(Base):
    __tablename__ = "identifiers"
    __table_args__ = (UniqueConstraint("scheme", "value", name="uq_identifiers_scheme_value"),)

    id: Mapped[Key]
    work_id: Mapped[WorkRef]
    scheme: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))


class Provenance(Base):
    __tablename__ = "provenance"
    __table_args__ = (UniqueConstraint("source", "source_id", name="uq_provenance_source_record"),)

    id: Mapped[Key]
    work_id: Mapped[WorkRef]
    source: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(255))
    fetched_at: Mapped[datetime]
    run_id: Mapped[RunRef]
    # NULL (SQL NULL, not JSON null): the same JSON as its work's record, which stands for it
    # (each record stored once, harvester.store.provenance); read coalesce(record, works.record)
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class TopicHit(Base):
    __tablename__ = "topic_hits"
    __table_args__ = (
        UniqueConstraint("topic", "work_id", name="uq_topic_hits_topic_work"),
        Index("ix_topic_hits_topic_first_seen", "topic", "first_seen"),
    )

    id: Mapped[Key]
    topic: Mapped[str] = mapped_column(String(128))
    work_id: Mapped[WorkRef]
    first_seen: Mapped[datetime]
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[RunRef]


class HarvestRun(Base):
    __tablename__ = "harvest_runs"
    __table_args__ = (
        Index("ix_harvest_runs_topic_source_started", "topic", "source", "started_at"),
    )

    id: Mapped[Key]
    topic: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # running | ok | partial | failed | interrupted (partial: every page stored, some records
    # skipped as unreadable; the watermark advanced all the same)
    status: Mapped[str] = mapped_column(String(16))
    requests: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    new_works: Mapped[int] = mapped_column(Integer, default=0)
    new_hits: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[str | None] = mapped_column(Text)
    # what the source said it had for the window (count/total), beside what was retrieved
    expected: Mapped[int | None] = mapped_column(Integer)
    # records a parser could not read (each logged), and the first few reasons, one a line
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    skip_reasons: Mapped[str | None] = mapped_column(Text)


class Watermark(Base):
    __tablename__ = "watermarks"

    topic: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[datetime]
    updated_at: Mapped[datetime]


class Digest(Base):
    """The outbox: a digest is stored with its items before it is sent, and marked sent only
    after the channel accepted it. A failed send leaves it pending for a later tick."""

    __tablename__ = "digests"
    __table_args__ = (Index("ix_digests_subscription_status", "subscription", "status"),)

    id: Mapped[Key]
    subscription: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    # pending | sent | failed (failed: the channel refused it for good, e.g. Slack 400)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # messages of a multi-part digest (Slack) already accepted: a retry resumes after them
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # set before each send and cleared only by a clean refusal: a sealed digest may have
    # reached its reader, so it is re-sent as it is (same items, same Message-ID), never topped
    # up with newer studies
    sealed: Mapped[bool] = mapped_column(Boolean, default=False)

    @classmethod
    def pending(cls, subscription: str, channel: str, now: datetime) -> Digest:
        """A new digest for ``channel``, due at once, nothing of it sent yet."""
        return cls(
            subscription=subscription,
            channel=channel,
            created_at=now,
            status="pending",
            attempts=0,
            parts_sent=0,
            next_attempt_at=now,
            sealed=False,
        )

    @property
    def takes_items(self) -> bool:
        """Pending and never possibly seen (not sealed): items may still be added."""
        return self.status == "pending" and not self.sealed


class DigestItem(Base):
    """One study in one digest; unique per subscription, so an item is sent at most once."""

    __tablename__ = "digest_items"
    __table_args__ = (
        UniqueConstraint("subscription", "topic", "work_id", name="uq_digest_items_sub_topic_work"),
    )

    id: Mapped[Key]
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"), index=True)
    subscription: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(128))
    work_id: Mapped[WorkRef]


class Heartbeat(Base):
    """One row per running daemon, refreshed while its scheduler runs."""

    __tablename__ = "heartbeats"

    daemon_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class BackfillSlice(Base):
    """A backfill's checkpoint: each date slice done is remembered, so a rerun continues."""

    __tablename__ = "backfill_slices"
    __table_args__ = (
        UniqueConstraint("topic", "source", "slice_start", "slice_end", name="uq_backfill_slice"),
    )

    id: Mapped[Key]
    topic: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32))
    slice_start: Mapped[datetime]
    slice_end: Mapped[datetime]
    run_id: Mapped[RunRef]
    finished_at: Mapped[datetime]


class WorkMatchKey(Base):
    """Blocking keys of a work (dedup.blocking_keys of each of its records), indexed, so a new
    record meets only the few stored works that could be the same study."""

    __tablename__ = "work_match_keys"
    # rows kept as their (key, work_id) index, year beside (PostgreSQL: INCLUDE, see 0013)
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    work_id: Mapped[int] = mapped_column(
        ForeignKey("works.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # works.year (the page writer keeps it so): a candidate beyond the year window is dropped
    year: Mapped[int | None] = mapped_column(Integer)


class WorkLink(Base):
    """Two works that are versions of one study: ``kind`` "preprint" for a preprint and its
    journal article, "venue" for one paper in two venues (a conference paper and its journal
    version or report); :class:`harvester.dedup.rules.Link`."""

    __tablename__ = "work_links"
    __table_args__ = (UniqueConstraint("work_id", "other_work_id", name="uq_work_links_pair"),)

    id: Mapped[Key]
    work_id: Mapped[WorkRef]
    other_work_id: Mapped[WorkRef]
    reason: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), server_default="preprint")
    created_at: Mapped[datetime]


class Deployment(Base):
    """One row: a random id made when the database was created. Message-IDs include it, so
    digests of another database (recreated, or moved) never share a Message-ID with these."""

    __tablename__ = "deployment"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]


class HarvestRunDay(Base):
    """Harvest runs older than the retention, rolled up: per topic × source × day (UTC) of
    their start, how many ran, how many completed, and their counts summed."""

    __tablename__ = "harvest_run_days"
    __table_args__ = (
        UniqueConstraint("topic", "source", "day", "backfill", name="uq_harvest_run_days"),
    )

    id: Mapped[Key]
    topic: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)  # ok or partial
    failed: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    new_works: Mapped[int] = mapped_column(Integer, default=0)
    new_hits: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)


class Unsubscription(Base):
    """A recipient who left a subscription (one-click unsubscribe); the config's ``to`` list
    still says who may receive, this row says who does not want to."""

    __tablename__ = "unsubscriptions"
    __table_args__ = (
        UniqueConstraint("subscription", "recipient", name="uq_unsubscriptions_sub_recipient"),
    )

    id: Mapped[Key]
    subscription: Mapped[str] = mapped_column(String(255))
    recipient: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]


class Feedback(Base):
    """A reader's verdict on a study in a topic ("relevant" / "not-relevant"); the latest
    verdict of one recipient on one topic × work is kept, with its time (training data)."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("recipient", "topic", "work_id", name="uq_feedback_recipient_topic_work"),
    )

    id: Mapped[Key]
    recipient: Mapped[str] = mapped_column(String(320))
    subscription: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(128), index=True)
    work_id: Mapped[WorkRef]
    verdict: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class SourceWindow(Base):
    """One window of a source fetched once for every topic that uses it (shared harvesting):
    what it asked, how it ended. Its records are ``source_records``; a completed window
    (ok/partial) is what a topic joining later reads from the store instead of fetching."""

    __tablename__ = "source_windows"
    __table_args__ = (Index("ix_source_windows_source_end", "source", "window_end"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))  # window (the whole delta) | combined
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))  # running | ok | partial | failed | ...
    topics: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class SourceRecord(Base):
    """A record a shared window fetched. Its JSON is kept here only while no topic matched
    it (then it is the provenance row's, and ``record`` is null): each record stored once."""

    __tablename__ = "source_records"
    __table_args__ = (
        UniqueConstraint("window_id", "source", "source_id", name="uq_source_records"),
        Index("ix_source_records_source_record", "source", "source_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("source_windows.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(255))
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
