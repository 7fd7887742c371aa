"""Version links say what they join: a preprint and its article, or a paper in two venues."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

# The reason the page writer gave a venue link before this revision (harvester.dedup.rules);
# every other link it wrote joined a preprint and its article.
_VENUE_REASON = "one paper in two venues: same title and authors"


def upgrade() -> None:
    with op.batch_alter_table("work_links") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="preprint")
        )
    op.execute(
        sa.text("UPDATE work_links SET kind = 'venue' WHERE reason = :reason").bindparams(
            reason=_VENUE_REASON
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("work_links") as batch:
        batch.drop_column("kind")
