"""Indexed matching answers exactly what evaluating every topic on every record answers.

The reference is :meth:`Query.match` on every (record, topic) pair; the index must return the
same topics, in the same order, with the same :class:`Match` objects: on every record the
sources' parsers read from the recordings × queries generated from those records' titles, and
on hand-made edge cases (NOT-only trees, NOT of a phrase, truncation, phrases across fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from harvester.query import presearch, screen
from harvester.query.match import index_record
from harvester.query.presearch import MatchStats, TopicIndex
from harvester.query.syntax import (
    MAX_NESTING,
    And,
    Not,
    Or,
    Query,
    Term,
    parse_query,
)
from harvester.records import OtherAbstract, Record, Section
from tests.conftest import require_shared
from tests.topic_queries import generate_queries, recorded_records, varied, vocabulary

GENERATED = 100  # queries × 3,467 recorded records ≈ 350,000 pairs evaluated both ways


def assert_same(topics: Mapping[str, Query], records: Iterable[Record]) -> MatchStats:
    """The index's answer on each record is the every-pair answer; returns the index's work."""
    index = TopicIndex.build(topics)
    stats = MatchStats()
    for record in records:
        tokens = index_record(record)
        expected = {t: m for t, q in topics.items() if (m := q.match(tokens)) is not None}
        assert index.matching(tokens, stats) == list(expected), record.title
        assert index.matches(tokens) == expected, record.title
        assert index.matching(record) == list(expected)  # tokenizing the record itself
    return stats


def topics_of(*queries: str | Query) -> dict[str, Query]:
    return {f"t{i}": q if isinstance(q, Query) else parse_query(q) for i, q in enumerate(queries)}


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return recorded_records(require_shared())


# --- the recordings --------------------------------------------------------------------------


def test_every_recorded_record_against_generated_queries(records: list[Record]) -> None:
    queries = generate_queries(records, GENERATED)
    texts = " ".join(q.text for q in queries)
    # the generated set holds every construct the index must bound
    assert all(s in texts for s in ('"', "*", " OR ", " AND ", " NOT ", "(", '*"'))
    assert {r.source for r in records} >= {
        "pubmed", "europepmc", "crossref", "openalex", "semanticscholar", "arxiv", "biorxiv"
    }  # fmt: skip
    stats = assert_same({f"q{i}": q for i, q in enumerate(queries)}, records)
    pairs = len(records) * len(queries)
    assert stats.records == len(records)
    assert 0 < stats.matched <= stats.screened <= stats.filed < pairs
    assert stats.evaluated <= stats.screened
    # the index does a small part of the every-pair work
    assert stats.filed < pairs / 10


def test_varied_records_keep_the_same_answers(records: list[Record]) -> None:
    derived = varied(records, len(records) + 400)[len(records) :]  # copies with words replaced
    assert all("~" in (r.source_id or "") for r in derived)
    queries = generate_queries(records, 40, seed=5)
    assert_same({f"q{i}": q for i, q in enumerate(queries)}, derived)


def test_walked_and_compiled_screens_agree(
    records: list[Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screen, "COMPILED_DEPTH", 0)  # every screen walks the tree
    queries = generate_queries(records, 30, seed=3)
    assert_same({f"q{i}": q for i, q in enumerate(queries)}, records[::7])


def test_queries_nested_too_deep_to_compile_are_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[object] = []
    real = screen.bounds

    def counting(node: screen.Screen, present: set[int]) -> tuple[bool, bool]:
        walks.append(node)
        return real(node, present)

    monkeypatch.setattr(screen, "bounds", counting)
    alternating = parse_query("online AND (nothing OR (" * 22 + "internet" + "))" * 22)
    nested_not = parse_query("online" + " AND (support NOT (kids" * 30 + ")" * 60)
    flat = parse_query("(" * MAX_NESTING + "depress* OR nothing" + ")" * MAX_NESTING)
    topics = topics_of(alternating, nested_not, flat, "online")
    assert TopicIndex.build(topics).matching(ONLINE) == ["t0", "t1", "t2", "t3"]
    assert walks  # the two deep ones; parentheses alone add no depth to the tree
    assert_same(topics, EDGE_RECORDS)


def test_vocabulary_is_the_titles_words(records: list[Record]) -> None:
    vocab = vocabulary(records)
    assert "Kubernetes" in vocab.words and "depression" in vocab.words
    assert all(len(s) >= 4 for s in vocab.stems)
    assert any(p.count(" ") == 2 for p in vocab.phrases)


# --- edge cases ------------------------------------------------------------------------------


ONLINE = Record(
    source="t",
    title="Peer support for postpartum depression online",
    abstract="Support groups on the internet help mothers. Self help forums too.",
    keywords=("Depression, Postpartum", "Internet"),
)
OTHER = Record(
    source="t",
    title="Caregivers of people with dementia",
    abstract_sections=(
        Section("BACKGROUND", "Care homes and caregiving at home."),
        Section("METHODS", "Interviews with carers."),
    ),
    other_abstracts=(OtherAbstract("de", "Pflege von Menschen mit Demenz zu Hause."),),
    keywords=("Dementia", "Caregivers"),
)
GREEK = Record(source="t", title="Ελληνικά δεδομένα: Jørgensen's naïve SELF-HELP study")
EMPTY = Record(source="t")
EDGE_RECORDS = (ONLINE, OTHER, GREEK, EMPTY)


def test_not_only_queries_are_candidates_for_every_record() -> None:
    # parse_query refuses these; a hand-built Query may hold them
    not_only = Query("NOT depression", Not(Term("depression")))
    branch = Query(
        "care* OR NOT internet", Or((Term("care", truncated=True), Not(Term("internet"))))
    )
    double = Query("NOT NOT dementia", Not(Not(Term("dementia"))))
    topics = topics_of(not_only, branch, double, "online")
    index = TopicIndex.build(topics)
    assert index.candidates(EMPTY) == ["t0", "t1"]  # nothing bounds them; t2 cannot hold
    assert index.matching(EMPTY) == ["t0", "t1"]
    assert index.matching(ONLINE) == ["t3"]
    assert index.matching(OTHER) == ["t0", "t1", "t2"]
    assert_same(topics, EDGE_RECORDS)


def test_not_of_a_phrase_is_left_to_the_evaluator() -> None:
    # both words are present in ONLINE, but never adjacent: the NOT excludes nothing
    topics = topics_of(
        'depression NOT "online depression"',
        'depression NOT "postpartum depression"',
        'depression NOT (internet AND "support postpartum")',
        "forum* NOT (mothers NOT kids)",
    )
    assert TopicIndex.build(topics).matching(ONLINE) == ["t0", "t2"]
    assert_same(topics, EDGE_RECORDS)


def test_truncation_stems_of_several_lengths() -> None:
    topics = topics_of("care*", "caregiv*", "carers", "caregiving*", "demen*", "pflege*", "groups*")
    index = TopicIndex.build(topics)
    assert index.matching(OTHER) == ["t0", "t1", "t2", "t3", "t4", "t5"]
    assert index.matching(ONLINE) == ["t6"]  # a stem that is the whole token
    assert_same(topics, EDGE_RECORDS)


def test_phrases_never_span_two_fields_or_two_segments() -> None:
    topics = topics_of(
        '"depression online"',  # title only
        '"online support"',  # the title ends with online, the abstract starts with Support
        '"postpartum internet"',  # two keywords
        '"home interviews"',  # two abstract sections
        '"zu hause"',  # the other-language abstract
        '"self help forum*"',  # a phrase with a truncated last word
        '"caregiving at home care"',
    )
    index = TopicIndex.build(topics)
    assert index.matching(ONLINE) == ["t0", "t5"]
    assert index.matching(OTHER) == ["t4"]
    assert_same(topics, EDGE_RECORDS)


def test_folding_of_case_diacritics_and_hyphens() -> None:
    topics = topics_of("jorgensen*", "Naive", "self-help", '"ελληνικα"', "δεδομεν*", "SELF")
    assert TopicIndex.build(topics).matching(GREEK) == ["t0", "t1", "t2", "t3", "t4", "t5"]
    assert_same(topics, EDGE_RECORDS)


def test_terms_that_fold_to_nothing_never_hold() -> None:
    nothing = Term("---")  # hand-built: the parser refuses a term without letters
    topics = topics_of(
        Query("--- AND online", And((nothing, Term("online")))),
        Query("--- OR online", Or((nothing, Term("online")))),
        Query("online NOT ---", And((Term("online"), Not(nothing)))),
    )
    assert TopicIndex.build(topics).matching(ONLINE) == ["t1", "t2"]
    assert_same(topics, EDGE_RECORDS)


def test_topics_keep_their_order_and_identical_queries_each_match() -> None:
    topics = {
        "zeta": parse_query("online"),
        "alpha": parse_query("online"),
        "mid": parse_query("x1"),
    }
    assert TopicIndex.build(topics).matching(ONLINE) == ["zeta", "alpha"]
    assert TopicIndex.build({}).matching(ONLINE) == []


def test_function_words_are_not_the_filing_key() -> None:
    index = TopicIndex.build(topics_of('"quality of life"'))
    of_only = Record(source="t", title="Of mice and men")
    assert index.candidates(of_only) == []
    assert index.candidates(Record(source="t", title="Life of quality")) == ["t0"]
    assert index.matching(Record(source="t", title="Quality of life after stroke")) == ["t0"]


def test_partition_groups_records_per_topic() -> None:
    index = TopicIndex.build(topics_of("depress*", "caregiv*", "nothing"))
    assert index.partition([ONLINE, OTHER, GREEK]) == {"t0": [ONLINE], "t1": [OTHER], "t2": []}
    assert index.query("t1") == parse_query("caregiv*")


def test_a_full_token_cache_starts_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presearch, "CACHE_LIMIT", 3)
    topics = topics_of("depress*", "caregiv*", '"zu hause"', "online NOT internet")
    assert_same(topics, EDGE_RECORDS * 3)
