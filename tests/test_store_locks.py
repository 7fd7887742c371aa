"""One daemon per SQLite file, whatever name reaches the file (issue 18.13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harvester.errors import StoreError
from harvester.store.database import open_engine
from harvester.store.locks import DaemonLock


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "harvester.db"
    path.parent.mkdir()
    open_engine(f"sqlite:///{path}").dispose()  # a real database file
    return path


def names_of(database: Path, tmp_path: Path) -> dict[str, Path]:
    """Other names of one database file: a hard link in another directory, one beside it,
    a symlink, and a relative path through '..'."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.link(database, elsewhere / "copy.db")
    os.link(database, database.with_name("linked.db"))
    (tmp_path / "symlink.db").symlink_to(database)
    return {
        "hard link elsewhere": elsewhere / "copy.db",
        "hard link beside": database.with_name("linked.db"),
        "symlink": tmp_path / "symlink.db",
        "relative": Path(os.path.relpath(elsewhere / ".." / "data" / "harvester.db")),
    }


def test_a_second_daemon_lock_on_any_name_of_the_file_is_refused(
    database: Path, tmp_path: Path
) -> None:
    first = DaemonLock(database)
    first.acquire()
    try:
        for how, name in names_of(database, tmp_path).items():
            assert os.path.samefile(name, database), how
            with pytest.raises(StoreError, match="another harvester daemon") as refused:
                DaemonLock(name).acquire()
            assert "hard link or a symlink" in str(refused.value), how
        with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
            DaemonLock(database).acquire()  # by its own name: the holder is named
    finally:
        first.release()
    # released: any name may take it now, and only one at a time
    second = DaemonLock(tmp_path / "elsewhere" / "copy.db")
    second.acquire()
    try:
        with pytest.raises(StoreError, match="another harvester daemon"):
            DaemonLock(database).acquire()
    finally:
        second.release()


def test_the_lock_holds_against_another_process_on_a_hard_link(
    database: Path, tmp_path: Path
) -> None:
    link = tmp_path / "link.db"
    os.link(database, link)
    lock = DaemonLock(database)
    lock.acquire()
    try:
        code = (
            "import sys\n"
            "from pathlib import Path\n"
            "from harvester.errors import StoreError\n"
            "from harvester.store.locks import DaemonLock\n"
            "try:\n"
            "    DaemonLock(Path(sys.argv[1])).acquire()\n"
            "except StoreError as e:\n"
            "    print(e)\n"
            "    sys.exit(3)\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", code, str(link)], capture_output=True, text=True, timeout=60
        )
        assert other.returncode == 3, other.stdout + other.stderr
        assert "another harvester daemon" in other.stdout
    finally:
        lock.release()


def test_a_missing_database_file_is_created_empty_and_locked(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    lock = DaemonLock(path)
    lock.acquire()
    try:
        assert path.stat().st_size == 0  # SQLite takes an empty file as a new database
        engine = open_engine(f"sqlite:///{path}")
        engine.dispose()
    finally:
        lock.release()
    with pytest.raises(StoreError, match="cannot open the SQLite database"):
        DaemonLock(tmp_path / "no-such-dir" / "h.db").acquire()


def test_harvester_run_on_a_hard_link_of_a_running_daemons_database_is_refused(
    database: Path, tmp_path: Path
) -> None:
    from tests.test_cli import harvester_command

    link = tmp_path / "link.db"
    os.link(database, link)
    config = tmp_path / "h.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{link}"\n'
        '[[topics]]\nname = "t"\nquery = "x"\nsources = ["pubmed"]\n'
    )
    running = DaemonLock(database)  # the daemon that runs on the file's first name
    running.acquire()
    try:
        env = {k: v for k, v in os.environ.items() if k != "HARVESTER_DATABASE_URL"}
        second = subprocess.run(
            [*harvester_command(), "--config", str(config), "run"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    finally:
        running.release()
    assert second.returncode == 1, second.stdout + second.stderr
    assert "another harvester daemon" in second.stderr
