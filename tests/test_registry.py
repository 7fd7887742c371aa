"""One source registry: the connectors, config validation, digests, dedup and the app all
read harvester.registry, and the pure modules reach it without importing httpx."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harvester.config import parse_settings
from harvester.config.sections import SourceSettings
from harvester.dedup.merge import merge_records
from harvester.digests.assemble import DigestItem
from harvester.errors import ConfigError
from harvester.records import Record
from harvester.registry import SOURCE_INFO, SOURCE_LABELS, SOURCE_NAMES, SOURCE_PREFERENCE
from harvester.sources import SOURCES, missing_key


def test_every_connector_points_at_its_own_entry() -> None:
    assert set(SOURCES) == set(SOURCE_NAMES)
    for name, cls in SOURCES.items():
        assert cls.INFO is SOURCE_INFO[name]
        assert cls.name == name


def test_config_accepts_every_registry_name() -> None:
    topic = {"name": "t", "query": "x", "sources": list(SOURCE_NAMES)}
    topic["raw_queries"] = {name: "x" for name in SOURCE_NAMES}
    settings = parse_settings({"topics": [topic], "sources": {n: {} for n in SOURCE_NAMES}})
    assert settings.topics[0].sources == SOURCE_NAMES


@pytest.mark.parametrize(
    "document",
    [
        {"topics": [{"name": "t", "query": "x", "sources": ["scopus"]}]},
        {"topics": [{"name": "t", "query": "x", "raw_queries": {"scopus": "x"}}]},
        {"sources": {"scopus": {}}},
    ],
)
def test_config_refuses_a_name_outside_the_registry(document: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as e:
        parse_settings(document)
    assert f"unknown source 'scopus'; known sources: {', '.join(SOURCE_NAMES)}" in str(e.value)


def test_digests_name_sources_by_their_registry_label() -> None:
    item = DigestItem(
        work_id=1, topic="t", record=Record(source="pubmed"), sources=SOURCE_NAMES, score=1.0
    )
    assert item.found_in == " · ".join(SOURCE_INFO[n].label for n in SOURCE_NAMES)
    assert dict(SOURCE_LABELS) == {n: i.label for n, i in SOURCE_INFO.items()}


def test_merged_fields_come_from_the_most_preferred_source() -> None:
    assert tuple(sorted(SOURCE_INFO, key=lambda n: SOURCE_INFO[n].preference)) == SOURCE_PREFERENCE
    records = [Record(source=name, venue=f"venue of {name}") for name in SOURCE_PREFERENCE]
    for i, name in enumerate(SOURCE_PREFERENCE):
        assert merge_records(records[i:][::-1]).venue == f"venue of {name}"


def test_keys_and_in_flight_caps_are_read_from_the_registry() -> None:
    for name, info in SOURCE_INFO.items():
        expected = info.key_env if info.requires_key else None
        assert missing_key(name, SourceSettings()) == expected
    assert SOURCE_INFO["openalex"].requires_key and SOURCE_INFO["openalex"].key_env
    crossref = SOURCE_INFO["crossref"]
    assert (crossref.in_flight(None), crossref.in_flight("me@example.org")) == (1, 3)
    assert SOURCE_INFO["pubmed"].in_flight("me@example.org") is None


def test_pure_code_reads_the_registry_without_httpx() -> None:
    code = (
        "import sys\n"
        "import harvester.registry, harvester.dedup.cluster, harvester.config\n"
        "assert 'httpx' not in sys.modules, sorted(sys.modules)\n"
        "assert 'sqlalchemy' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
