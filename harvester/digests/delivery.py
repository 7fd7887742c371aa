"""Delivery through the outbox: store the digest, send it, mark it sent; never lose an item.

What goes into a digest (top-up, the email fit, order, backlog notes) is
:mod:`harvester.digests.compose`; this module sends. It is the one digests module that
imports the notifiers and the web interface (signed links); readers' feedback and
unsubscriptions are the store's (:mod:`harvester.store.readers`).

::

    cadence due (or a person typed `harvester digest`):
        new = hits in no digest of this subscription (backfill hits only with --notify)
        if the newest unsent digest was never possibly seen (not sealed):
            top it up with new[:room]                 # one mail, in order, after an outage
        else:
            store(new[:max_items])                    # before sending: a crash keeps it
    retry tick: only the unsent digests (the cadence is not due: nothing new is built)
    for each unsent digest, oldest first, while they are due (a person's command: all):
        seal; send(render(digest)) ─ accepted ─▶ mark sent
                                   └ refused  ─▶ stays pending; retried after a growing delay
                                                 (at least the channel's Retry-After); a
                                                 refusal that may repeat stops the later ones

An item reaches a subscription at most once, except when the process dies between the
server's acceptance and the mark: the digest is sealed before every send, so it is then sent
again as it was, with the same Message-ID, which mail clients use to drop the duplicate. Only a
clean refusal (nothing can have reached a reader) unseals it. Slack parts are recorded as each
is accepted, so a retry (or a restarted process) posts only the parts not yet posted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import structlog
from structlog.contextvars import bound_contextvars

from harvester.app import App
from harvester.config.subscriptions import SubscriptionSettings
from harvester.digests.assemble import Digest, DigestSection, assemble_digest
from harvester.digests.compose import backlog, fit_email, relevant_first, take_new, web_base
from harvester.digests.render import RenderedDigest, render_digest
from harvester.digests.select import held_back, room, shown_pending
from harvester.digests.updates import take_updates, with_due_notes, with_update_notes
from harvester.errors import NotifyError
from harvester.notifiers import Notifier, notifier_class
from harvester.query.syntax import Query
from harvester.records import StoredWork
from harvester.store.readers import unsubscribed, verdicts

log = structlog.get_logger(__name__)

RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed send: 1, 2, 4 … minutes, at most an hour."""
    return min(RETRY_BASE * (1 << max(attempts - 1, 0)), RETRY_MAX)


@dataclass(frozen=True, slots=True)
class Unsent:
    """A digest left in the outbox by this delivery: why, and when it is tried again."""

    digest_id: int
    items: int
    attempts: int
    retry_at: datetime | None
    error: str | None
    tried: bool  # False: not tried this time (backing off, or behind one that failed)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    subscription: str
    sent: tuple[int, ...] = ()  # digest ids accepted by the channel
    failed: tuple[int, ...] = ()  # digest ids tried and left pending
    items: int = 0  # studies in the digests sent
    empty_sent: bool = False
    unsent: tuple[Unsent, ...] = ()  # every digest still pending afterwards
    waiting: int = 0  # studies in no digest yet (for later digests)


def deliver(
    app: App,
    subscription: SubscriptionSettings,
    notifier: Notifier,
    *,
    include_backfill: bool = False,
    fresh: bool = True,
    ignore_backoff: bool = False,
) -> DeliveryResult:
    """Send what is due for ``subscription``: unsent digests first, oldest first, then the
    new studies. ``fresh=False`` (the daemon's retry tick) only re-sends unsent digests;
    ``ignore_backoff`` (a person's command) sends every unsent digest now."""
    repo, now, key = app.repo, app.clock(), subscription.key
    queries = {t: app.settings.topic(t).parsed_query for t in subscription.topics}
    sent: list[int] = []
    failed: list[int] = []
    items = 0
    with bound_contextvars(subscription=key, channel=subscription.channel):
        outbox = repo.outbox(key)
        if fresh:
            pages = repo.pending_pages(
                key, list(subscription.topics), include_backfill=include_backfill
            )
            feedback = partial(by_feedback, app, subscription)
            works = shown_pending(pages, queries, room(subscription, queries), feedback=feedback)
            if works:
                kept, relevant = by_feedback(app, subscription, works)
                take_new(app, subscription, kept, relevant, queries, outbox)
            if take_updates(app, subscription) or works:
                outbox = repo.outbox(key)
        now = app.clock()  # after storing: a digest made just now is due now
        for entry in outbox:
            due = ignore_backoff or entry.next_attempt_at is None or entry.next_attempt_at <= now
            if not due:
                break  # a later digest never overtakes an earlier one: readers get them in order
            outcome = _send_stored(app, subscription, notifier, entry.id, queries)
            if outcome is None:
                items += entry.items
                sent.append(entry.id)
                continue
            failed.append(entry.id)
            # a refusal that may pass (server down) holds the later digests back; a lasting
            # one (Slack's invalid_blocks) does not block them for ever
            if outcome:
                break
        result_unsent = _unsent(app, key, failed)
        waiting = sum(
            repo.waiting(key, list(subscription.topics), include_backfill=include_backfill).values()
        )
        nothing = fresh and not sent and not outbox
        if (
            nothing
            and subscription.send_empty
            and _send_empty(app, subscription, notifier, queries, now)
        ):
            return DeliveryResult(key, empty_sent=True, waiting=waiting)
    return DeliveryResult(
        key, tuple(sent), tuple(failed), items, unsent=result_unsent, waiting=waiting
    )


