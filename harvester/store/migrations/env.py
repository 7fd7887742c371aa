"""Alembic environment: harvester passes its own connection in (see store.database.upgrade)."""

from __future__ import annotations

from alembic import context

from harvester.store import update_models  # noqa: F401 (its tables join Base.metadata)
from harvester.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `harvester db upgrade`, which supplies the connection"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
