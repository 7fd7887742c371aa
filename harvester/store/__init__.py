"""Persistence, the only code that speaks SQL.

::

    models       the tables            database   engines, migrations   locks   claims
    base         Store: engine, clock, redaction, sessions whose errors are StoreError
    runs         runs, watermarks, backfill checkpoints, the roll-up of old runs
    works        storing a page (through writer: the page's lookups and rows), works, hits
    write_lock   the store's write lock, taken first by every transaction that writes
    outbox       what waits for a subscription, digests and their delivery
    daemons      heartbeats
    values       the plain values they hand out (RunStatus, RunCounts, RunRow, OutboxEntry…)
    repository   Repository: the four aggregates' repositories over one engine

A stored work (:class:`harvester.records.StoredWork`) is a plain value beside Record.
"""
