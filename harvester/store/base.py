"""What every repository shares: the engine, the clock, the redaction, and sessions whose
database errors come out as :class:`~harvester.errors.StoreError`.

Each aggregate has its repository module (runs.py, works.py, outbox.py, daemons.py), each a
:class:`Store`; :class:`harvester.store.repository.Repository` is all of them over one engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from harvester.errors import StoreError
from harvester.store.models import Base


def _unchanged(text: str) -> str:
    return text


class Store:
    """The store's state over one engine. ``clock`` gives tz-aware UTC now; ``redact`` cleans
    any text the store keeps from a source (errors, skip reasons), since an API may echo a
    secret back in an error body."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime],
        redact: Callable[[str], str] = _unchanged,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.redact = redact

    def _insert(self, table: Any) -> Any:
        """An INSERT with the backend's ``ON CONFLICT`` (PostgreSQL or SQLite)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _session(self) -> GuardedSession:
        return GuardedSession(self.engine)

    def _count(self, model: type[Base]) -> int:
        with self._session() as session:
            return int(session.execute(select(func.count()).select_from(model)).scalar_one())


class GuardedSession(Session):
    """A session whose database errors come out as StoreError."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, expire_on_commit=False)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        super().__exit__(exc_type, exc, tb)
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"database error: {exc}") from exc


def unique_violation(error: StoreError) -> bool:
    """A StoreError from a unique index (PostgreSQL "violates unique constraint", SQLite
    "UNIQUE constraint failed"): a row another writer inserted meanwhile."""
    cause = error.__cause__
    return isinstance(cause, IntegrityError) and "unique" in str(cause.orig).lower()


def utc(value: datetime | str) -> datetime:
    """An aggregate's datetime as tz-aware UTC (SQLite returns min()/max() of a datetime
    column as naive text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
