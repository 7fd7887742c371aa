"""The digests' side of updates: take what a subscription must be told, and show it.

::

    deliver (cadence due) ─▶ take_updates: due alerts ─▶ the newest unsent digest (unsealed),
                             else a digest of their own          (``updates = "digest"``)
    update job done       ─▶ take_immediate: due retractions ─▶ a short digest of their own,
                             sent at once                         (``updates = "immediate"``)
    render_stored         ─▶ with_update_notes: the digest's alerts as UpdateNotes

``updates = "off"`` takes nothing. What was taken is in the outbox (``digest_updates``),
so each update reaches each subscription once, whichever process sends it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from harvester.digests.notices import LOWER_TIER, UpdateNote, ordered
from harvester.records import UPDATE_KINDS
from harvester.store.update_alerts import UpdateStore

if TYPE_CHECKING:
    from harvester.app import App
    from harvester.config.subscriptions import SubscriptionSettings
    from harvester.digests.assemble import Digest

log = structlog.get_logger(__name__)

# What an immediate message is for: a retraction or a withdrawal; the rest waits for the
# subscription's next digest.
IMMEDIATE_KINDS: tuple[str, ...] = ("retraction", "withdrawal")


def _store(app: App) -> UpdateStore:
    return UpdateStore(app.engine, clock=app.clock)


def take_updates(app: App, subscription: SubscriptionSettings) -> int:
    """Put the updates due to ``subscription`` into its next digest; returns how many."""
    if subscription.updates == "off":
        return 0
    outbox = app.repo.outbox(subscription.key)
    last = outbox[-1] if outbox and not outbox[-1].sealed else None
    taken = _store(app).take_alerts(
        subscription.key, subscription.channel, UPDATE_KINDS, last.id if last else None
    )
    if taken:
        log.info("updates taken into digest", updates=taken)
    return taken


def take_immediate(app: App, subscription: SubscriptionSettings) -> int:
    """For ``updates = "immediate"``: the due retractions into a short digest of their own
    (sent by the caller through the outbox); returns how many."""
    if subscription.updates != "immediate":
        return 0
    taken = _store(app).take_alerts(subscription.key, subscription.channel, IMMEDIATE_KINDS, None)
    if taken:
        log.info("retractions taken for an immediate message", updates=taken)
    return taken


def with_update_notes(app: App, digest_id: int, digest: Digest) -> Digest:
    """``digest`` with the updates its stored digest announces."""
    notes = [
        UpdateNote(alert.work_id, record, alert.kind, alert.updates)
        for record, alert in _store(app).alerts_in(digest_id)
    ]
    if not notes:
        return digest
    return dataclasses.replace(digest, updates=ordered(notes))


def with_due_notes(app: App, subscription: SubscriptionSettings, digest: Digest) -> Digest:
    """For a preview (``digest --dry-run``): ``digest`` with the updates its subscription's
    next digest would announce, taking nothing."""
    if subscription.updates == "off":
        return digest
    notes = [
        UpdateNote(alert.work_id, record, alert.kind, alert.updates)
        for record, alert in _store(app).due(subscription.key, UPDATE_KINDS)
    ]
    return dataclasses.replace(digest, updates=ordered(notes)) if notes else digest


__all__ = [
    "with_due_notes",
    "IMMEDIATE_KINDS",
    "LOWER_TIER",
    "take_immediate",
    "take_updates",
    "with_update_notes",
]
