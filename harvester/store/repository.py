"""The repository: the store's per-aggregate repositories over one engine.

Each aggregate has its module, the only code that speaks SQL (with the page writer):
:mod:`~harvester.store.runs` (runs, watermarks, backfill checkpoints, the roll-up),
:mod:`~harvester.store.works` (storing pages, reading works and hits),
:mod:`~harvester.store.outbox` (what waits, digests and their delivery) and
:mod:`~harvester.store.daemons` (heartbeats). The values they exchange are in
:mod:`~harvester.store.values` and :class:`harvester.records.StoredWork`.
"""

from __future__ import annotations

from harvester.store.daemons import DaemonRepository
from harvester.store.outbox import OutboxRepository
from harvester.store.runs import RunRepository
from harvester.store.works import WorkRepository


class Repository(RunRepository, WorkRepository, OutboxRepository, DaemonRepository):
    """Reads and writes works, hits, runs, watermarks, digests and heartbeats; built as
    ``Repository(engine, clock=..., redact=...)`` (see :class:`~harvester.store.base.Store`)."""
