"""Which waiting studies a digest can show, read page by page.

A backlog of 100,000 hits is never held whole: each page of waiting works is scored, and per
topic only the first ``room`` in digest order stay (with the studies a reader marked relevant
first, where feedback counts). What stays, in its waiting order, ranks into exactly the
digest the whole backlog would have made; how many wait is a count (``Repository.waiting``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

from harvester.config.subscriptions import SubscriptionSettings
from harvester.digests.assemble import Digest, DigestItem, rank, work_item
from harvester.query.syntax import Query
from harvester.records import StoredWork

# Readers' feedback on a page of works: the works kept (the rejected left out) and the ids of
# those someone marked relevant.
Feedback = Callable[[Sequence[StoredWork]], tuple[list[StoredWork], set[int]]]

_Entry = tuple[int, StoredWork, DigestItem]  # (waiting order, work, its item in its topic)


def shown_pending(
    pages: Iterable[Sequence[StoredWork]],
    queries: Mapping[str, Query],
    room: Mapping[str, int],
    *,
    feedback: Feedback | None = None,
) -> list[StoredWork]:
    """Of the waiting works (``pages``, oldest first), the ones a digest with ``room[topic]``
    places per topic can show, in their waiting order."""
    kept: dict[str, list[_Entry]] = {topic: [] for topic in queries}
    relevant: set[int] = set()
    order = 0
    for page in pages:
        works, liked = feedback(page) if feedback is not None else (list(page), set())
        relevant |= liked
        fresh: dict[str, list[_Entry]] = {}
        for work in works:
            order += 1
            topic = work.topic
            if topic is None or topic not in kept or room.get(topic, 0) <= 0:
                continue
            item = work_item(work, topic, queries[topic])
            fresh.setdefault(topic, []).append((order, work, item))
        for topic, new in fresh.items():
            kept[topic] = _first(sorted(kept[topic], key=_order) + new, room[topic], relevant)
    entries = sorted((e for topic_entries in kept.values() for e in topic_entries), key=_order)
    return [work for _, work, _ in entries]


def room(subscription: SubscriptionSettings, queries: Mapping[str, Query]) -> dict[str, int]:
    """At most ``max_items`` per topic: what a digest shows (an unsent digest being topped up
    has less room, which its own cut sees to)."""
    return {topic: subscription.max_items for topic in queries}


def held_back(digest: Digest, waiting: Mapping[str, int]) -> Digest:
    """``digest`` with each section's ``more``: every waiting study of its topic it does not
    show (``waiting``: the counts per topic, ``Repository.waiting``)."""
    sections = tuple(
        dataclasses.replace(s, more=max(0, waiting.get(s.topic, 0) - len(s.items)))
        for s in digest.sections
    )
    return dataclasses.replace(digest, sections=sections)


def _first(entries: list[_Entry], count: int, relevant: set[int]) -> list[_Entry]:
    """The first ``count`` of ``entries`` (in waiting order) in digest order: ranked, the
    relevant ones first, ties kept in waiting order (so a page's survivors and the next page
    rank as the whole would)."""
    of_item = {id(item): (n, work, item) for n, work, item in entries}
    ranked = rank([item for _, _, item in entries])
    if relevant:
        ranked = [i for i in ranked if i.work_id in relevant] + [
            i for i in ranked if i.work_id not in relevant
        ]
    return [of_item[id(item)] for item in ranked[:count]]


def _order(entry: _Entry) -> int:
    return entry[0]
