"""Shared harvesting: the windows a source fetched once for every topic, and their records
(the JSON only of those no topic matched; the rest are provenance rows).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.models import Id, UTCDateTime

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "source_windows",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("topics", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("pages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("records", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_source_windows_source_end", "source_windows", ["source", "window_end"])
    op.create_table(
        "source_records",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "window_id",
            Id,
            sa.ForeignKey("source_windows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.UniqueConstraint("window_id", "source", "source_id", name="uq_source_records"),
    )
    op.create_index("ix_source_records_source_record", "source_records", ["source", "source_id"])


def downgrade() -> None:
    op.drop_index("ix_source_records_source_record", "source_records")
    op.drop_table("source_records")
    op.drop_index("ix_source_windows_source_end", "source_windows")
    op.drop_table("source_windows")
