"""The other versions of stored works: the works their version links join them to.

A preprint and its article, a paper's conference, journal and report versions (``work_links``,
written by the page writer) are one study; links chain, so a work's versions are every work a
chain of links reaches. Read by :meth:`harvester.store.repository.Repository.versions` for the
digests' "also published as …".
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.dedup.cluster import studies, version_rank
from harvester.records import Record
from harvester.store.models import Work, WorkLink

# Links followed from a work at most: a study's versions are a handful (preprint, conference
# paper, report, journal article); a longer chain is not read further.
MAX_HOPS = 4


def other_versions(session: Session, work_ids: Sequence[int]) -> dict[int, tuple[Record, ...]]:
    """For each of ``work_ids`` with version links, the records of its other versions, the
    main version first (:func:`harvester.dedup.cluster.version_rank`, then the oldest)."""
    pairs: set[tuple[int, int]] = set()
    frontier, seen = set(work_ids), set(work_ids)
    for _ in range(MAX_HOPS):
        if not frontier:
            break
        found = session.execute(
            select(WorkLink.work_id, WorkLink.other_work_id).where(
                WorkLink.work_id.in_(list(frontier)) | WorkLink.other_work_id.in_(list(frontier))
            )
        ).all()
        pairs.update((a, b) for a, b in found)
        frontier = {w for pair in found for w in pair} - seen
        seen |= frontier
    if not pairs:
        return {}
    linked = studies(pairs)
    records = {
        work_id: Record.from_json(record)
        for work_id, record in session.execute(
            select(Work.id, Work.record).where(Work.id.in_(list(linked)))
        )
    }
    out: dict[int, tuple[Record, ...]] = {}
    for work_id in work_ids:
        others = [w for w in linked.get(work_id, ()) if w != work_id and w in records]
        others.sort(key=lambda w: (*version_rank(records[w]), w))
        if others:
            out[work_id] = tuple(records[w] for w in others)
    return out