def render_stored(
    app: App,
    subscription: SubscriptionSettings,
    digest_id: int,
    queries: Mapping[str, Query],
    *,
    include_backfill: bool = False,
) -> tuple[Digest, RenderedDigest]:
    """A stored digest as it is sent now: its studies, what waits after it and when it
    comes, and a Message-ID of this deployment and these studies."""
    repo = app.repo
    works = repo.digest_works(digest_id)
    published = repo.sent_versions(subscription.key, [w.id for w in works])
    digest = assemble_digest(
        subscription.key, works, queries=queries, now=app.clock(), published=published,
        versions=repo.versions([w.id for w in works]),
    )  # fmt: skip
    digest = relevant_first(digest, by_feedback(app, subscription, works)[1])
    waiting = repo.waiting(
        subscription.key, list(subscription.topics), include_backfill=include_backfill
    )
    digest = with_update_notes(app, digest_id, backlog(app, subscription, digest, waiting))
    web = app.settings.web
    signer = None
    if subscription.channel == "slack" and web.links and web.base_url:
        from harvester.web.links import slack_feedback
        from harvester.web.tokens import signer_for

        signer = signer_for(web.secret(), web.token_max_age_days)
    rendered = render_digest(
        digest,
        queries=queries,
        digest_id=digest_id,
        abstracts=subscription.abstracts,
        deployment=repo.deployment_id(),
        web=web_base(app, subscription),
        slack_feedback=(
            slack_feedback(web.base_url, signer, subscription.key)
            if signer is not None and web.base_url
            else None
        ),
    )
    if signer is not None and web.base_url:
        from harvester.web.links import slack_topic_links

        rendered = slack_topic_links(rendered, web.base_url, signer, subscription.topics)
    return digest, rendered


def by_feedback(
    app: App, subscription: SubscriptionSettings, works: Sequence[StoredWork]
) -> tuple[list[StoredWork], set[int]]:
    """Readers' feedback on ``works``: those the subscription's readers marked not relevant in
    one of its topics are left out; returned with the works someone marked relevant."""
    said = verdicts(app.repo, work_ids=[w.id for w in works]) if works else []
    if not said:
        return list(works), set()
    relevant = {v.work_id for v in said if v.verdict == "relevant"}
    readers = {r.lower() for r in subscription.to}
    rejected = {
        v.work_id
        for v in said
        if v.verdict == "not-relevant"
        and v.topic in subscription.topics
        and (v.subscription == subscription.key or v.recipient in readers)
    }
    kept = [w for w in works if w.id not in rejected]
    if len(kept) < len(works):
        log.info("studies left out by feedback", left_out=len(works) - len(kept))
    return kept, relevant


def _send_stored(
    app: App,
    subscription: SubscriptionSettings,
    notifier: Notifier,
    digest_id: int,
    queries: Mapping[str, Query],
) -> bool | None:
    """Send one stored digest: None when the channel accepted it, else whether the refusal
    may pass (True: the later digests wait behind it)."""
    repo = app.repo
    _digest, rendered = render_stored(app, subscription, digest_id, queries)
    already = repo.parts_sent(digest_id)
    parts = len(rendered.slack) if subscription.channel == "slack" else 1
    if hasattr(notifier, "parts"):  # an email to each recipient alone: one part each
        parts = notifier.parts(rendered)
    if already >= parts:  # every part was accepted; the process ended before the mark
        repo.mark_sent(digest_id)
        log.info("digest sent", digest_id=digest_id, items=rendered.count, resumed=True)
        return None
    repo.seal_digest(digest_id)  # from here on a reader may see it: its items are fixed
    try:
        notifier.send(
            rendered,
            skip_parts=already,
            on_part=lambda parts: repo.record_part_sent(digest_id, parts),
        )
    except NotifyError as e:
        retryable = bool(getattr(e, "retryable", True))
        parts = max(already + getattr(e, "parts_sent", 0), repo.parts_sent(digest_id))
        # a refusal that will repeat until someone fixes something (bad credentials, Slack
        # 400) still keeps the digest: it waits the longest delay, and `status` shows why
        delay = retry_delay if retryable else (lambda _attempts: RETRY_MAX)
        wait = getattr(e, "retry_after", None)
        not_before = app.clock() + timedelta(seconds=wait) if wait else None
        attempts, retry_at = repo.mark_attempt_failed(
            digest_id,
            str(e),
            delay,
            parts_sent=parts,
            not_before=not_before,
            unseal=not getattr(e, "ambiguous", True),
        )
        log.warning(
            "digest not sent; will retry",
            digest_id=digest_id,
            attempts=attempts,
            retryable=retryable,
            parts_sent=parts,
            retry_at=retry_at.isoformat(),
            error=str(e),
        )
        return retryable
    repo.mark_sent(digest_id)
    log.info("digest sent", digest_id=digest_id, items=rendered.count)
    return None


