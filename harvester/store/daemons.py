"""Daemon bookkeeping: each daemon's heartbeat, refreshed while it runs."""

from __future__ import annotations

from sqlalchemy import select

from harvester.store.base import Store
from harvester.store.models import Heartbeat
from harvester.store.values import DaemonBeat


class DaemonRepository(Store):
    def beat(self, daemon_id: str, *, host: str, pid: int, stopped: bool = False) -> None:
        """Create or refresh a daemon's heartbeat (``stopped`` when it shuts down)."""
        now = self.clock()
        with self._session() as session, session.begin():
            row = session.get(Heartbeat, daemon_id)
            if row is None:
                session.add(
                    Heartbeat(
                        daemon_id=daemon_id,
                        host=host,
                        pid=pid,
                        started_at=now,
                        beat_at=now,
                        stopped_at=now if stopped else None,
                    )
                )
            else:
                row.beat_at = now
                row.stopped_at = now if stopped else None

    def heartbeats(self) -> list[DaemonBeat]:
        """Every daemon's heartbeat, the latest beat first."""
        with self._session() as session:
            return [
                DaemonBeat(h.daemon_id, h.host, h.pid, h.started_at, h.beat_at, h.stopped_at)
                for h in session.execute(
                    select(Heartbeat).order_by(Heartbeat.beat_at.desc())
                ).scalars()
            ]
