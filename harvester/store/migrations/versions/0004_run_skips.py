"""Runs remember the records they skipped: how many, and the first few reasons."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("harvest_runs") as batch:
        batch.add_column(sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("skip_reasons", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("harvest_runs") as batch:
        batch.drop_column("skip_reasons")
        batch.drop_column("skipped")
