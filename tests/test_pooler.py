"""Behind PgBouncer: replicas that start together through a transaction-mode pooler (and a
session-mode one, and directly) all succeed, migrate once and leave no lock behind."""

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.concurrent_upgrade import upgrade_after_barrier
from tests.conftest import REQUIRE_ALL_DIALECTS
from tests.databases import dialect_params
from tests.pgbouncer import pgbouncer, pgbouncer_executable
from tests.revisions import HEAD
from vidpipe.db import VERSION_TABLE, create_engine
from vidpipe.db.models import Base

pytestmark = pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)

PROCESSES = 8


@pytest.fixture(params=["transaction", "session", "direct"])
def route(request: pytest.FixtureRequest, database_url: sa.URL, tmp_path: Path) -> Iterator[sa.URL]:
    """The test database's URL through a PgBouncer in the given pool mode, or direct."""
    if request.param == "direct":
        yield database_url
        return
    if pgbouncer_executable() is None:
        reason = "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
        if REQUIRE_ALL_DIALECTS:
            pytest.fail(reason)
        pytest.skip(reason)
    with pgbouncer(database_url, request.param, tmp_path / "pgbouncer") as url:
        yield url


def upgrade_together(url: sa.URL) -> list[int | None]:
    """Upgrade from PROCESSES processes released at once; return their exit codes."""
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(PROCESSES)
    rendered = url.render_as_string(hide_password=False)
    processes = [
        fork.Process(target=upgrade_after_barrier, args=(rendered, barrier), daemon=True)
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


def advisory_locks(database_url: sa.URL) -> list[tuple]:
    """Advisory locks held or awaited in the test database, asked of the server directly."""
    engine = create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(
                connection.exec_driver_sql(
                    "SELECT pid, mode, granted FROM pg_locks WHERE locktype = 'advisory' "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
    finally:
        engine.dispose()


def test_eight_replicas_upgrade_through_the_route(route: sa.URL, database_url: sa.URL) -> None:
    assert upgrade_together(route) == [0] * PROCESSES
    assert advisory_locks(database_url) == []
    engine = create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = list(connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars())
        assert rows == [HEAD]
        assert Counter(sa.inspect(engine).get_table_names()) == Counter(
            [*Base.metadata.tables, VERSION_TABLE]
        )
    finally:
        engine.dispose()
    # The start-up check of replicas at head (the fast path) through the same route.
    assert upgrade_together(route) == [0] * PROCESSES
    assert advisory_locks(database_url) == []
