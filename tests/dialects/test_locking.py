"""One migration run at a time: replicas that start together all succeed, and the schema and
version table come out exactly once; a run that waits for the lock logs its wait; a run that
cannot get the lock stops with a clear error."""

import logging
import multiprocessing
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.cli import alembic
from tests.support.concurrent_upgrade import (
    PROCESSES,
    take_lock_logging_to,
    upgrade_and_report_ddl,
    upgrade_together,
)
from tests.support.databases import IN_THIS_POSTGRESQL_DATABASE, dialect_params
from tests.support.revisions import HEAD
from vidpipe.db import VERSION_TABLE, MigrationLockTimeout, upgrade
from vidpipe.db.dialects import mariadb, postgresql
from vidpipe.db.dialects.sqlite_commits import lock_file_path
from vidpipe.db.models import Base
from vidpipe.db.runner.environment import BOOKKEEPING_TABLES
from vidpipe.db.runner.locking import migration_lock


def version_rows(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars()
        )


@pytest.mark.parametrize("start", ["base", "vidpipe_0001"])
def test_eight_processes_upgrade_one_database_at_once(
    engine: sa.Engine, database_url: sa.URL, start: str
) -> None:
    if start != "base":
        upgrade(engine, start)
    assert upgrade_together(database_url) == [0] * PROCESSES
    assert version_rows(engine) == [HEAD]
    tables = Counter(sa.inspect(engine).get_table_names())
    assert tables == Counter([*Base.metadata.tables, *BOOKKEEPING_TABLES])


def wait_until_blocked(engine: sa.Engine, dialect: str) -> None:
    """Return once another session waits for the migration lock (SQLite cannot tell: sleep)."""
    queries = {
        "postgresql": "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        f"AND NOT granted AND {IN_THIS_POSTGRESQL_DATABASE}",
        "mariadb": "SELECT count(*) FROM information_schema.processlist "
        "WHERE state = 'User lock' AND db = DATABASE()",
    }
    if dialect == "sqlite":
        time.sleep(1.0)
        return
    deadline = time.monotonic() + 30
    with engine.connect() as connection:
        while not connection.exec_driver_sql(queries[dialect]).scalar():
            assert time.monotonic() < deadline, "the waiting process never reached the lock"
            time.sleep(0.05)
            connection.rollback()


def test_a_run_that_waited_for_the_lock_sees_what_the_holder_did(
    engine: sa.Engine, database_url: sa.URL, dialect: str
) -> None:
    """The revision is read after the lock is taken: a run that waited while another migrated
    finds head and sends no DDL (had it read before, it would apply both revisions again)."""
    waiter_sees_what_the_holder_did(engine, database_url, dialect, None)


@pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)
def test_a_repeatable_read_engine_that_waited_sees_what_the_holder_did(
    engine: sa.Engine, database_url: sa.URL, dialect: str
) -> None:
    """On PostgreSQL the lock is taken inside the run's transaction: a REPEATABLE READ snapshot
    taken by the waiting lock statement would hide the holder's work, so the run is READ
    COMMITTED whatever the engine's level."""
    waiter_sees_what_the_holder_did(engine, database_url, dialect, "REPEATABLE READ")


def waiter_sees_what_the_holder_did(
    engine: sa.Engine, database_url: sa.URL, dialect: str, isolation_level: str | None
) -> None:
    # spawn, not fork: the holder's SQLite connection is open, and SQLite's lock bookkeeping
    # must not be inherited by a child process.
    context = multiprocessing.get_context("spawn")
    report = context.Queue()
    waiter = context.Process(
        target=upgrade_and_report_ddl,
        args=(database_url.render_as_string(hide_password=False), report, isolation_level),
        daemon=True,
    )
    try:
        with engine.connect() as holder, migration_lock(holder, timeout=30):
            waiter.start()
            assert report.get(timeout=60) == "started"
            wait_until_blocked(engine, dialect)
            upgrade(holder)  # the holder migrates while the waiter waits
            assert waiter.is_alive()
        assert report.get(timeout=60) == []
        waiter.join(timeout=30)
        assert waiter.exitcode == 0
    finally:
        if waiter.is_alive():
            waiter.kill()
    assert version_rows(engine) == [HEAD]


