"""The migration API as a new user meets it: every run setting as a keyword, an async twin for
every function, and errors that name the real cause and the fix."""

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from tests.support.databases import as_async, dialect_params
from tests.support.revisions import HEAD
from vidpipe.db import (
    DatabaseFileError,
    DatabaseURLError,
    MigrationSettingError,
    UnknownRevisionError,
    VidpipeDatabaseError,
    check_async,
    create_async_engine,
    current_revision,
    current_revision_async,
    downgrade,
    downgrade_async,
    stamp,
    stamp_async,
    upgrade,
    upgrade_async,
)
from vidpipe.db.runner.settings import RunSettings, run_options

SERVERS = pytest.mark.parametrize("dialect", dialect_params("postgresql", "mariadb"), indirect=True)

#: Each function that runs revisions, called with only its settings, sync and async alike.
RUNNING: dict[str, Callable[..., Any]] = {
    "upgrade": lambda url, **settings: upgrade(url, **settings),
    "downgrade": lambda url, **settings: downgrade(url, "base", **settings),
    "stamp": lambda url, **settings: stamp(url, "base", **settings),
    "upgrade_async": lambda url, **settings: asyncio.run(upgrade_async(url, **settings)),
    "downgrade_async": lambda url, **settings: asyncio.run(downgrade_async(url, "base", **settings)),
    "stamp_async": lambda url, **settings: asyncio.run(stamp_async(url, "base", **settings)),
}
#: A value no setting of each kind accepts.
UNWORKABLE = {"SECONDS": "soon", "DURATION": "5 s; DROP TABLE projects", "N": "many", None: "sure"}


def test_the_options_are_the_fields_of_run_settings() -> None:
    """Derived, not listed: every field but the URL and env.py's logging switch."""
    fields = set(RunSettings.__dataclass_fields__) - {"url", "url_source", "configure_logger"}
    assert {option.name for option in run_options()} == fields


@pytest.mark.parametrize("function", sorted(RUNNING))
@pytest.mark.parametrize("option", run_options(), ids=lambda option: option.name)
def test_every_function_refuses_a_bad_value_of_every_setting_before_connecting(
    function: str, option: Any, tmp_path: Path
) -> None:
    path = tmp_path / "never.db"
    url = f"sqlite{'+aiosqlite' if function.endswith('_async') else ''}:///{path}"
    with pytest.raises(MigrationSettingError, match=option.name):
        RUNNING[function](url, **{option.name: UNWORKABLE[option.metavar]})
    assert not path.exists()


