"""What readers told us through the web interface: unsubscriptions and feedback.

Kept beside the repository (same engine, same guarded sessions) so the web's tables have one
place that speaks their SQL; the web writes them, delivery and ``status`` read them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from harvester.store.models import Feedback, Unsubscription
from harvester.store.repository import Repository


@dataclass(frozen=True, slots=True)
class Verdict:
    recipient: str
    subscription: str
    topic: str
    work_id: int
    verdict: str
    at: datetime


def unsubscribed(repo: Repository, subscription: str) -> set[str]:
    """The recipients (lower-cased) who left ``subscription``."""
    with repo._session() as session:
        return {
            r.lower()
            for r in session.execute(
                select(Unsubscription.recipient).where(Unsubscription.subscription == subscription)
            ).scalars()
        }


def unsubscribe(repo: Repository, subscription: str, recipient: str) -> bool:
    """Record that ``recipient`` left ``subscription``; False if they had already."""
    recipient = recipient.lower()
    with repo._session() as session, session.begin():
        stmt = (
            repo._insert(Unsubscription)
            .values(subscription=subscription, recipient=recipient, created_at=repo.clock())
            .on_conflict_do_nothing()
        )
        return bool(getattr(session.execute(stmt), "rowcount", 0))


def resubscribe(repo: Repository, subscription: str, recipient: str) -> bool:
    with repo._session() as session, session.begin():
        result = session.execute(
            delete(Unsubscription).where(
                Unsubscription.subscription == subscription,
                Unsubscription.recipient == recipient.lower(),
            )
        )
        return bool(getattr(result, "rowcount", 0))


def unsubscriptions(repo: Repository) -> list[tuple[str, str, datetime]]:
    with repo._session() as session:
        return [
            (u.subscription, u.recipient, u.created_at)
            for u in session.execute(
                select(Unsubscription).order_by(Unsubscription.created_at)
            ).scalars()
        ]


def record_feedback(
    repo: Repository, recipient: str, subscription: str, topic: str, work_id: int, verdict: str
) -> None:
    """Store (or replace) one recipient's verdict on a topic × work, with the time."""
    now = repo.clock()
    values = {
        "recipient": recipient.lower(),
        "subscription": subscription,
        "topic": topic,
        "work_id": work_id,
        "verdict": verdict,
        "created_at": now,
    }
    with repo._session() as session, session.begin():
        stmt = repo._insert(Feedback).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["recipient", "topic", "work_id"],
            set_={"verdict": verdict, "created_at": now, "subscription": subscription},
        )
        session.execute(stmt)


def verdicts(
    repo: Repository, topics: Iterable[str] | None = None, work_ids: Sequence[int] | None = None
) -> list[Verdict]:
    query = select(Feedback).order_by(Feedback.created_at)
    if topics is not None:
        query = query.where(Feedback.topic.in_(list(topics)))
    if work_ids is not None:
        query = query.where(Feedback.work_id.in_(list(work_ids)))
    with repo._session() as session:
        return [
            Verdict(f.recipient, f.subscription, f.topic, f.work_id, f.verdict, f.created_at)
            for f in session.execute(query).scalars()
        ]


def feedback_counts(repo: Repository) -> dict[str, tuple[int, int]]:
    """Per topic: (relevant, not relevant) verdicts."""
    out: dict[str, list[int]] = {}
    with repo._session() as session:
        for topic, verdict, n in session.execute(
            select(Feedback.topic, Feedback.verdict, func.count()).group_by(
                Feedback.topic, Feedback.verdict
            )
        ):
            counts = out.setdefault(topic, [0, 0])
            counts[0 if verdict == "relevant" else 1] += int(n)
    return {k: (v[0], v[1]) for k, v in out.items()}
