"""Old harvest runs are rolled up into daily counts per topic × source; the columns that
point at a run get an index, so deleting runs does not scan provenance for each one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "harvest_run_days",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("backfill", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("completed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("records", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("new_works", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("new_hits", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"),
        sa.UniqueConstraint("topic", "source", "day", "backfill", name="uq_harvest_run_days"),
    )
    op.create_index("ix_provenance_run_id", "provenance", ["run_id"])
    op.create_index("ix_topic_hits_run_id", "topic_hits", ["run_id"])
    op.create_index("ix_backfill_slices_run_id", "backfill_slices", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_backfill_slices_run_id", "backfill_slices")
    op.drop_index("ix_topic_hits_run_id", "topic_hits")
    op.drop_index("ix_provenance_run_id", "provenance")
    op.drop_table("harvest_run_days")
