"""A digest chosen from a backlog read page by page is the digest the whole backlog makes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from harvester.digests.assemble import assemble_digest
from harvester.digests.compose import relevant_first
from harvester.digests.select import shown_pending
from harvester.query.syntax import parse_query
from harvester.records import Record, StoredWork

QUERIES = {
    "nlp": parse_query('"language model" OR nlp OR transformer*'),
    "imaging": parse_query("radiology OR imaging OR segmentation"),
}
TITLES = {
    "nlp": ["A language model for notes", "Transformers in the clinic", "Cohort study"],
    "imaging": ["Radiology reports", "Segmentation of scans", "Outcomes of surgery"],
}
ABSTRACTS = {
    "nlp": ["We apply nlp to discharge letters.", "A transformer reads notes.", "nlp"],
    "imaging": ["Imaging of the chest.", "We study radiology.", "segmentation"],
}
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def backlog(n: int, seed: int) -> list[StoredWork]:
    """``n`` waiting works over two topics, scores and dates drawn so that ties are common."""
    rng = random.Random(seed)
    works = []
    for i in range(n):
        topic = rng.choice(list(QUERIES))
        record = Record(
            source="pubmed",
            source_id=str(i),
            title=rng.choice(TITLES[topic]),
            abstract=rng.choice(ABSTRACTS[topic]),
            published=rng.choice(["2024", "2024-05", "2024-05-02", None]),
        )
        first_seen = NOW - timedelta(hours=n - i)
        works.append(StoredWork(i + 1, record, ("pubmed",), topic=topic, first_seen=first_seen))
    return works


def pages_of(works: Sequence[StoredWork], size: int) -> list[list[StoredWork]]:
    return [list(works[i : i + size]) for i in range(0, len(works), size)]


def chosen(works: Sequence[StoredWork], room: dict[str, int], relevant: set[int]) -> list:
    digest = relevant_first(assemble_digest("s", works, queries=QUERIES, now=NOW), relevant)
    return [item for s in digest.sections for item in s.items[: room[s.topic]]]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("size", [1, 7, 50, 1000])
def test_paged_choice_is_the_whole_backlogs(seed: int, size: int) -> None:
    works = backlog(300, seed)
    room = {"nlp": 12, "imaging": 5}
    rejected = {w.id for w in works[::17]}
    relevant = {w.id for w in works[5::23]} - rejected

    def feedback(page: Sequence[StoredWork]) -> tuple[list[StoredWork], set[int]]:
        return [w for w in page if w.id not in rejected], {w.id for w in page} & relevant

    kept = [w for w in works if w.id not in rejected]
    whole = chosen(kept, room, relevant)
    shown = shown_pending(pages_of(works, size), QUERIES, room, feedback=feedback)
    assert len(shown) == sum(room.values())
    assert chosen(shown, room, relevant) == whole
    # the survivors keep their waiting order, as the store hands them out
    assert [w.id for w in shown] == sorted(w.id for w in shown)


def test_without_feedback_and_a_topic_with_no_room() -> None:
    works = backlog(120, 4)
    room = {"nlp": 0, "imaging": 9}
    shown = shown_pending(pages_of(works, 10), QUERIES, room)
    assert {w.topic for w in shown} == {"imaging"} and len(shown) == 9
    assert chosen(shown, room, set()) == chosen(works, room, set())
