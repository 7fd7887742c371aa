"""Blocking keys carry their work's year (work_match_keys.year = works.year), so the page
writer drops a candidate beyond the year window without reading its works row (at 1M works
most candidates met through a title key are other years' works). Filled in batches of work
ids; a key left NULL is read as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"

BATCH = 50_000

_FILL = sa.text(
    "UPDATE work_match_keys SET year = "
    "(SELECT w.year FROM works w WHERE w.id = work_match_keys.work_id) "
    "WHERE work_id >= :lo AND work_id < :hi"
)


def upgrade() -> None:
    with op.batch_alter_table("work_match_keys") as batch:
        batch.add_column(sa.Column("year", sa.Integer(), nullable=True))
    conn = op.get_bind()
    low, high = conn.execute(sa.text("SELECT min(id), max(id) FROM works")).one()
    if low is None:
        return
    for lo in range(low, high + 1, BATCH):
        conn.execute(_FILL, {"lo": lo, "hi": lo + BATCH})


def downgrade() -> None:
    with op.batch_alter_table("work_match_keys") as batch:
        batch.drop_column("year")
