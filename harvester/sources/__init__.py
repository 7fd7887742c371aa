"""The source registry: one module per API, each behind the :class:`Source` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harvester.sources.base import Page, ParseResult, Skipped, Source, Window
from harvester.sources.pubmed import PubMedSource

if TYPE_CHECKING:
    from harvester.config import SourceSettings
    from harvester.http import Fetcher

SOURCES = {
    "pubmed": PubMedSource,
}


def source_from_settings(
    name: str, settings: SourceSettings, fetcher: Fetcher
) -> tuple[Source, float]:
    """The connector for ``name`` and its rate limit (requests per second) from its settings."""
    cls = SOURCES[name]
    return cls.from_settings(settings, fetcher), cls.rate(settings)


__all__ = ["SOURCES", "Page", "ParseResult", "Skipped", "Source", "Window", "source_from_settings"]
