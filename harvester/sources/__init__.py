"""The connectors: one module or package per API, each behind the :class:`Source` protocol.

``SOURCES`` maps each name to its connector class; what the rest of the service knows about a
source (label, key, in-flight cap, preference) is its entry in :mod:`harvester.registry`, which
each class points at as ``INFO``. May import: records, text, query, errors, registry, http
(for types); never the store, the digests or the app. Importing this package imports every
connector, and so httpx: pure code reads :mod:`harvester.registry` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harvester.sources.arxiv import ArxivSource
from harvester.sources.base import Page, ParseResult, Skipped, Source, SourceFactory, Window
from harvester.sources.biorxiv import BiorxivSource, MedrxivSource
from harvester.sources.crossref import CrossrefSource
from harvester.sources.europepmc import EuropePMCSource
from harvester.sources.openalex import OpenAlexSource
from harvester.sources.pubmed import PubMedSource
from harvester.sources.semanticscholar import SemanticScholarSource

if TYPE_CHECKING:
    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

SOURCES: dict[str, SourceFactory] = {
    "pubmed": PubMedSource,
    "openalex": OpenAlexSource,
    "semanticscholar": SemanticScholarSource,
    "arxiv": ArxivSource,
    "biorxiv": BiorxivSource,
    "medrxiv": MedrxivSource,
    "europepmc": EuropePMCSource,
    "crossref": CrossrefSource,
}


def missing_key(name: str, settings: SourceSettings) -> str | None:
    """For a source that cannot work without an API key the user has not set: the name of
    the environment variable to set (OpenAlex requires a key since February 2026)."""
    info = SOURCES[name].INFO
    if info.requires_key and settings.api_key is None:
        return settings.api_key_env or info.key_env or f"{name.upper()}_API_KEY"
    return None


def source_from_settings(
    name: str, settings: SourceSettings, fetcher: Fetcher
) -> tuple[Source, float]:
    """The connector for ``name`` and its rate limit (requests per second) from its settings."""
    cls = SOURCES[name]
    source = cls.from_settings(settings, fetcher)
    if settings.max_record_bytes is not None:
        source.max_record_bytes = settings.max_record_bytes
    return source, cls.rate(settings)


__all__ = [
    "SOURCES",
    "Page",
    "ParseResult",
    "Skipped",
    "Source",
    "SourceFactory",
    "Window",
    "missing_key",
    "source_from_settings",
]
