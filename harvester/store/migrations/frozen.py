"""FROZEN: what more than one old migration creates. Never edit what is here, only add to it.

A table that one migration creates and a later one's downgrade creates again must be the same
both times; the two share its definition here, as later migrations share their helpers. Like
every migration, nothing here imports live code but types whose DDL is fixed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.models import UTCDateTime

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def create_deliveries() -> None:
    """The pre-outbox record of what was sent: 0001 creates it, 0002 replaces it by the outbox
    (and creates it again on downgrade)."""
    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subscription", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "subscription", "topic", "work_id", name="uq_deliveries_sub_topic_work"
        ),
    )


def in_id_ranges(table: str, statement: sa.TextClause, size: int = 50_000) -> None:
    """Run ``statement`` (bound ``:lo`` and ``:hi``) over ``table``'s ids in ranges of ``size``,
    so that no statement holds a million rows' worth of work at once (0011, 0012)."""
    conn = op.get_bind()
    low, high = conn.execute(sa.text(f"SELECT min(id), max(id) FROM {table}")).one()
    if low is None:
        return
    for lo in range(low, high + 1, size):
        conn.execute(statement, {"lo": lo, "hi": lo + size})
