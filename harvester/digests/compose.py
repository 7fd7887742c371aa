"""What goes into a digest: new studies into the outbox, and a digest's order and notes.

::

    new studies ─▶ take_new: top up the newest unsealed digest (one mail after an outage) or
                   store a new one; at most max_items per topic; for email only as many as
                   one message carries unclipped (fit_email)
    stored digest ─▶ relevant_first (readers' "relevant" first) ─▶ backlog (what waits, when)

Imports the app, settings and store values, and renders (render.fitted_html) only to
measure an email; it sends nothing and imports neither notifiers nor the web interface
(readers' feedback is read by :mod:`harvester.digests.delivery` and handed in).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import timedelta

import structlog

from harvester.app import App
from harvester.config.subscriptions import SubscriptionSettings
from harvester.digests.assemble import (
    Digest,
    DigestItem,
    DigestSection,
    assemble_digest,
    with_backlog,
)
from harvester.digests.fit import HTML_LIMIT
from harvester.digests.render import fitted_html
from harvester.query.syntax import Query
from harvester.records import StoredWork
from harvester.store.values import OutboxEntry

log = structlog.get_logger(__name__)


def take_new(
    app: App,
    subscription: SubscriptionSettings,
    works: Sequence[StoredWork],
    relevant: set[int],
    queries: Mapping[str, Query],
    outbox: Sequence[OutboxEntry],
) -> None:
    """Put new studies in the outbox: into the newest unsent digest when no reader can have
    seen it yet (so after an outage one mail holds them all, in order), else into a new
    digest, which is sent after the unsent ones. ``works`` are those readers' feedback kept
    and ``relevant`` those someone marked relevant (delivery.by_feedback)."""
    repo, key = app.repo, subscription.key
    last = outbox[-1] if outbox else None
    if last is not None and last.sealed:
        last = None  # it may have been seen: it goes out as it is, these after it
    held: dict[str, int] = {}
    existing: list[StoredWork] = []
    if last is not None:
        existing = repo.digest_works(last.id)
        for work in existing:
            held[work.topic or ""] = held.get(work.topic or "", 0) + 1
    versions = repo.versions([w.id for w in works])
    digest = assemble_digest(key, works, queries=queries, now=app.clock(), versions=versions)
    ranked = relevant_first(digest, relevant)
    chosen = [
        item
        for section in ranked.sections
        for item in section.items[: max(0, subscription.max_items - held.get(section.topic, 0))]
    ]
    if subscription.channel == "email":
        chosen = fit_email(app, subscription, existing, chosen, queries)
    if not chosen:
        return
    pairs = [(i.topic, i.work_id) for i in chosen]
    if last is not None:
        # 0 if it was sealed meanwhile: these then wait in no digest for the next tick
        added = repo.top_up_digest(last.id, key, pairs)
        log.info("unsent digest topped up", digest_id=last.id, added=added)
        return
    new_id = repo.create_digest(key, subscription.channel, pairs)
    if new_id is not None:
        log.info("digest stored", digest_id=new_id, items=len(pairs))


def fit_email(
    app: App,
    subscription: SubscriptionSettings,
    existing: Sequence[StoredWork],
    chosen: list[DigestItem],
    queries: Mapping[str, Query],
) -> list[DigestItem]:
    """As many of ``chosen`` as one email carries without passing Gmail's clipping size at
    the shortest abstract excerpt; the rest wait for the next digest (and the digest says so)."""
    if not chosen or not subscription.abstracts:
        return chosen
    versions = app.repo.versions([w.id for w in existing])
    base = assemble_digest(
        subscription.key, existing, queries=queries, now=app.clock(), versions=versions
    )
    keep = len(chosen)
    for _ in range(8):
        trial = _merged(base, chosen[:keep])
        # the HTML alone: the text and Slack parts of render_digest play no part in the fit
        shortest = fitted_html(
            trial, queries=queries, html_limit=HTML_LIMIT, web=web_base(app, subscription)
        )
        if shortest.fits:
            return chosen[:keep]
        over = shortest.size / HTML_LIMIT
        keep = max(0, min(keep - 1, int(keep / over * 0.95)))
        if keep == 0:
            break
    log.warning("digest shortened to fit one email", kept=keep, held_back=len(chosen) - keep)
    return chosen[:keep]


def _merged(base: Digest, extra: Sequence[DigestItem]) -> Digest:
    sections = []
    for section in base.sections:
        more = tuple(i for i in extra if i.topic == section.topic)
        sections.append(DigestSection(section.topic, (*section.items, *more)))
    return Digest(base.subscription, base.created, tuple(sections))


def web_base(app: App, subscription: SubscriptionSettings) -> str | None:
    """The web interface's base URL when this subscription's digests link to it (email, with
    [web] base_url and its signing secret configured)."""
    web = app.settings.web
    return web.base_url if subscription.channel == "email" and web.links else None


def relevant_first(digest: Digest, relevant: set[int]) -> Digest:
    """Each section's studies marked relevant by someone first, in the digest's own rank."""
    if not relevant:
        return digest
    sections = tuple(
        DigestSection(
            s.topic,
            tuple(i for i in s.items if i.work_id in relevant)
            + tuple(i for i in s.items if i.work_id not in relevant),
            s.more,
            s.more_until,
            s.feed,
        )
        for s in digest.sections
    )
    return dataclasses.replace(digest, sections=sections)


def backlog(
    app: App, subscription: SubscriptionSettings, digest: Digest, waiting: Mapping[str, int]
) -> Digest:
    first = app.settings.topic(subscription.topics[0])
    return with_backlog(
        digest,
        waiting,
        cadence=subscription.parsed_cadence,
        zone=first.zone,
        per_digest=subscription.max_items,
        feeds={t: app.settings.feeds.url(t) for t in subscription.topics},
        interval=timedelta(seconds=app.settings.daemon.digest_retry_seconds),
    )


__all__ = ["backlog", "fit_email", "relevant_first", "take_new", "web_base"]