def lock_name(database_url: sa.URL) -> str:
    """How the log names the lock a run waits for on this database."""
    return {
        "postgresql": f"PostgreSQL advisory lock {postgresql.LOCK_KEY}",
        "mariadb": f"GET_LOCK('{mariadb.LOCK_PREFIX}{database_url.database}')",
        # Other runs wait for the lock file; the run then waits for the write lock.
        "sqlite": f"migration lock file {lock_file_path(str(database_url.database))}",
    }[database_url.get_backend_name()]


def test_a_run_waiting_for_the_lock_logs_the_start_progress_and_end_of_its_wait(
    engine: sa.Engine, database_url: sa.URL, caplog: pytest.LogCaptureFixture
) -> None:
    """The waiter is a process of its own, reporting progress every 0.05 s instead of 30 s; the
    holder lets go once the waiter has said it is still waiting."""
    caplog.set_level(logging.INFO, logger="vidpipe")
    context = multiprocessing.get_context("spawn")
    records = context.Queue()
    waiter = context.Process(
        target=take_lock_logging_to,
        args=(database_url.render_as_string(hide_password=False), records, 0.05),
        daemon=True,
    )
    received: list[logging.LogRecord] = []
    try:
        with engine.connect() as holder, migration_lock(holder, timeout=30):
            waiter.start()
            while not (received and received[-1].getMessage().startswith("Still waiting")):
                received.append(records.get(timeout=60))
        while (item := records.get(timeout=60)) != "released":
            received.append(item)
        waiter.join(timeout=30)
        assert waiter.exitcode == 0
    finally:
        if waiter.is_alive():
            waiter.kill()

    lock = lock_name(database_url)
    messages = [record.getMessage() for record in received]
    assert {record.name for record in received} == {"vidpipe.db.runner.locking"}
    assert messages[0].startswith(f"Waiting up to 60 s for vidpipe's migration lock ({lock}): ")
    assert len(messages) >= 3
    for progress in messages[1:-1]:
        assert progress.startswith(f"Still waiting for vidpipe's migration lock ({lock}): ")
    assert messages[-1].startswith(f"Got vidpipe's migration lock ({lock}) after waiting ")
    # The holder got the lock at once: nothing to report.
    assert [r for r in caplog.records if r.name.startswith("vidpipe")] == []


def test_a_run_that_cannot_get_the_lock_stops_with_a_clear_error(
    engine: sa.Engine, database_url: sa.URL, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = database_url.render_as_string(hide_password=False)
    lock = lock_name(database_url)
    with engine.connect() as holder, migration_lock(holder, timeout=30):
        started = time.monotonic()
        with (
            caplog.at_level(logging.INFO, logger="vidpipe"),
            pytest.raises(MigrationLockTimeout, match=r"for more than 0\.5 s") as raised,
        ):
            upgrade(url, lock_timeout=0.5)
        assert 0.4 < time.monotonic() - started < 10
        assert "lock_timeout" in str(raised.value)
        logged = [r.getMessage() for r in caplog.records if r.name == "vidpipe.db.runner.locking"]
        assert logged[0].startswith(f"Waiting up to 0.5 s for vidpipe's migration lock ({lock})")
        assert logged[-1].startswith(f"Gave up waiting for vidpipe's migration lock ({lock})")

        # alembic.ini shows vidpipe's INFO lines, as it does Alembic's.
        result = alembic("-x", "lock_timeout=0.5", "upgrade", "head", cwd=tmp_path, url=url)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert (
            "INFO  [vidpipe.db.runner.locking] Waiting up to 0.5 s for vidpipe's migration lock" in output
        )
        assert "[vidpipe.db.runner.locking] Gave up waiting for vidpipe's migration lock" in output
        assert "FAILED: Another process has held vidpipe's migration lock" in output
        assert "Traceback" not in output
    assert sa.inspect(engine).get_table_names() == []
    upgrade(url, lock_timeout=0.5)  # free again once the holder is gone
    assert version_rows(engine) == [HEAD]
