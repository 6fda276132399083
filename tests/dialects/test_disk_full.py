"""A SQLite upgrade whose file cannot grow (a full disk, a file-size limit) says so, with the
path, instead of Alembic's clean-up error ("no such table: _alembic_tmp_assets"), and leaves the
database as it was."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from vidpipe.db import upgrade

#: The revision before vidpipe_0006, which rebuilds assets (SQLite batch mode: copy the table)
#: where a column must become NOT NULL.
BEFORE_REBUILD = "vidpipe_0005"
ASSETS = 2000

#: Run in its own process: the file-size limit applies to the whole process, and SIGXFSZ
#: (which would kill it) is ignored so that the write fails with EFBIG, as on a full disk.
UPGRADE_UNDER_A_LIMIT = """
import os, resource, signal, sys
from vidpipe.db import VidpipeDatabaseError, upgrade
path, limit = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    upgrade(f"sqlite:///{path}")
except VidpipeDatabaseError as error:
    print(type(error).__name__, error)
"""


@pytest.fixture
def assets_file(tmp_path: Path) -> Path:
    """A database at BEFORE_REBUILD with enough assets that copying them needs megabytes, and
    a nullable ``assets.sort_order`` (as an older vidpipe's ALTER left it), so that
    vidpipe_0006 copies them (a default alone would be an edit of the table's definition)."""
    path = tmp_path / "vidpipe.db"
    upgrade(f"sqlite:///{path}", BEFORE_REBUILD)
    with sqlite3.connect(path) as connection:
        table, *indexes = connection.execute(
            "SELECT sql FROM sqlite_schema WHERE tbl_name = 'assets' AND sql IS NOT NULL "
            "ORDER BY type = 'index'"
        ).fetchall()
        loose = table[0].replace("sort_order INTEGER NOT NULL", "sort_order INTEGER")
        assert loose != table[0]
        connection.execute("DROP TABLE assets")  # empty, its indexes with it
        for (definition,) in [(loose,), *indexes]:
            connection.execute(definition)
        connection.execute(
            "INSERT INTO manifests (id, name, category, status, asset_count, "
            "total_processing_cost, times_used, version) "
            "VALUES ('0123456789abcdef0123456789abcdef', 'm', 'c', 'ready', 0, 0, 0, 1)"
        )
        connection.executemany(
            "INSERT INTO assets (id, manifest_id, asset_type, name, manifest_tag, description, "
            "source, sort_order, is_face_crop) VALUES (?, '0123456789abcdef0123456789abcdef', "
            "'character', 'a', 'T', ?, 'upload', 0, 0)",
            [(f"{n:032x}", "x" * 2000) for n in range(ASSETS)],
        )
    connection.close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file holds it all
    connection.close()
    return path


def test_a_file_that_cannot_grow_is_named_as_such(assets_file: Path) -> None:
    limit = assets_file.stat().st_size + 200_000  # far less than a copy of assets
    result = subprocess.run(
        [sys.executable, "-c", UPGRADE_UNDER_A_LIMIT, str(assets_file), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert message.startswith(f"DatabaseFileError SQLite could not write the database file {assets_file}: disk I/O error"), message
    assert "the file could not grow" in message
    assert "at the revision it was at" in message
    assert "_alembic_tmp" not in message
    with sqlite3.connect(assets_file) as connection:
        assert connection.execute("SELECT version_num FROM vidpipe_alembic_version").fetchall() == [(BEFORE_REBUILD,)]
        assert connection.execute("SELECT count(*) FROM assets").fetchone() == (ASSETS,)
    connection.close()
    upgrade(f"sqlite:///{assets_file}")  # with room again, the same upgrade goes through
