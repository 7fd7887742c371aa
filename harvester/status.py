"""`harvester status`: what ran, what will run, what waits to be sent, who is running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harvester.app import App
from harvester.scheduler import harvest_trigger
from harvester.store.repository import RunRow

ALIVE = timedelta(minutes=2)  # a daemon beats every 30 s; two missed minutes means it is gone


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
    if run.error:
        line += f"; error: {run.error}"
    return line


def render_status(app: App) -> str:
    """The status report as text (pure apart from reading the store)."""
    now = app.clock()
    repo = app.repo
    lines: list[str] = []
    for topic in app.settings.topics:
        nxt = harvest_trigger(topic).get_next_fire_time(None, now)
        lines.append(f"{topic.name}  (next run {_when(nxt, now)}, schedule {topic.schedule!r})")
        for source in topic.sources:
            runs = repo.runs(topic.name, source, limit=10)
            failures = 0
            for run in runs:
                if run.status != "failed":
                    break
                failures += 1
            watermark = repo.watermark(topic.name, source)
            lines.append(f"  {source}: {_run_line(runs[0] if runs else None, now)}")
            extra = f"    covered up to {_when(watermark, now)}"
            if failures > 1:
                extra += f"; {failures} failed runs in a row"
            lines.append(extra)
    lines.append("")
    lines.append("digests")
    unsent = repo.pending_digests()
    if not app.settings.subscriptions:
        lines.append("  (no subscriptions)")
    for sub in app.settings.subscriptions:
        waiting = len(repo.pending(sub.key, list(sub.topics)))
        stuck = [d for d in unsent if d[0] == sub.key]
        line = f"  {sub.key} ({sub.cadence}): {waiting} new studies waiting"
        if stuck:
            attempts = ", ".join(f"#{d[1]} after {d[2]} attempts: {d[3]}" for d in stuck)
            line += f"; unsent digests: {attempts}"
        lines.append(line)
    lines.append("")
    lines.append("daemons")
    beats = [b for b in repo.heartbeats() if b[5] is None and now - b[4] <= ALIVE]
    if not beats:
        lines.append("  none running")
    for daemon_id, host, pid, started, beat, _ in beats:
        lines.append(
            f"  {daemon_id} on {host} (pid {pid}), up since {_when(started, now)}, "
            f"last beat {_when(beat, now)}"
        )
    return "\n".join(lines) + "\n"
