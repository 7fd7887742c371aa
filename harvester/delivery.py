"""Delivery through the outbox: store the digest, send it, mark it sent; never lose an item.

::

    for each unsent digest that is due:  send again (same items, same Message-ID)
    new = hits in no digest of this subscription (backfill hits only with --notify)
    digest = store(new[:max_items])                   # before sending: a crash keeps it
    send(render(digest)) ─ accepted ─▶ mark sent
                         └ refused  ─▶ stays pending; retried after a growing delay

An item reaches a subscription at most once, except when the process dies between the
server's acceptance and the mark: then the digest is sent again with the same Message-ID,
which mail clients use to drop the duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import structlog
from structlog.contextvars import bound_contextvars

from harvester.app import App
from harvester.config import SubscriptionSettings
from harvester.digest import Digest, assemble_digest
from harvester.errors import NotifyError
from harvester.notifiers import Notifier, notifier_class
from harvester.query import Query
from harvester.render import RenderedDigest, render_digest

log = structlog.get_logger(__name__)

RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed send: 1, 2, 4 … minutes, at most an hour."""
    return min(RETRY_BASE * (1 << max(attempts - 1, 0)), RETRY_MAX)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    subscription: str
    sent: tuple[int, ...] = ()  # digest ids accepted by the channel
    failed: tuple[int, ...] = ()  # digest ids left pending
    items: int = 0  # studies in the digests sent
    empty_sent: bool = False


def deliver(
    app: App,
    subscription: SubscriptionSettings,
    notifier: Notifier,
    *,
    include_backfill: bool = False,
) -> DeliveryResult:
    """Send what is due for ``subscription``: unsent digests first, then the new studies."""
    repo, now, key = app.repo, app.clock(), subscription.key
    queries = {t: app.settings.topic(t).parsed_query for t in subscription.topics}
    sent: list[int] = []
    failed: list[int] = []
    items = 0
    with bound_contextvars(subscription=key, channel=subscription.channel):
        for digest_id in repo.due_digests(key, now):
            count = _send_stored(app, subscription, notifier, digest_id, queries)
            (sent if count is not None else failed).append(digest_id)
            items += count or 0
        fresh = repo.pending(key, list(subscription.topics), include_backfill=include_backfill)
        chosen = assemble_digest(
            key, fresh, queries=queries, now=now, max_items=subscription.max_items
        )
        if chosen.items:
            new_id = repo.create_digest(
                key, subscription.channel, [(i.topic, i.work_id) for i in chosen.items]
            )
            if new_id is not None:
                count = _send_stored(app, subscription, notifier, new_id, queries)
                (sent if count is not None else failed).append(new_id)
                items += count or 0
        elif not sent and not failed and subscription.send_empty:
            # nothing new: the "nothing new" note is not stored, losing it loses nothing
            try:
                empty = render_digest(
                    chosen,
                    queries=queries,
                    digest_id=f"empty-{now:%Y%m%d%H%M}",
                    abstracts=subscription.abstracts,
                )
                notifier.send(empty)
                log.info("empty digest sent")
                return DeliveryResult(key, empty_sent=True)
            except NotifyError as e:
                log.warning("empty digest not sent", error=str(e))
    return DeliveryResult(key, tuple(sent), tuple(failed), items)


def _send_stored(
    app: App,
    subscription: SubscriptionSettings,
    notifier: Notifier,
    digest_id: int,
    queries: Mapping[str, Query],
) -> int | None:
    """Send one stored digest; the number of studies it carried, or None if it stays pending."""
    repo = app.repo
    works = repo.digest_works(digest_id)
    published = repo.sent_versions(subscription.key, [w.id for w in works])
    digest = assemble_digest(
        subscription.key, works, queries=queries, now=app.clock(), published=published
    )
    rendered = render_digest(
        digest, queries=queries, digest_id=digest_id, abstracts=subscription.abstracts
    )
    already = repo.parts_sent(digest_id)
    try:
        notifier.send(rendered, skip_parts=already)
    except NotifyError as e:
        retryable = getattr(e, "retryable", True)
        parts = already + getattr(e, "parts_sent", 0)
        # a refusal that will repeat until someone fixes something (bad credentials, Slack
        # 400) still keeps the digest: it waits the longest delay, and `status` shows why
        delay = retry_delay if retryable else (lambda _attempts: RETRY_MAX)
        attempts, retry_at = repo.mark_attempt_failed(digest_id, str(e), delay, parts_sent=parts)
        log.warning(
            "digest not sent; will retry",
            digest_id=digest_id,
            attempts=attempts,
            retryable=retryable,
            parts_sent=parts,
            retry_at=retry_at.isoformat(),
            error=str(e),
        )
        return None
    repo.mark_sent(digest_id)
    log.info("digest sent", digest_id=digest_id, items=len(works))
    return len(works)


def preview(
    app: App, subscription: SubscriptionSettings, *, include_backfill: bool = False
) -> tuple[Digest, RenderedDigest]:
    """What :func:`deliver` would send as new studies now, without storing or sending it."""
    queries = {t: app.settings.topic(t).parsed_query for t in subscription.topics}
    fresh = app.repo.pending(
        subscription.key, list(subscription.topics), include_backfill=include_backfill
    )
    digest = assemble_digest(
        subscription.key,
        fresh,
        queries=queries,
        now=app.clock(),
        max_items=subscription.max_items,
        published=app.repo.sent_versions(subscription.key, [w.id for w in fresh]),
    )
    return digest, render_digest(
        digest, queries=queries, digest_id="preview", abstracts=subscription.abstracts
    )


def notifier_for(app: App, subscription: SubscriptionSettings) -> Notifier:
    return notifier_class(subscription.channel).from_settings(
        app.settings, subscription, client=app.client, sleep=app.sleep, clock=app.clock
    )


def deliverer(app: App) -> Callable[[SubscriptionSettings], DeliveryResult]:
    """What the daemon calls on a subscription's tick."""

    def run(subscription: SubscriptionSettings) -> DeliveryResult:
        return deliver(app, subscription, notifier_for(app, subscription))

    return run
