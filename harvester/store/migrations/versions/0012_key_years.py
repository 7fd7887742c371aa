"""Blocking keys carry their work's year (work_match_keys.year = works.year), so the page
writer drops a candidate beyond the year window without reading its works row (at 1M works
most candidates met through a title key are other years' works). Filled in batches of work
ids; a key left NULL is read as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.migrations.frozen import in_id_ranges

revision = "0012"
down_revision = "0011"

_FILL = sa.text(
    "UPDATE work_match_keys SET year = "
    "(SELECT w.year FROM works w WHERE w.id = work_match_keys.work_id) "
    "WHERE work_id >= :lo AND work_id < :hi"
)


def upgrade() -> None:
    with op.batch_alter_table("work_match_keys") as batch:
        batch.add_column(sa.Column("year", sa.Integer(), nullable=True))
    in_id_ranges("works", _FILL)


def downgrade() -> None:
    with op.batch_alter_table("work_match_keys") as batch:
        batch.drop_column("year")
