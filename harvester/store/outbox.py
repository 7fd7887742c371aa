"""The outbox: what waits for a subscription, the digests stored before anything is sent, and
their delivery (sealed before a send, parts accepted, sent, or retried later)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from harvester.errors import StoreError
from harvester.records import StoredWork
from harvester.store.base import Store
from harvester.store.models import Deployment, Digest, DigestItem, TopicHit, Work, WorkLink
from harvester.store.values import FailedAttempt, OutboxEntry, UnsentDigest
from harvester.store.works import stored_hits, stored_hits_after

# The longest a refused digest waits (a Slack Retry-After included): a longer wait is not
# believed, and a stored retry time beyond it was set by a clock that ran ahead.
MAX_RETRY_WAIT = timedelta(days=1)
# How many waiting hits (with their records) a digest reads at a time.
PENDING_PAGE = 500


class OutboxRepository(Store):
    """Digests, their items, and the hits that wait for them."""

    # -- what waits -------------------------------------------------------------------------

    def pending(
        self,
        subscription: str,
        topics: Sequence[str],
        *,
        include_backfill: bool = False,
        limit: int | None = None,
    ) -> list[StoredWork]:
        """Hits of ``topics`` in no digest of ``subscription`` yet, oldest first."""
        query = (
            select(TopicHit, Work)
            .join(Work, Work.id == TopicHit.work_id)
            .where(TopicHit.topic.in_(topics), _undelivered(subscription))
            .order_by(TopicHit.first_seen, TopicHit.id)
        )
        if not include_backfill:
            query = query.where(TopicHit.backfill.is_(False))
        if limit is not None:
            query = query.limit(limit)
        with self._session() as session:
            return stored_hits(session, query)

    def pending_pages(
        self,
        subscription: str,
        topics: Sequence[str],
        *,
        include_backfill: bool = False,
        page: int = PENDING_PAGE,
    ) -> Iterator[list[StoredWork]]:
        """:meth:`pending`'s hits, oldest first, ``page`` at a time (each read after the last
        one's ``(first_seen, id)``): a backlog of 100,000 is never held whole."""
        query = (
            select(TopicHit, Work)
            .join(Work, Work.id == TopicHit.work_id)
            .where(TopicHit.topic.in_(topics), _undelivered(subscription))
            .order_by(TopicHit.first_seen, TopicHit.id)
            .limit(page)
        )
        if not include_backfill:
            query = query.where(TopicHit.backfill.is_(False))
        after: tuple[datetime, int] | None = None
        while True:
            paged = query
            if after is not None:
                seen, hit_id = after
                paged = query.where(
                    or_(
                        TopicHit.first_seen > seen,
                        (TopicHit.first_seen == seen) & (TopicHit.id > hit_id),
                    )
                )
            with self._session() as session:
                works, last = stored_hits_after(session, paged)
            if works:
                yield works
            if len(works) < page or last is None:
                return
            after = last

    def waiting(
        self, subscription: str, topics: Sequence[str], *, include_backfill: bool = False
    ) -> dict[str, int]:
        """Per topic, how many hits are in no digest of ``subscription`` yet (a count, so a
        backlog of thousands costs one query, not their records)."""
        query = (
            select(TopicHit.topic, func.count(TopicHit.id))
            .where(TopicHit.topic.in_(list(topics)), _undelivered(subscription))
            .group_by(TopicHit.topic)
        )
        if not include_backfill:
            query = query.where(TopicHit.backfill.is_(False))
        with self._session() as session:
            counts = {topic: int(n) for topic, n in session.execute(query)}
        return {t: counts.get(t, 0) for t in topics}

    def sent_versions(self, subscription: str, work_ids: Sequence[int]) -> set[int]:
        """Of ``work_ids``, those that are another version (a journal article, a preprint) of
        a work already sent to ``subscription``: their digest says "now published in …"."""
        if not work_ids:
            return set()
        ids = list(work_ids)
        with self._session() as session:
            pairs = session.execute(
                select(WorkLink.work_id, WorkLink.other_work_id).where(
                    WorkLink.work_id.in_(ids) | WorkLink.other_work_id.in_(ids)
                )
            ).all()
            if not pairs:
                return set()
            wanted = set(ids)
            partner: dict[int, set[int]] = {}
            for a, b in pairs:
                if a in wanted:
                    partner.setdefault(b, set()).add(a)
                if b in wanted:
                    partner.setdefault(a, set()).add(b)
            sent = session.execute(
                select(DigestItem.work_id)
                .join(Digest, Digest.id == DigestItem.digest_id)
                .where(
                    DigestItem.subscription == subscription,
                    Digest.status == "sent",
                    DigestItem.work_id.in_(list(partner)),
                )
            ).scalars()
            return {new for old in sent for new in partner[old]}

    # -- digests ----------------------------------------------------------------------------

    def create_digest(
        self, subscription: str, channel: str, items: Iterable[tuple[str, int]]
    ) -> int | None:
        """Store a digest and its ``(topic, work id)`` items before anything is sent.

        Items already in another digest of the subscription are left out (the unique index
        decides, so two replicas cannot both take one); with nothing left, no digest is made.
        """
        now = self.clock()
        with self._session() as session, session.begin():
            digest = Digest.pending(subscription, channel, now)
            session.add(digest)
            session.flush()
            if not self._add_items(session, digest.id, subscription, items):
                session.delete(digest)
                return None
            return digest.id

    def top_up_digest(
        self, digest_id: int, subscription: str, items: Iterable[tuple[str, int]]
    ) -> int:
        """Add ``(topic, work id)`` items to a pending digest that was never possibly seen
        (not sealed); returns how many were added (0 if it is sealed, sent or gone). Items
        already in a digest of the subscription are left out, as in :meth:`create_digest`."""
        with self._session() as session, session.begin():
            digest = session.get(Digest, digest_id, with_for_update=True)
            if digest is None or not digest.takes_items:
                return 0
            return self._add_items(session, digest_id, subscription, items)

    def _add_items(
        self,
        session: Session,
        digest_id: int,
        subscription: str,
        items: Iterable[tuple[str, int]],
    ) -> int:
        """Insert the items no digest of the subscription holds yet; how many were."""
        added = 0
        for topic, work_id in items:
            result = session.execute(
                self._insert(DigestItem)
                .values(
                    digest_id=digest_id, subscription=subscription, topic=topic, work_id=work_id
                )
                .on_conflict_do_nothing(index_elements=["subscription", "topic", "work_id"])
                .returning(DigestItem.id)
            )
            added += result.first() is not None
        return added

    def digest_works(self, digest_id: int) -> list[StoredWork]:
        """The works of a stored digest with their topic, in the order they were added."""
        query = (
            select(TopicHit, Work)
            .join(Work, Work.id == TopicHit.work_id)
            .join(
                DigestItem,
                (DigestItem.work_id == TopicHit.work_id) & (DigestItem.topic == TopicHit.topic),
            )
            .where(DigestItem.digest_id == digest_id)
            .order_by(DigestItem.id)
        )
        with self._session() as session:
            return stored_hits(session, query)

    def due_digests(
        self, subscription: str, now: datetime, *, ignore_backoff: bool = False
    ) -> list[int]:
        """Pending digests of ``subscription`` whose (next) attempt is due, oldest first;
        with ``ignore_backoff`` every pending one (a person asked for them now)."""
        query = select(Digest.id).where(
            Digest.subscription == subscription, Digest.status == "pending"
        )
        if not ignore_backoff:
            # a retry time further ahead than any wait harvester sets was set by a clock that
            # ran ahead (issue 18.9): due now, not a month from now
            query = query.where(
                or_(
                    Digest.next_attempt_at <= now,
                    Digest.next_attempt_at > now + MAX_RETRY_WAIT,
                )
            )
        with self._session() as session:
            return list(session.execute(query.order_by(Digest.id)).scalars())

    def outbox(self, subscription: str | None = None) -> list[OutboxEntry]:
        """The unsent digests (of one subscription, if given), oldest first."""
        items = (
            select(func.count(DigestItem.id))
            .where(DigestItem.digest_id == Digest.id)
            .correlate(Digest)
            .scalar_subquery()
        )
        query = select(Digest, items).where(Digest.status == "pending").order_by(Digest.id)
        if subscription is not None:
            query = query.where(Digest.subscription == subscription)
        with self._session() as session:
            return [
                OutboxEntry(
                    id=d.id,
                    subscription=d.subscription,
                    created_at=d.created_at,
                    attempts=d.attempts,
                    next_attempt_at=d.next_attempt_at,
                    last_error=d.last_error,
                    parts_sent=d.parts_sent,
                    sealed=d.sealed,
                    items=int(n),
                )
                for d, n in session.execute(query)
            ]

    def pending_digests(self) -> list[UnsentDigest]:
        """Every unsent digest, oldest first."""
        with self._session() as session:
            return [
                UnsentDigest(d.subscription, d.id, d.attempts, d.last_error)
                for d in session.execute(
                    select(Digest).where(Digest.status == "pending").order_by(Digest.id)
                ).scalars()
            ]

    # -- sending ----------------------------------------------------------------------------

    def seal_digest(self, digest_id: int) -> None:
        """Before a send: from now on the digest may reach its reader, so its items are fixed
        (a crash between the server's acceptance and :meth:`mark_sent` re-sends the same)."""
        self._set(digest_id, sealed=True)

    def record_part_sent(self, digest_id: int, parts: int) -> None:
        """The channel accepted the first ``parts`` messages of a multi-part digest; recorded
        as each is accepted, so a process killed after part 2 of 5 resumes at part 3."""
        self._set(digest_id, Digest.parts_sent < parts, parts_sent=parts)

    def parts_sent(self, digest_id: int) -> int:
        """How many messages of a multi-part digest the channel already accepted."""
        with self._session() as session:
            digest = session.get(Digest, digest_id)
            return digest.parts_sent if digest is not None else 0

    def mark_sent(self, digest_id: int) -> None:
        self._set(
            digest_id,
            status="sent",
            sent_at=self.clock(),
            attempts=Digest.attempts + 1,
            last_error=None,
        )

    def mark_attempt_failed(
        self,
        digest_id: int,
        error: str,
        delay: Callable[[int], timedelta],
        *,
        parts_sent: int = 0,
        not_before: datetime | None = None,
        unseal: bool = False,
    ) -> FailedAttempt:
        """Record a failed send; the digest stays pending for ``delay(attempts)``, and at
        least until ``not_before`` (a channel's Retry-After). ``parts_sent`` counts the
        messages accepted so far (a retry skips them). ``unseal``: the channel refused the
        digest before any of it could reach a reader, so it may still take newer studies."""
        with self._session() as session, session.begin():
            digest = session.get(Digest, digest_id)
            if digest is None:
                raise StoreError(f"digest {digest_id} does not exist")
            digest.parts_sent = max(parts_sent, digest.parts_sent or 0)
            digest.attempts += 1
            digest.last_error = error
            now = self.clock()
            retry_at = now + delay(digest.attempts)
            if not_before is not None and not_before > retry_at:
                retry_at = not_before
            retry_at = min(retry_at, now + MAX_RETRY_WAIT)  # no Retry-After is worth a day
            digest.next_attempt_at = retry_at
            if unseal and digest.parts_sent == 0:
                digest.sealed = False
            return FailedAttempt(digest.attempts, retry_at)

    def _set(self, digest_id: int, *where: ColumnElement[bool], **values: Any) -> None:
        with self._session() as session, session.begin():
            session.execute(update(Digest).where(Digest.id == digest_id, *where).values(**values))

    def deployment_id(self) -> str:
        """This database's own random id, made on first use and kept (Message-IDs use it)."""
        # two processes may race to make it: both then use the oldest row
        oldest = select(Deployment.id).order_by(Deployment.created_at, Deployment.id).limit(1)
        with self._session() as session, session.begin():
            found = session.execute(oldest).scalar()
            if found is not None:
                return str(found)
            session.add(Deployment(id=uuid.uuid4().hex, created_at=self.clock()))
        with self._session() as session:
            return str(session.execute(oldest).scalar_one())

    def count_digests(self) -> int:
        return self._count(Digest)

    def count_digest_items(self) -> int:
        return self._count(DigestItem)


def _undelivered(subscription: str) -> ColumnElement[bool]:
    """A topic hit that is in no digest of ``subscription`` yet."""
    delivered = (
        select(DigestItem.id)
        .where(
            DigestItem.subscription == subscription,
            DigestItem.topic == TopicHit.topic,
            DigestItem.work_id == TopicHit.work_id,
        )
        .exists()
    )
    return ~delivered
