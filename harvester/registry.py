"""The source registry: what the rest of the service knows about each API, declared once.

One :class:`SourceInfo` per source: its name, the label readers see, whether it needs an API
key (and the variable a user sets for it), how many requests may be in flight at once, and its
rank when sources disagree on a merged field. Configuration validation (the known names),
digests (the labels), dedup (the preference) and the app (keys, in-flight caps) read it here;
each connector class points at its own entry (``INFO = SOURCE_INFO["pubmed"]``).

Why here and not in ``harvester/sources``: importing any ``harvester.sources.<x>`` runs the
package's ``__init__``, which imports every connector and so httpx; the pure packages (dedup,
and what digests and config need) must not. This module is plain data and imports nothing
from harvester, so anything may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What one API is, as far as everything but its connector is concerned."""

    name: str  # the name in the configuration, on the command line, in stored provenance
    label: str  # how digests and reports name it
    # rank when sources disagree on a merged field (lower wins): the journal's own metadata
    # (PubMed, Crossref) before aggregators, aggregators before preprint servers
    preference: int
    requires_key: bool = False  # without a key the source is skipped, with a warning
    key_env: str | None = None  # the variable its documentation suggests for the key
    # at most this many requests in flight at once (None: no cap beyond the rate), and the
    # cap with a contact address (a "polite pool"); Crossref, December 2025: 1, or 3
    max_in_flight: int | None = None
    max_in_flight_polite: int | None = None

    def in_flight(self, contact: str | None) -> int | None:
        """The in-flight cap, for a source configured with (or without) a contact address."""
        if contact and self.max_in_flight_polite is not None:
            return self.max_in_flight_polite
        return self.max_in_flight


_ENTRIES = (
    SourceInfo("pubmed", "PubMed", preference=0),
    SourceInfo("europepmc", "Europe PMC", preference=2),
    SourceInfo("crossref", "Crossref", preference=1, max_in_flight=1, max_in_flight_polite=3),
    SourceInfo("openalex", "OpenAlex", preference=3, requires_key=True, key_env="OPENALEX_API_KEY"),
    SourceInfo("arxiv", "arXiv", preference=5),
    SourceInfo("biorxiv", "bioRxiv", preference=6),
    SourceInfo("medrxiv", "medRxiv", preference=7),
    SourceInfo("semanticscholar", "Semantic Scholar", preference=4, key_env="S2_API_KEY"),
)

# in the documented order (../shared/DESIGN.md "Source names")
SOURCE_INFO: Mapping[str, SourceInfo] = MappingProxyType({s.name: s for s in _ENTRIES})
SOURCE_NAMES: tuple[str, ...] = tuple(SOURCE_INFO)
SOURCE_LABELS: Mapping[str, str] = MappingProxyType({s.name: s.label for s in _ENTRIES})
# most preferred first
SOURCE_PREFERENCE: tuple[str, ...] = tuple(
    s.name for s in sorted(_ENTRIES, key=lambda s: s.preference)
)
