"""What the source parser tests share: real JSON responses mutated by hypothesis, the
DESIGN.md Record schema checks their parses must pass, and a pass over every recording.

A mutated document is a real recorded response (loaded by the test module) with one to a
few values replaced or removed, and sometimes its serialization cut short, so every body a
property test feeds a parser is derived from a real one.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from harvester.errors import ParseError
from harvester.records import Record
from harvester.sources.base import ParseResult
from harvester.text.identifiers import (
    normalize_arxiv,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
)

PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path (keys and indexes) of every value below ``value``, each before its children."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from json_paths(child, (*prefix, index))


def json_values(
    markup: Sequence[str] = (), *, text_size: int = 12, key_size: int = 6
) -> st.SearchStrategy[Any]:
    """Any small JSON value; strings include the ``markup`` samples when given."""
    leaves: list[st.SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=text_size),
    ]
    if markup:
        leaves.append(st.sampled_from(list(markup)))
    return st.recursive(
        st.one_of(leaves),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(max_size=key_size), inner, max_size=3)
        ),
        max_leaves=6,
    )


def mutated_json(
    bases: Sequence[Any],
    *,
    values: st.SearchStrategy[Any],
    max_edits: int,
    truncate: st.SearchStrategy[bool],
) -> st.SearchStrategy[bytes]:
    """One of the real documents ``bases``, serialized after 1 to ``max_edits`` edits: a key
    dropped, or any value replaced by one of ``values``; cut at a random byte when
    ``truncate`` draws True."""
    paths = [list(json_paths(base)) for base in bases]

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        which = draw(st.integers(0, len(bases) - 1))
        document = copy.deepcopy(bases[which])
        for _ in range(draw(st.integers(1, max_edits))):
            path = draw(st.sampled_from(paths[which]))
            parent: Any = document
            try:
                for step in path[:-1]:
                    parent = parent[step]
                if draw(st.booleans()) and isinstance(parent, dict):
                    parent.pop(path[-1], None)  # drop the key
                else:
                    parent[path[-1]] = draw(values)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier edit removed this path
        body = json.dumps(document).encode()
        if draw(truncate):
            body = body[: draw(st.integers(0, len(body)))]
        return body

    return mutated()


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True with probability 1/n."""
    return st.integers(0, n - 1).map(lambda drawn: drawn == 0)


def assert_parses_or_refuses(
    parse: Callable[[bytes], ParseResult], body: bytes, assert_valid: Callable[[Record], None]
) -> None:
    """``parse(body)`` raises ParseError, or gives valid records and reasoned skips."""
    try:
        result = parse(body)
    except ParseError:
        return
    for record in result.records:
        assert_valid(record)
    for skipped in result.skipped:
        assert skipped.reason


def parse_every_recording(
    directory: Path, parse: Callable[..., ParseResult], assert_valid: Callable[[Record], None]
) -> int:
    """How many of the recorded responses in ``directory`` ``parse(body, url=name)`` reads:
    each with no skips and valid records; every other one raises a ParseError naming it."""
    parsed = 0
    for path in sorted(directory.iterdir()):
        try:
            result = parse(path.read_bytes(), url=path.name)
        except ParseError as error:
            assert path.name in str(error)
            continue
        parsed += 1
        assert result.skipped == ()
        for record in result.records:
            assert_valid(record)
    return parsed


def assert_record_contract(record: Record) -> None:
    """The DESIGN.md Record contract: None not "", int year, ISO partial date, named authors,
    and a lossless round trip through JSON text."""
    data = record.to_json()
    assert Record.from_json(json.loads(json.dumps(data))) == record
    for key, value in data.items():
        assert value != "", key
    assert record.year is None or isinstance(record.year, int)
    assert record.published is None or PARTIAL_DATE.match(record.published)
    assert all(s.text for s in record.abstract_sections)
    for author in record.authors:
        assert author.collective or author.family or author.given
        assert all(v != "" for v in (author.family, author.given, author.orcid))


def assert_canonical_record(record: Record, *, source: str, text_fields: Sequence[str]) -> None:
    """What DESIGN.md's Record schema promises of a JSON API's record: ``text_fields`` None
    or trimmed non-empty text, a 4-digit year, an ISO date, canonical ids, named authors."""
    assert record.source == source
    data = record.to_json()
    json.dumps(data)
    for key in text_fields:
        value = data[key]
        assert value is None or (isinstance(value, str) and value.strip() == value != "")
    assert record.year is None or (isinstance(record.year, int) and 1000 <= record.year <= 9999)
    assert record.published is None or PARTIAL_DATE.match(record.published)
    ids = record.ids
    assert ids.doi is None or normalize_doi(ids.doi) == ids.doi
    assert ids.pmid is None or normalize_pmid(ids.pmid) == ids.pmid
    assert ids.pmcid is None or normalize_pmcid(ids.pmcid) == ids.pmcid
    assert ids.arxiv is None or normalize_arxiv(ids.arxiv) == ids.arxiv
    for author in record.authors:
        assert author.family or author.given
    assert Record.from_json(data) == record
