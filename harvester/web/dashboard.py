"""What the dashboard and the study page show, read from the store (as `harvester status`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from harvester.app import App
from harvester.digests.assemble import citation_line, format_authors, record_links
from harvester.digests.notices import notice_lines
from harvester.harvesting.scheduler import harvest_trigger
from harvester.harvesting.status import MISSED_BEATS, STALE_SHOWN
from harvester.records import Record
from harvester.store import readers
from harvester.store.models import Digest, DigestItem, Identifier, Provenance, TopicHit, Work
from harvester.store.updates import updates_of, with_stored_updates
from harvester.store.values import RunRow


@dataclass(frozen=True, slots=True)
class SourceLine:
    source: str
    run: RunRow | None
    failures: int  # failed runs in a row


def dashboard_data(app: App, allowed: set[str] | None) -> dict[str, Any]:
    now = app.clock()
    repo = app.repo
    topics = []
    feedback = readers.feedback_counts(repo)
    for topic in app.settings.topics:
        if allowed is not None and topic.name not in allowed:
            continue
        nxt = harvest_trigger(topic).get_next_fire_time(None, now)
        lines = []
        for source in topic.sources:
            runs = repo.runs(topic.name, source, limit=10, backfill=False)
            failures = 0
            for run in runs:
                if run.status != "failed":
                    break
                failures += 1
            lines.append(SourceLine(source, runs[0] if runs else None, failures))
        topics.append(
            {
                "topic": topic,
                "next": nxt,
                "sources": lines,
                "studies": len(repo.works(topic.name)),
                "feedback": feedback.get(topic.name, (0, 0)),
            }
        )
    digests = []
    unsent = repo.pending_digests()
    for sub in app.settings.subscriptions:
        if allowed is not None and not set(sub.topics) & allowed:
            continue
        digests.append(
            {
                "key": sub.key,
                "cadence": sub.cadence,
                "waiting": len(repo.pending(sub.key, list(sub.topics))),
                "unsent": [d for d in unsent if d.subscription == sub.key],
                "left": len(readers.unsubscribed(repo, sub.key)),
            }
        )
    lapse = timedelta(seconds=MISSED_BEATS * app.settings.daemon.heartbeat_seconds)
    unstopped = [b for b in repo.heartbeats() if b.stopped_at is None]
    daemons = [
        {
            "id": b.daemon_id,
            "host": b.host,
            "pid": b.pid,
            "started": b.started_at,
            "beat": b.beat_at,
            "stale": now - b.beat_at > lapse,
        }
        for b in unstopped
        if now - b.beat_at <= STALE_SHOWN
    ]
    return {"topics": topics, "digests": digests, "daemons": daemons, "now": now}


def study_data(app: App, work_id: int) -> dict[str, Any] | None:
    """A work with every provenance, its identifiers, links, topics and digests."""
    with app.repo._session() as session:
        work = session.get(Work, work_id)
        if work is None:
            return None
        stored = updates_of(session, [work_id]).get(work_id, ())
        record = with_stored_updates(Record.from_json(work.record), stored)
        ids = [
            (i.scheme, i.value)
            for i in session.execute(
                select(Identifier).where(Identifier.work_id == work_id).order_by(Identifier.id)
            ).scalars()
        ]
        provenance = [
            (p.source, p.source_id, p.fetched_at)
            for p in session.execute(
                select(Provenance).where(Provenance.work_id == work_id).order_by(Provenance.id)
            ).scalars()
        ]
        topics = sorted(
            set(
                session.execute(select(TopicHit.topic).where(TopicHit.work_id == work_id)).scalars()
            )
        )
        digests = [
            (d.id, d.subscription, d.status, d.sent_at)
            for d in session.execute(
                select(Digest)
                .join(DigestItem, DigestItem.digest_id == Digest.id)
                .where(DigestItem.work_id == work_id)
                .order_by(Digest.id)
            ).scalars()
        ]
    related = [(wid, url) for wid, url in app.repo.links(work_id)]
    return {
        "work_id": work_id,
        "record": record,
        "authors": format_authors(record.authors),
        "citation": citation_line(record),
        "notices": notice_lines(record),  # retracted, corrected … and the notice
        "links": record_links(record),
        "ids": ids,
        "provenance": provenance,
        "topics": topics,
        "digests": digests,
        "related": related,
        "verdicts": readers.verdicts(app.repo, work_ids=[work_id]),
    }
