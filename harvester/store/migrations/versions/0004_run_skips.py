"""Runs remember the records they skipped: how many, and the first few reasons.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("harvest_runs") as batch:
        batch.add_column(sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("skip_reasons", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("harvest_runs") as batch:
        batch.drop_column("skip_reasons")
        batch.drop_column("skipped")
