"""Outbox (digests, digest items), daemon heartbeats, backfill checkpoints, run completeness."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.migrations.frozen import create_deliveries
from harvester.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("harvest_runs") as batch:
        batch.add_column(sa.Column("expected", sa.Integer()))
    op.create_table(
        "digests",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subscription", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("sent_at", UTCDateTime()),
    )
    op.create_index("ix_digests_subscription_status", "digests", ["subscription", "status"])
    op.create_table(
        "digest_items",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("digest_id", Id, sa.ForeignKey("digests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subscription", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.UniqueConstraint(
            "subscription", "topic", "work_id", name="uq_digest_items_sub_topic_work"
        ),
    )
    op.create_index("ix_digest_items_digest_id", "digest_items", ["digest_id"])
    op.create_index("ix_digest_items_work_id", "digest_items", ["work_id"])
    # deliveries were the first, pre-outbox record of what was sent; carry them over as sent
    # digests so nothing delivered before the upgrade is sent again
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT subscription, topic, work_id, delivered_at FROM deliveries")
    ).fetchall()
    by_subscription: dict[str, list[tuple[str, int, object]]] = {}
    for subscription, topic, work_id, delivered_at in rows:
        by_subscription.setdefault(subscription, []).append((topic, work_id, delivered_at))
    for subscription, items in by_subscription.items():
        when = max(item[2] for item in items)  # type: ignore[type-var]
        digest_id = conn.execute(
            sa.text(
                "INSERT INTO digests (subscription, channel, created_at, status, attempts, sent_at)"
                " VALUES (:s, 'unknown', :t, 'sent', 1, :t) RETURNING id"
            ),
            {"s": subscription, "t": when},
        ).scalar_one()
        for topic, work_id, _ in items:
            conn.execute(
                sa.text(
                    "INSERT INTO digest_items (digest_id, subscription, topic, work_id)"
                    " VALUES (:d, :s, :t, :w)"
                ),
                {"d": digest_id, "s": subscription, "t": topic, "w": work_id},
            )
    op.drop_table("deliveries")
    op.create_table(
        "heartbeats",
        sa.Column("daemon_id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime()),
    )
    op.create_table(
        "backfill_slices",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("slice_start", UTCDateTime(), nullable=False),
        sa.Column("slice_end", UTCDateTime(), nullable=False),
        sa.Column("run_id", Id, sa.ForeignKey("harvest_runs.id", ondelete="SET NULL")),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "topic", "source", "slice_start", "slice_end", name="uq_backfill_slice"
        ),
    )


def downgrade() -> None:
    op.drop_table("backfill_slices")
    op.drop_table("heartbeats")
    create_deliveries()
    op.drop_table("digest_items")
    op.drop_table("digests")
    with op.batch_alter_table("harvest_runs") as batch:
        batch.drop_column("expected")
