"""A local emulator of the bibliographic APIs harvester talks to (see ``server``)."""

from pathlib import Path

from tests.emulator.base import RecordedRequest, Reply, Request, SourceRoutes
from tests.emulator.server import SOURCES, Emulator, Fault, Faults, RateLimit

# The shared recordings, beside the repository: /work/shared/fixtures for /work/main.
FIXTURES_DIR = Path(__file__).resolve().parents[3] / "shared" / "fixtures"

__all__ = [
    "FIXTURES_DIR",
    "SOURCES",
    "Emulator",
    "Fault",
    "Faults",
    "RateLimit",
    "RecordedRequest",
    "Reply",
    "Request",
    "SourceRoutes",
]
