"""A deploy during traffic: a migration statement queued behind an application's transaction
times out (ddl_lock_timeout), and the run is tried again until that transaction ends, or gives
up after ddl_retries with an error naming the statement, its table and the blocker."""

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from tests.support.cli import alembic
from tests.support.databases import as_async, dialect_params
from tests.support.pgbouncer import route
from tests.support.revisions import HEAD
from vidpipe.db import DDLLockTimeout, MigrationSettingError, current_revision, upgrade
from vidpipe.db.migrate import alembic_config
from vidpipe.db.runner.lock_retry import logger as retry_logger
from vidpipe.db.runner.pooler import migration_async_engine, migration_engine

POSTGRESQL = pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)
#: The dialects whose DDL waits for table locks under a timeout vidpipe sets (not SQLite).
SERVERS = pytest.mark.parametrize("dialect", dialect_params("postgresql", "mariadb"), indirect=True)

#: The revision before the first one that alters scenes (vidpipe_0004 adds scenes.key_details).
BEFORE_SCENES_CHANGE = "vidpipe_0003"
#: Fast settings for the tests: a short wait per try and a short back-off.
FAST = {"ddl_lock_timeout": "100ms", "ddl_retry_delay": 0.05}


class Retries(logging.Handler):
    """Collects the retry warnings and signals the first one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.first = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.first.set()


@pytest.fixture
def retries() -> Iterator[Retries]:
    handler = Retries()
    retry_logger.addHandler(handler)
    yield handler
    retry_logger.removeHandler(handler)


@pytest.fixture
def application(engine: sa.Engine) -> Iterator[sa.Connection]:
    """An application transaction that locked rows of scenes and stays open (a slow request)."""
    upgrade(engine, BEFORE_SCENES_CHANGE)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT id FROM scenes FOR UPDATE").all()
        yield connection
        if connection.in_transaction():
            connection.rollback()


def scenes_columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns("scenes")}


def migrate(url: sa.URL, **settings: object) -> None:
    """``alembic upgrade head`` through ``url`` (sync or asyncio driver) with these settings."""

    def upgrade_head(connection: sa.Connection) -> None:
        command.upgrade(alembic_config(connection=connection, **settings), "head")

    if url.get_dialect().is_async:
        asyncio.run(_migrate_async(url, upgrade_head))
        return
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            upgrade_head(connection)
    finally:
        engine.dispose()


async def _migrate_async(url: sa.URL, upgrade_head: Callable[[sa.Connection], None]) -> None:
    engine = migration_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(upgrade_head)
    finally:
        await engine.dispose()


def deploy_during_traffic(
    engine: sa.Engine, url: sa.URL, application: sa.Connection, retries: Retries
) -> None:
    """Upgrade through ``url`` while ``application`` holds scenes until the first retry."""

    def end_the_request_after_the_first_retry() -> None:
        retries.first.wait(timeout=120)
        application.rollback()

    releaser = threading.Thread(target=end_the_request_after_the_first_retry, daemon=True)
    releaser.start()
    migrate(url, ddl_retries=50, **FAST)
    releaser.join(timeout=120)

    assert current_revision(engine) == HEAD
    assert "key_details" in scenes_columns(engine)
    assert retries.messages
    assert all("ALTER TABLE scenes" in message for message in retries.messages)


@SERVERS
def test_a_deploy_during_traffic_succeeds_once_the_blocker_ends(
    engine: sa.Engine, database_url: sa.URL, application: sa.Connection, retries: Retries
) -> None:
    deploy_during_traffic(engine, database_url, application, retries)


@POSTGRESQL
def test_an_asyncio_deploy_during_traffic_succeeds_once_the_blocker_ends(
    engine: sa.Engine, database_url: sa.URL, application: sa.Connection, retries: Retries
) -> None:
    deploy_during_traffic(engine, as_async(database_url, "postgresql"), application, retries)


@POSTGRESQL
def test_a_deploy_during_traffic_through_a_transaction_pooler(
    engine: sa.Engine,
    database_url: sa.URL,
    application: sa.Connection,
    retries: Retries,
    tmp_path: Path,
) -> None:
    with route("transaction", database_url, tmp_path / "pgbouncer") as url:
        deploy_during_traffic(engine, url, application, retries)


@SERVERS
def test_a_blocker_that_never_ends_makes_the_run_give_up_after_n_tries(
    engine: sa.Engine,
    database_url: sa.URL,
    application: sa.Connection,
    retries: Retries,
    dialect: str,
) -> None:
    with pytest.raises(DDLLockTimeout) as raised:
        migrate(database_url, ddl_retries=2, **FAST)

    error = raised.value
    assert error.attempts == 3
    assert len(retries.messages) == 2
    assert error.table == "scenes"
    assert error.statement.startswith("ALTER TABLE scenes")
    if dialect == "postgresql":
        blocker = application.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        assert [pid for pid, _, _ in error.blockers] == [blocker]
        assert f"pid {blocker} (idle in transaction" in str(error)
    # Rolled back: nothing of the run is left.
    assert current_revision(engine) == BEFORE_SCENES_CHANGE
    assert "key_details" not in scenes_columns(engine)


@POSTGRESQL
def test_the_command_line_sets_the_retries_and_logs_each(
    database_url: sa.URL, application: sa.Connection, tmp_path: Path
) -> None:
    url = database_url.render_as_string(hide_password=False)
    result = alembic(
        *("-x", "ddl_retries=1", "-x", "ddl_retry_delay=0", "-x", "ddl_lock_timeout=100ms"),
        *("upgrade", "head"),
        cwd=tmp_path,
        url=url,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "WARNI [vidpipe.db.runner.lock_retry]" in output  # alembic.ini: %(levelname)-5.5s
    assert "retry 1 of 1" in output
    assert "FAILED: The migration gave up after 2 attempt(s)" in output
    assert "Traceback" not in output


@POSTGRESQL
def test_a_callers_transaction_is_not_retried(
    engine: sa.Engine, application: sa.Connection, retries: Retries
) -> None:
    """The timed-out statement aborted the caller's transaction: vidpipe cannot replay it."""
    with (
        engine.connect() as connection,
        connection.begin(),
        pytest.raises(DDLLockTimeout) as raised,
    ):
        command.upgrade(alembic_config(connection=connection, ddl_retries=5, **FAST), "head")
    assert raised.value.attempts == 1
    assert retries.messages == []


@POSTGRESQL
@pytest.mark.parametrize(
    ("setting", "value"),
    [("ddl_retries", "-1"), ("ddl_retries", "many"), ("ddl_retry_delay", "-2"), ("ddl_retry_delay", "1h")],
)
def test_a_bad_retry_setting_is_refused_before_any_change(
    engine: sa.Engine, setting: str, value: str
) -> None:
    with engine.connect() as connection, pytest.raises(MigrationSettingError, match=setting):
        command.upgrade(alembic_config(connection=connection, **{setting: value}), "head")
    assert sa.inspect(engine).get_table_names() == []
