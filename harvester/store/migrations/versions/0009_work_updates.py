"""Retraction and correction notices: per work, pending (target not stored yet), per digest."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from harvester.store.models import Id, UTCDateTime

revision = "0009"
down_revision = "0008"

# a target (work_id, or scheme and value) holds a notice once per kind, key, asserter and source
_NOTICE_KEY = ("kind", "notice_key", "asserted_by", "source")


def _notice_columns() -> list[sa.Column[Any]]:
    """A notice, as both tables that hold one keep it (new columns for each table)."""
    return [
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("notice_key", sa.String(300), nullable=False),
        sa.Column("notice", sa.JSON(), nullable=False),
        sa.Column("date", sa.String(10), nullable=True),
        sa.Column("asserted_by", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("found_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "work_updates",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        *_notice_columns(),
        sa.UniqueConstraint("work_id", *_NOTICE_KEY, name="uq_work_updates"),
    )
    op.create_index("ix_work_updates_work_id", "work_updates", ["work_id"])
    op.create_index("ix_work_updates_found_at", "work_updates", ["found_at"])
    op.create_table(
        "pending_updates",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("target", sa.String(600), nullable=False),
        *_notice_columns(),
        sa.UniqueConstraint("scheme", "value", *_NOTICE_KEY, name="uq_pending_updates"),
    )
    op.create_index("ix_pending_updates_scheme_value", "pending_updates", ["scheme", "value"])
    op.create_table(
        "digest_updates",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("digest_id", Id, sa.ForeignKey("digests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subscription", sa.String(255), nullable=False),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event", sa.String(340), nullable=False),
        sa.UniqueConstraint("subscription", "work_id", "event", name="uq_digest_updates_sub_event"),
    )
    op.create_index("ix_digest_updates_digest_id", "digest_updates", ["digest_id"])
    op.create_index("ix_digest_updates_work_id", "digest_updates", ["work_id"])


def downgrade() -> None:
    op.drop_table("digest_updates")
    op.drop_table("pending_updates")
    op.drop_table("work_updates")