@pytest.mark.parametrize("function", sorted(RUNNING))
def test_an_unknown_setting_is_refused_naming_the_known_ones(function: str, tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    url = f"sqlite{'+aiosqlite' if function.endswith('_async') else ''}:///{path}"
    with pytest.raises(MigrationSettingError) as raised:
        RUNNING[function](url, ddl_lock_timout="1s")
    message = str(raised.value)
    assert "'ddl_lock_timout'" in message
    for option in run_options():
        assert option.name in message
    assert not path.exists()


@SERVERS
def test_the_readmes_advice_for_heavy_traffic_works_from_the_api(
    dialect: str, engine: sa.Engine
) -> None:
    """``upgrade(url, ddl_lock_timeout="1s")`` reaches the run: the statements that set it."""
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    upgrade(engine, ddl_lock_timeout="1s", statement_timeout="2min", ddl_retries=1)
    assert current_revision(engine) == HEAD
    expected = (
        ["SET LOCAL lock_timeout = '1s'", "SET LOCAL statement_timeout = '2min'"]
        if dialect == "postgresql"
        else ["SET SESSION lock_wait_timeout = 1"]
    )
    for statement in expected:
        assert statement in statements


def test_the_async_twins_do_what_the_sync_functions_do(dialect: str, database_url: sa.URL) -> None:
    async def run() -> None:
        engine = create_async_engine(as_async(database_url, dialect), poolclass=NullPool)
        try:
            assert await current_revision_async(engine) is None
            await upgrade_async(engine, "vidpipe_0002", ddl_retries=0)
            assert await current_revision_async(engine) == "vidpipe_0002"
            with pytest.raises(CommandError, match="not up to date"):
                await check_async(engine)  # Alembic's check, run for real
            await upgrade_async(engine)
            await check_async(engine)
            await stamp_async(engine, "vidpipe_0005", purge=True)
            assert await current_revision_async(engine) == "vidpipe_0005"
            await stamp_async(engine, HEAD, purge=True)
            async with engine.connect() as connection:
                await downgrade_async(connection, "vidpipe_0004", lock_timeout=30)
                assert await current_revision_async(connection) == "vidpipe_0004"
        finally:
            await engine.dispose()

    asyncio.run(run())
    assert current_revision(database_url) == "vidpipe_0004"


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
def test_a_sync_function_given_an_async_engine_names_its_async_twin(
    dialect: str, database_url: sa.URL
) -> None:
    async def run() -> None:
        engine = create_async_engine(as_async(database_url, dialect), poolclass=NullPool)
        try:
            with pytest.raises(VidpipeDatabaseError, match=r"await current_revision_async\(\)"):
                current_revision(engine)
            with pytest.raises(VidpipeDatabaseError, match=r"call upgrade\(\) with it"):
                await upgrade_async(create_sync_engine(database_url))
        finally:
            await engine.dispose()

    asyncio.run(run())


def create_sync_engine(url: sa.URL) -> sa.Engine:
    return sa.create_engine(url, poolclass=NullPool)


@pytest.mark.parametrize(
    ("call", "twin"),
    [
        ("upgrade(URL)", "upgrade_async"),
        ("downgrade(URL, 'base')", "downgrade_async"),
        ("stamp(URL, 'base')", "stamp_async"),
        ("current_revision(URL)", "current_revision_async"),
        ("check(URL)", "check_async"),
    ],
)
def test_a_sync_call_inside_a_running_event_loop_names_the_async_function(
    call: str, twin: str, tmp_path: Path
) -> None:
    """As in a FastAPI lifespan: a vidpipe error, and no coroutine left unawaited (warnings are
    errors in that process, so a "never awaited" RuntimeWarning would show on stderr)."""
    (tmp_path / "x.db").touch()  # current and check refuse a missing file first
    code = f"""
import asyncio, gc
from vidpipe.db import *
URL = "sqlite+aiosqlite:///x.db"
async def lifespan():
    try:
        {call}
    except VidpipeDatabaseError as error:
        print(error)
asyncio.run(lifespan())
gc.collect()
"""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "inside a running event loop" in result.stdout
    assert f"await {twin}(...)" in result.stdout
    assert (tmp_path / "x.db").stat().st_size == 0


def test_the_async_api_given_a_sync_url_says_it_is_not_an_async_url(tmp_path: Path) -> None:
    with pytest.raises(DatabaseURLError) as raised:
        asyncio.run(upgrade_async(f"sqlite:///{tmp_path / 'x.db'}"))
    assert "sqlite:// is not an async URL" in str(raised.value)
    assert "sqlite+aiosqlite://" in str(raised.value)
    assert "No driver" not in str(raised.value)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://user@localhost/vidpipe", "did you mean postgresql://?"),
        ("postgresql+nosuchdriver://localhost/db", "no driver 'nosuchdriver' for postgresql"),
    ],
)
def test_a_wrong_scheme_or_driver_is_named(url: str, expected: str) -> None:
    with pytest.raises(DatabaseURLError, match=expected):
        upgrade(url)


def test_a_sqlite_file_in_a_missing_directory_names_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "vidpipe.db"
    with pytest.raises(DatabaseFileError) as raised:
        upgrade(f"sqlite:///{path}")
    assert f"SQLite cannot open the database file {path}" in str(raised.value)
    assert f"its directory {path.parent} does not exist" in str(raised.value)


def test_a_mistyped_revision_gets_a_suggestion_before_anything_connects(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    with pytest.raises(UnknownRevisionError, match=r"no revision 'vidpipe_0O04'\. Did you mean vidpipe_0004\?"):
        upgrade(f"sqlite:///{path}", "vidpipe_0O04")
    with pytest.raises(UnknownRevisionError, match="vidpipe-db history"):
        downgrade(f"sqlite:///{path}", "vidpipe_9")
    assert not path.exists()


def test_upgrade_to_a_revision_the_database_is_past_is_refused(engine: sa.Engine) -> None:
    upgrade(engine)
    with pytest.raises(VidpipeDatabaseError) as raised:
        upgrade(engine, "vidpipe_0004")
    assert f"The database is at {HEAD}, past vidpipe_0004: upgrade never goes down" in str(
        raised.value
    )
    assert "vidpipe-db downgrade vidpipe_0004" in str(raised.value)
    assert current_revision(engine) == HEAD
    upgrade(engine, HEAD)  # the revision it is at: nothing to do, nothing refused


def test_a_fresh_upgrade_logs_no_repairs(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Building an empty database changes no user's data: vidpipe logs nothing at INFO."""
    caplog.set_level(logging.INFO, logger="vidpipe")
    upgrade(engine)
    assert [record.getMessage() for record in caplog.records if record.name.startswith("vidpipe")] == []
