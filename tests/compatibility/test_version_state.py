"""A database ahead of the code, or with contradictory version rows, is refused untouched."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.cli import alembic
from tests.support.ddl_statements import ddl_statements
from tests.support.revisions import HEAD
from tests.support.schema_snapshot import snapshot
from vidpipe.db import (
    VERSION_TABLE,
    DatabaseAheadError,
    InvalidVersionState,
    downgrade,
    upgrade,
)


def set_version_rows(engine: sa.Engine, *rows: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DELETE FROM {VERSION_TABLE}")
        for row in rows:
            connection.execute(
                sa.text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:row)"), {"row": row}
            )


def version_rows(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(
            connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars()
        )


def test_database_ahead_of_the_code_is_refused_untouched(engine_at_head: sa.Engine) -> None:
    set_version_rows(engine_at_head, "vidpipe_9999")
    before = snapshot(engine_at_head, keep_version_table=True)

    for attempt in (lambda: upgrade(engine_at_head), lambda: downgrade(engine_at_head, "base")):
        with (
            ddl_statements(engine_at_head) as statements,
            pytest.raises(DatabaseAheadError) as raised,
        ):
            attempt()
        assert statements == []
        assert raised.value.unknown == ("vidpipe_9999",)
        message = str(raised.value)
        assert "vidpipe_9999" in message
        assert "does not know" in message and "newer vidpipe" in message
    assert snapshot(engine_at_head, keep_version_table=True) == before
    assert version_rows(engine_at_head) == ["vidpipe_9999"]


def test_cli_says_the_database_is_ahead(
    engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    set_version_rows(engine_at_head, "vidpipe_9999")
    result = alembic(
        "upgrade", "head", cwd=tmp_path, url=database_url.render_as_string(hide_password=False)
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "FAILED: The database is at revision vidpipe_9999" in output
    assert "Traceback" not in output
    assert version_rows(engine_at_head) == ["vidpipe_9999"]


def test_contradictory_version_rows_are_refused_untouched(engine: sa.Engine) -> None:
    """A revision and its own ancestor: the database cannot be at both (the version table's
    primary key already rules out duplicates)."""
    rows = ("vidpipe_0001", "vidpipe_0002")
    upgrade(engine, "vidpipe_0001")
    set_version_rows(engine, *rows)
    before = snapshot(engine, keep_version_table=True)

    with ddl_statements(engine) as statements, pytest.raises(InvalidVersionState) as raised:
        upgrade(engine)

    assert statements == []
    assert sorted(raised.value.rows) == list(rows)
    assert f"{VERSION_TABLE} holds 2 rows" in str(raised.value)
    assert "vidpipe_0001 (an ancestor of vidpipe_0002)" in str(raised.value)
    assert "alembic stamp --purge" in str(raised.value)
    assert snapshot(engine, keep_version_table=True) == before
    assert version_rows(engine) == sorted(rows)


def test_stamp_purge_repairs_contradictory_rows(
    engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    """The repair the error recommends works, and afterwards upgrades run again."""
    set_version_rows(engine_at_head, "vidpipe_0001", "vidpipe_0002")
    url = database_url.render_as_string(hide_password=False)
    result = alembic("stamp", "--purge", HEAD, cwd=tmp_path, url=url)
    assert result.returncode == 0, result.stderr
    assert version_rows(engine_at_head) == [HEAD]
    upgrade(engine_at_head)
    assert version_rows(engine_at_head) == [HEAD]
