"""`harvester status`: what ran, what will run, what waits to be sent, who is running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harvester.app import App
from harvester.harvesting.scheduler import first_due_after, harvest_trigger
from harvester.harvesting.updates import status_lines
from harvester.sources import missing_key
from harvester.store.daemons import MISSED_BEATS as MISSED_BEATS  # (the dashboard reads it here)
from harvester.store.readers import feedback_counts
from harvester.store.repository import Repository

# A daemon beats every `heartbeat_seconds` (30 s); one that missed three beats is stale
from harvester.store.values import COMPLETED, RunRow, RunStatus

# A daemon beats every `heartbeat_seconds` (30 s); one that missed MISSED_BEATS (three) beats
# is stale (killed with -9, its host down, or its database unreachable), and is listed as
# stale for a day, so a daemon that vanished is seen rather than silently dropped.
STALE_SHOWN = timedelta(days=1)


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    delta = now - moment
    ago = delta.total_seconds()
    if abs(ago) < 90:
        rel = f"{int(abs(ago))} s"
    elif abs(ago) < 5400:
        rel = f"{int(abs(ago) // 60)} min"
    elif abs(ago) < 172800:
        rel = f"{int(abs(ago) // 3600)} h"
    else:
        rel = f"{int(abs(ago) // 86400)} d"
    suffix = "ago" if ago >= 0 else "from now"
    return f"{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC ({rel} {suffix})"


def _run_line(run: RunRow | None, now: datetime) -> str:
    if run is None:
        return "last run: never"
    c = run.counts
    line = (
        f"last run: {_when(run.started_at, now)}, {run.status}; {c.requests} requests, "
        f"{c.records} records"
    )
    if run.expected is not None:
        line += f" of {run.expected} announced"
    line += f", {c.new_works} new works, {c.new_hits} new hits"
    if c.skipped:
        line += f"; {c.skipped} records skipped"
        if run.skip_reasons:
            more = "…" if c.skipped > len(run.skip_reasons) else ""
            line += ": " + "; ".join(run.skip_reasons) + more
    if run.error:
        line += f"; error: {run.error}"
    return line


def _never_line(app: App, source: str, next_run: datetime | None, now: datetime) -> str:
    """Why a source has no scheduled run yet."""
    variable = missing_key(source, app.settings.source(source))
    if variable is not None:
        return f"last run: never (skipped: needs an API key; set {variable})"
    return f"last run: never (not yet scheduled: next run at {_when(next_run, now)})"


def _backfill_line(repo: Repository, topic: str, source: str, now: datetime) -> str | None:
    coverage = repo.backfill_coverage(topic, source)
    latest = repo.runs(topic, source, limit=1, backfill=True)
    if coverage is None and not latest:
        return None
    if coverage is None:
        line = "    backfill: no slice finished yet"
    else:
        line = (
            f"    backfill: {coverage.start:%Y-%m-%d} through {coverage.end:%Y-%m-%d} "
            f"({coverage.slices} slice{'s' if coverage.slices != 1 else ''})"
        )
    if latest and latest[0].status not in COMPLETED:
        run = latest[0]
        line += (
            f"; last slice ({run.window.start:%Y-%m-%d}…) {run.status} {_when(run.started_at, now)}"
        )
        if run.error:
            line += f": {run.error}"
    return line


def _feedback_lines(repo: Repository) -> list[str]:
    """Readers' verdicts from the web interface's links, per topic (none: no lines)."""
    counts = feedback_counts(repo)
    if not counts:
        return []
    lines = ["", "feedback"]
    for topic, (yes, no) in sorted(counts.items()):
        lines.append(f"  {topic}: {yes} relevant, {no} not relevant")
    return lines


def render_status(app: App) -> str:
    """The status report as text (pure apart from reading the store)."""
    now = app.clock()
    repo = app.repo
    lines: list[str] = []
    # per source: the windows due (fired since their last completed run), the oldest fire
    # time among them, and those running now; the daemons' queues hold exactly these
    queues: dict[str, list[datetime]] = {}
    running: dict[str, int] = {}
    for topic in app.settings.topics:
        trigger = harvest_trigger(topic)
        nxt = trigger.get_next_fire_time(None, now)
        lines.append(f"{topic.name}  (next run {_when(nxt, now)}, schedule {topic.schedule!r})")
        for source in topic.sources:
            # the scheduled runs only: a backfill's slices have a line of their own
            runs = repo.runs(topic.name, source, limit=10, backfill=False)
            if missing_key(source, app.settings.source(source)) is None:
                done = next((r.started_at for r in runs if r.status in COMPLETED), None)
                due = first_due_after(trigger, done, now)
                queue = queues.setdefault(source, [])
                if runs and runs[0].status == RunStatus.RUNNING:
                    running[source] = running.get(source, 0) + 1
                elif due is not None:
                    queue.append(due)
            failures = 0
            for run in runs:
                if run.status != RunStatus.FAILED:
                    break
                failures += 1
            watermark = repo.watermark(topic.name, source)
            last = _run_line(runs[0], now) if runs else _never_line(app, source, nxt, now)
            lines.append(f"  {source}: {last}")
            extra = f"    covered up to {_when(watermark, now)}"
            if failures > 1:
                extra += f"; {failures} failed runs in a row"
            lines.append(extra)
            backfill = _backfill_line(repo, topic.name, source, now)
            if backfill is not None:
                lines.append(backfill)
    lines.append("")
    lines.append("queues")
    if not queues:
        lines.append("  (no sources)")
    for source, dues in queues.items():
        line = f"  {source}: "
        if dues:
            line += f"{len(dues)} window{'s' if len(dues) != 1 else ''} due"
            line += f", the oldest since {_when(min(dues), now)}"
        else:
            line += "nothing due"
        if running.get(source):
            line += f"; {running[source]} running"
        lines.append(line)
    lines.append("")
    lines.append("digests")
    unsent = repo.pending_digests()
    if not app.settings.subscriptions:
        lines.append("  (no subscriptions)")
    for sub in app.settings.subscriptions:
        waiting = len(repo.pending(sub.key, list(sub.topics)))
        stuck = [d for d in unsent if d.subscription == sub.key]
        line = f"  {sub.key} ({sub.cadence}): {waiting} new studies waiting"
        if stuck:
            attempts = ", ".join(
                f"#{d.digest_id} after {d.attempts} attempts: {d.last_error}" for d in stuck
            )
            line += f"; unsent digests: {attempts}"
        lines.append(line)
    lines += _feedback_lines(repo)
    lines += status_lines(app, now, _when)  # issue 16: the update job and what it found
    lines.append("")
    lines.append("daemons")
    lapse = timedelta(seconds=MISSED_BEATS * app.settings.daemon.heartbeat_seconds)
    unstopped = [b for b in repo.heartbeats() if b.stopped_at is None]
    beats = [b for b in unstopped if now - b.beat_at <= lapse]
    stale = [b for b in unstopped if lapse < now - b.beat_at <= STALE_SHOWN]
    if not beats:
        lines.append("  none running")
    for daemon_id, host, pid, started, beat, _ in beats:
        lines.append(
            f"  {daemon_id} on {host} (pid {pid}), up since {_when(started, now)}, "
            f"last beat {_when(beat, now)}"
        )
    for daemon_id, host, pid, _started, beat, _ in stale:
        lines.append(
            f"  {daemon_id} on {host} (pid {pid}): stale, no heartbeat since {_when(beat, now)} "
            "(killed, or cut off from the database; it did not stop cleanly)"
        )
    return "\n".join(lines) + "\n"
