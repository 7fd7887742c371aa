"""Outbox: a digest that may have reached its reader is sealed; the deployment's own id."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.models import UTCDateTime

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite has it for a constant default): a batch copy of the table
    # would drop the old one, and its digest_items with it (ON DELETE CASCADE).
    # Digests pending at the upgrade may have been tried already: sealed, to be safe.
    op.add_column(
        "digests", sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.create_table(
        "deployment",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deployment")
    op.drop_column("digests", "sealed")
