"""The tables of retraction / correction notices (issue 16), beside those of models.py.

::

    works ─┬─< work_updates     a notice about a stored work, one row per source stating it
           └─< digest_updates   (subscription, work, event) unique: an update told once
    pending_updates             a notice whose target is not stored yet, per target identifier
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from harvester.store.models import Base, Id


class WorkUpdate(Base):
    """A notice about a stored work (retraction, correction …), one row per source that
    states it: ``asserted_by`` who says so, ``source`` the API it was read from."""

    __tablename__ = "work_updates"
    __table_args__ = (
        UniqueConstraint(
            "work_id", "kind", "notice_key", "asserted_by", "source", name="uq_work_updates"
        ),
        Index("ix_work_updates_found_at", "found_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    work_id: Mapped[int] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    notice_key: Mapped[str] = mapped_column(String(300))  # "doi:…", "pmid:…" or "" (unnamed)
    notice: Mapped[dict[str, Any]] = mapped_column(JSON)  # the notice's identifiers
    date: Mapped[str | None] = mapped_column(String(10))
    asserted_by: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    found_at: Mapped[datetime]


class PendingUpdate(Base):
    """A notice whose target is not stored yet, one row per identifier of the target; applied
    (and deleted) when a work with one of them is stored."""

    __tablename__ = "pending_updates"
    __table_args__ = (
        UniqueConstraint(
            "scheme",
            "value",
            "kind",
            "notice_key",
            "asserted_by",
            "source",
            name="uq_pending_updates",
        ),
        Index("ix_pending_updates_scheme_value", "scheme", "value"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    scheme: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))
    target: Mapped[str] = mapped_column(String(600))  # every identifier of the target, as a key
    kind: Mapped[str] = mapped_column(String(32))
    notice_key: Mapped[str] = mapped_column(String(300))
    notice: Mapped[dict[str, Any]] = mapped_column(JSON)
    date: Mapped[str | None] = mapped_column(String(10))
    asserted_by: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    found_at: Mapped[datetime]


class DigestUpdate(Base):
    """One update of a work in one digest (the outbox, as for studies); unique per
    subscription × work × event, so an update reaches a subscription at most once."""

    __tablename__ = "digest_updates"
    __table_args__ = (
        UniqueConstraint("subscription", "work_id", "event", name="uq_digest_updates_sub_event"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"), index=True)
    subscription: Mapped[str] = mapped_column(String(255))
    work_id: Mapped[int] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(340))  # "retraction", "erratum doi:…"
