"""Each source record's JSON stored once: a provenance row's record becomes NULL where it is
byte for byte its work's record and the work has no other provenance (harvester.store.
provenance); the downgrade writes the copies back. Also: a shared window's record kept as
JSON ``null`` (what the column wrote for None) becomes SQL NULL, as it is now written.

Both directions go through the rows in batches of ids, so no statement holds a million
rows' worth of work at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from harvester.store.migrations.frozen import in_id_ranges

revision = "0011"
down_revision = "0010"

# The JSON is compared as text (json has no equality operator on PostgreSQL; the text is
# what was written): byte-identical or left alone.
_ELIDE = sa.text(
    "UPDATE provenance SET record = NULL "
    "WHERE id >= :lo AND id < :hi AND record IS NOT NULL "
    "AND CAST(record AS TEXT) = "
    "(SELECT CAST(w.record AS TEXT) FROM works w WHERE w.id = provenance.work_id) "
    "AND NOT EXISTS (SELECT 1 FROM provenance o "
    "WHERE o.work_id = provenance.work_id AND o.id <> provenance.id)"
)
_RESTORE = sa.text(
    "UPDATE provenance SET record = "
    "(SELECT w.record FROM works w WHERE w.id = provenance.work_id) "
    "WHERE id >= :lo AND id < :hi AND record IS NULL"
)


def upgrade() -> None:
    with op.batch_alter_table("provenance") as batch:
        batch.alter_column("record", existing_type=sa.JSON(), nullable=True)
    in_id_ranges("provenance", _ELIDE)
    op.execute("UPDATE source_records SET record = NULL WHERE CAST(record AS TEXT) = 'null'")


def downgrade() -> None:
    in_id_ranges("provenance", _RESTORE)
    with op.batch_alter_table("provenance") as batch:
        batch.alter_column("record", existing_type=sa.JSON(), nullable=False)
