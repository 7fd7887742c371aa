"""The scripts in benchmarks/ are not run by the suite (their figures are timings on a shared,
noisy machine), but each must start: an import that a refactor broke went unnoticed once
(dedup_incremental.py imported provenance_key from the module it had left)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert {p.name for p in BENCHMARKS} >= {
        "dedup_quality.py", "dedup_incremental.py", "parse.py", "harvest_rate.py", "digest.py"
    }  # fmt: skip


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.name)
def test_benchmark_script_imports_and_parses_its_options(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
