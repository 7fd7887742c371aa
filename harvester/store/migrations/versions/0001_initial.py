"""The initial schema: works, identifiers, provenance, hits, runs, watermarks, deliveries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.migrations.frozen import create_deliveries
from harvester.store.models import UTCDateTime

revision = "0001"
down_revision = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "works",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text()),
        sa.Column("year", sa.Integer()),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "harvest_runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("backfill", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("new_works", sa.Integer(), nullable=False),
        sa.Column("new_hits", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("cursor", sa.Text()),
    )
    op.create_index(
        "ix_harvest_runs_topic_source_started", "harvest_runs", ["topic", "source", "started_at"]
    )
    op.create_table(
        "identifiers",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.UniqueConstraint("scheme", "value", name="uq_identifiers_scheme_value"),
    )
    op.create_index("ix_identifiers_work_id", "identifiers", ["work_id"])
    op.create_table(
        "provenance",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", Id, sa.ForeignKey("harvest_runs.id", ondelete="SET NULL")),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.UniqueConstraint("source", "source_id", name="uq_provenance_source_record"),
    )
    op.create_index("ix_provenance_work_id", "provenance", ["work_id"])
    op.create_table(
        "topic_hits",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("backfill", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("run_id", Id, sa.ForeignKey("harvest_runs.id", ondelete="SET NULL")),
        sa.UniqueConstraint("topic", "work_id", name="uq_topic_hits_topic_work"),
    )
    op.create_index("ix_topic_hits_work_id", "topic_hits", ["work_id"])
    op.create_index("ix_topic_hits_topic_first_seen", "topic_hits", ["topic", "first_seen"])
    op.create_table(
        "watermarks",
        sa.Column("topic", sa.String(128), primary_key=True),
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("value", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    create_deliveries()
    op.create_index("ix_deliveries_work_id", "deliveries", ["work_id"])


def downgrade() -> None:
    for table in (
        "deliveries",
        "watermarks",
        "topic_hits",
        "provenance",
        "identifiers",
        "harvest_runs",
        "works",
    ):
        op.drop_table(table)
