"""Web: one-click unsubscriptions and readers' feedback on studies."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.models import Id, UTCDateTime

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "unsubscriptions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subscription", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("subscription", "recipient", name="uq_unsubscriptions_sub_recipient"),
    )
    op.create_table(
        "feedback",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subscription", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "recipient", "topic", "work_id", name="uq_feedback_recipient_topic_work"
        ),
    )
    op.create_index("ix_feedback_topic", "feedback", ["topic"])
    op.create_index("ix_feedback_work_id", "feedback", ["work_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("unsubscriptions")