def _send_empty(
    app: App,
    subscription: SubscriptionSettings,
    notifier: Notifier,
    queries: Mapping[str, Query],
    now: datetime,
) -> bool:
    # nothing new: the "nothing new" note is not stored, losing it loses nothing
    empty = assemble_digest(subscription.key, [], queries=queries, now=now)
    try:
        notifier.send(
            render_digest(
                empty,
                queries=queries,
                digest_id=f"empty-{now:%Y%m%d%H%M}",
                abstracts=subscription.abstracts,
                deployment=app.repo.deployment_id(),
            )
        )
    except NotifyError as e:
        log.warning("empty digest not sent", error=str(e))
        return False
    log.info("empty digest sent")
    return True


def _unsent(app: App, key: str, tried: Sequence[int]) -> tuple[Unsent, ...]:
    return tuple(
        Unsent(e.id, e.items, e.attempts, e.next_attempt_at, e.last_error, e.id in tried)
        for e in app.repo.outbox(key)
    )


def preview(
    app: App, subscription: SubscriptionSettings, *, include_backfill: bool = False
) -> tuple[Digest, RenderedDigest]:
    """What :func:`deliver` would send as new studies now, without storing or sending it."""
    queries = {t: app.settings.topic(t).parsed_query for t in subscription.topics}
    topics = list(subscription.topics)
    pages = app.repo.pending_pages(subscription.key, topics, include_backfill=include_backfill)
    fresh = shown_pending(pages, queries, room(subscription, queries))
    digest = assemble_digest(
        subscription.key,
        fresh,
        queries=queries,
        now=app.clock(),
        max_items=subscription.max_items,
        published=app.repo.sent_versions(subscription.key, [w.id for w in fresh]),
        versions=app.repo.versions([w.id for w in fresh]),
    )
    digest = held_back(
        digest, app.repo.waiting(subscription.key, topics, include_backfill=include_backfill)
    )
    if subscription.channel == "email":  # as many as one email would carry
        fitting = fit_email(app, subscription, [], list(digest.items), queries)
        if len(fitting) < len(digest.items):
            keep = {(i.topic, i.work_id) for i in fitting}
            digest = Digest(
                digest.subscription,
                digest.created,
                tuple(
                    DigestSection(
                        s.topic,
                        tuple(i for i in s.items if (i.topic, i.work_id) in keep),
                        s.more + sum((i.topic, i.work_id) not in keep for i in s.items),
                    )
                    for s in digest.sections
                ),
            )
    digest = backlog(app, subscription, digest, {s.topic: s.more for s in digest.sections})
    digest = with_due_notes(app, subscription, digest)
    return digest, render_digest(
        digest, queries=queries, digest_id="preview", abstracts=subscription.abstracts
    )


def notifier_for(app: App, subscription: SubscriptionSettings) -> Notifier:
    """The subscription's notifier; an email one leaves out who unsubscribed."""
    if subscription.channel == "email" and subscription.to:
        gone = unsubscribed(app.repo, subscription.key)
        if gone:
            staying = tuple(r for r in subscription.to if r.lower() not in gone)
            left_out = len(subscription.to) - len(staying)
            log.info("unsubscribed recipients left out", left_out=left_out)
            notifier = notifier_class(subscription.channel).from_settings(
                app.settings,
                subscription.model_copy(update={"to": staying or subscription.to[:1]}),
                client=app.client,
                sleep=app.sleep,
                clock=app.clock,
            )
            if not staying:
                notifier.to = ()  # type: ignore[attr-defined]
            return notifier
    return notifier_class(subscription.channel).from_settings(
        app.settings, subscription, client=app.client, sleep=app.sleep, clock=app.clock
    )


def deliverer(app: App) -> Callable[..., DeliveryResult]:
    """What the daemon calls on a subscription's tick: ``fresh=True`` when its cadence is
    due (new studies are taken), ``fresh=False`` on a retry tick (unsent digests only)."""

    def run(subscription: SubscriptionSettings, *, fresh: bool = True) -> DeliveryResult:
        return deliver(app, subscription, notifier_for(app, subscription), fresh=fresh)

    return run


__all__ = [
    "DeliveryResult",
    "Unsent",
    "deliver",
    "deliverer",
    "notifier_for",
    "preview",
    "render_stored",
    "retry_delay",
]
