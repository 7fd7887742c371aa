"""Fuzzy matching against stored works: indexed blocking keys, and version links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from harvester.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "work_match_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_work_match_keys_work_id", "work_match_keys", ["work_id"])
    op.create_table(
        "work_links",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "other_work_id", Id, sa.ForeignKey("works.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("work_id", "other_work_id", name="uq_work_links_pair"),
    )
    op.create_index("ix_work_links_work_id", "work_links", ["work_id"])
    op.create_index("ix_work_links_other_work_id", "work_links", ["other_work_id"])
    # works stored before this revision get their keys when a record of theirs is stored again;
    # `harvester db upgrade` fills them for every work now, so old works are matched too
    from harvester.dedup.features import blocking_keys
    from harvester.records import Record

    conn = op.get_bind()
    keys = sa.table("work_match_keys", sa.column("key"), sa.column("work_id"))
    rows = conn.execute(sa.text("SELECT work_id, record FROM provenance ORDER BY id"))
    seen: set[tuple[str, int]] = set()
    batch: list[dict[str, object]] = []
    for work_id, record in rows:
        data = record if isinstance(record, dict) else json.loads(record)
        for key in blocking_keys(Record.from_json(data)):
            if (key, work_id) not in seen:
                seen.add((key, work_id))
                batch.append({"key": key[:255], "work_id": work_id})
    if batch:
        op.bulk_insert(keys, batch)


def downgrade() -> None:
    op.drop_table("work_links")
    op.drop_table("work_match_keys")
