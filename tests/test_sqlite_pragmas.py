"""The SQLite connection settings every engine from ``store.database.create`` applies."""

from __future__ import annotations

from pathlib import Path

from harvester.store.database import create


def test_sqlite_connections_get_wal_foreign_keys_and_a_64_mb_page_cache(tmp_path: Path) -> None:
    engine = create(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with engine.connect() as conn:
            pragma = conn.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar_one() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar_one() == 1
            # negative: KiB, not pages; the default (-2000) made every probe of a large store
            # re-read its B-tree pages through the OS (README, "Ingest at 1,000,000 works")
            assert pragma("PRAGMA cache_size").scalar_one() == -64 * 1024
    finally:
        engine.dispose()
