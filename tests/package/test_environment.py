"""Where migrations get their database, and how they run on it: CLI, API, async, offline."""

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.pool import NullPool

from tests.support.cli import REPO_ROOT, alembic
from tests.support.databases import HeadTemplates, as_async, dialect_params, url_text
from tests.support.revisions import HEAD
from tests.support.rows import BASELINE_TABLES, MANIFEST_TABLES, UPSTREAM_TABLES
from tests.support.schema_snapshot import snapshot
from vidpipe.db import (
    VERSION_TABLE,
    DatabaseURLError,
    ForeignKeyViolation,
    create_async_engine,
    create_engine,
    current_revision,
    upgrade,
    upgrade_async,
)
from vidpipe.db.migrate import alembic_config
from vidpipe.db.runner.environment import BOOKKEEPING_TABLES
from vidpipe.db.runner.revision_record import RECORD_TABLE

TABLES = set(BASELINE_TABLES + MANIFEST_TABLES + UPSTREAM_TABLES)


def table_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_cli_default_creates_vidpipe_db_in_the_working_directory(tmp_path: Path) -> None:
    result = alembic("upgrade", "head", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert table_names(tmp_path / "vidpipe.db") == TABLES | set(BOOKKEEPING_TABLES)


def test_x_url_wins_over_the_environment_variable(tmp_path: Path) -> None:
    from_env, from_x = tmp_path / "env.db", tmp_path / "x.db"
    result = alembic(
        "-x",
        f"url=sqlite:///{from_x}",
        "upgrade",
        "head",
        cwd=tmp_path,
        url=f"sqlite:///{from_env}",
    )
    assert result.returncode == 0, result.stderr
    assert table_names(from_x) == TABLES | set(BOOKKEEPING_TABLES)
    assert not from_env.exists()
    assert not (tmp_path / "vidpipe.db").exists()


def test_environment_variable_wins_over_alembic_ini(tmp_path: Path) -> None:
    from_env = tmp_path / "env.db"
    assert alembic("upgrade", "head", cwd=tmp_path, url=f"sqlite:///{from_env}").returncode == 0
    assert table_names(from_env) == TABLES | set(BOOKKEEPING_TABLES)
    assert not (tmp_path / "vidpipe.db").exists()


def test_cli_names_the_setting_that_holds_a_bad_url(tmp_path: Path) -> None:
    result = alembic("upgrade", "head", cwd=tmp_path, url="not a url at all")
    assert result.returncode != 0
    assert "VIDPIPE_DATABASE_URL" in result.stderr
    assert "not a valid SQLAlchemy URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_api_rejects_a_bad_url_without_echoing_it() -> None:
    with pytest.raises(DatabaseURLError, match="argument") as raised:
        upgrade("postgresql://user:s3cret@host:port/db")
    assert "s3cret" not in str(raised.value)


def test_api_names_a_driver_sqlalchemy_does_not_know() -> None:
    with pytest.raises(DatabaseURLError, match="SQLAlchemy has no driver 'nosuchdriver'"):
        upgrade("postgresql+nosuchdriver://localhost/db")


def test_api_runs_from_a_directory_without_alembic_ini(
    database_url: sa.URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "alembic.ini").exists()
    upgrade(url_text(database_url))
    assert current_revision(url_text(database_url)) == HEAD


def test_api_accepts_a_connection_and_an_engine(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        upgrade(connection, "vidpipe_0001")
    assert current_revision(engine) == "vidpipe_0001"
    upgrade(engine)
    with engine.connect() as connection:
        assert current_revision(connection) == HEAD


def test_upgrade_async_with_an_async_engine(dialect: str, database_url: sa.URL) -> None:
    async def run() -> str | None:
        engine = create_async_engine(as_async(database_url, dialect), poolclass=NullPool)
        try:
            await upgrade_async(engine)
            async with engine.connect() as connection:
                return await connection.run_sync(current_revision)
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == HEAD


def test_cli_with_an_async_url(dialect: str, database_url: sa.URL, tmp_path: Path) -> None:
    result = alembic("upgrade", "head", cwd=tmp_path, url=url_text(as_async(database_url, dialect)))
    assert result.returncode == 0, result.stderr
    assert current_revision(database_url) == HEAD


def test_offline_sql_builds_the_same_schema_as_online(
    dialect: str, database_url: sa.URL, tmp_path: Path, head_templates: HeadTemplates
) -> None:
    """The ``--sql`` script, run by hand on an empty database, gives what ``upgrade`` gives."""
    result = alembic("upgrade", "head", "--sql", cwd=tmp_path, url=url_text(database_url))
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert "CREATE TABLE scene_manifests" in script
    assert f"INSERT INTO {VERSION_TABLE}" in script

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            for statement in script.split(";\n"):
                lines = [
                    line
                    for line in statement.splitlines()
                    if line.strip() and not line.startswith("--")
                ]
                if lines and lines[0].strip().upper() not in ("BEGIN", "COMMIT"):
                    connection.exec_driver_sql("\n".join(lines))
            connection.commit()
        offline = snapshot(engine, keep_version_table=True)
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()
    with head_templates.engine(dialect) as online:
        expected = snapshot(online, keep_version_table=True)
    # Offline scripts record no revision kinds (vidpipe.db.runner.revision_record).
    del expected[RECORD_TABLE]
    assert expected == offline


@pytest.mark.parametrize("make", ["sync", "async"])
def test_sqlite_connections_get_foreign_keys_wal_and_busy_timeout(
    tmp_path: Path, make: str
) -> None:
    path = tmp_path / "settings.db"

    def read(connection: sa.Connection) -> tuple:
        return tuple(
            connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout")
        )

    if make == "sync":
        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            settings = read(connection)
        engine.dispose()
    else:

        async def run() -> tuple:
            engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
            async with engine.connect() as connection:
                result = await connection.run_sync(read)
            await engine.dispose()
            return result

        settings = asyncio.run(run())
    assert settings == (1, "wal", 30_000)


FAILING_REVISION = '''
"""fails half-way"""
import sqlalchemy as sa
from alembic import op

revision = "zz_failing"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    raise RuntimeError("revision failed on purpose")


def downgrade() -> None:
    pass
'''

ORPHAN_REVISION = '''
"""leaves a scene that points at no project"""
from alembic import op

revision = "zz_orphan"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO scenes (id, project_id, scene_index, scene_description, start_frame_prompt, "
        "end_frame_prompt, video_motion_prompt, status) VALUES ('00000000000000000000000000000001', "
        "'0000000000000000000000000000dead', 0, 'd', 's', 'e', 'm', 'pending')"
    )


def downgrade() -> None:
    pass
'''


def script_with_extra_revision(tmp_path: Path, source: str) -> Path:
    """A copy of vidpipe's migrations with one more revision on top."""
    location = tmp_path / "migrations"
    shutil.copytree(
        REPO_ROOT / "migrations", location, ignore=shutil.ignore_patterns("__pycache__")
    )
    (location / "versions" / "zz_extra.py").write_text(source.replace("{head}", HEAD))
    return location


@pytest.mark.parametrize("dialect", dialect_params("sqlite", "postgresql"), indirect=True)
def test_a_failed_upgrade_leaves_nothing_behind(engine: sa.Engine, tmp_path: Path) -> None:
    """Where DDL is transactional the whole run is one transaction (MariaDB: see Safety)."""
    config = alembic_config(connection=None)
    config.set_main_option(
        "script_location", str(script_with_extra_revision(tmp_path, FAILING_REVISION))
    )
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        with pytest.raises(RuntimeError, match="on purpose"):
            command.upgrade(config, "heads")
    assert sa.inspect(engine).get_table_names() == []


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
def test_sqlite_migration_that_breaks_a_foreign_key_is_rolled_back(
    engine: sa.Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    config = alembic_config()
    config.set_main_option(
        "script_location", str(script_with_extra_revision(tmp_path, ORPHAN_REVISION))
    )
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        with pytest.raises(ForeignKeyViolation, match="scenes rowid 1 -> missing projects"):
            command.upgrade(config, "heads")
    assert current_revision(engine) == HEAD
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM scenes").scalar() == 0
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
def test_sqlite_foreign_key_check_runs_only_after_row_changes(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """The check reads every row it checks: additive upgrades skip it; row changes check the
    tables they changed (each batch rebuild of vidpipe_0006 before its commit mid-run, the
    orphan's table at the end), never the whole database."""
    checks: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if "foreign_key_check" in statement:
            checks.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    upgrade(engine, "vidpipe_0001")
    upgrade(engine, "vidpipe_0005")  # additive; vidpipe_0006 rebuilds tables on SQLite
    assert checks == []

    config = alembic_config()
    config.set_main_option(
        "script_location", str(script_with_extra_revision(tmp_path, ORPHAN_REVISION))
    )
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        with pytest.raises(ForeignKeyViolation):
            command.upgrade(config, "heads")
    assert checks[-1] == 'PRAGMA foreign_key_check("scenes")'
    assert "PRAGMA foreign_key_check" not in checks


def test_an_engine_like_object_handed_in_is_migrated_never_the_default_database(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-alembic hands in a wrapped connection that is neither Engine nor Connection."""

    class EngineLike:
        @contextmanager
        def connect(self) -> Iterator[sa.Connection]:
            with engine.connect() as connection:
                yield connection

    monkeypatch.chdir(tmp_path)
    command.upgrade(alembic_config(connection=EngineLike()), "head")
    assert current_revision(engine) == HEAD
    assert not (tmp_path / "vidpipe.db").exists()
