"""Behind PgBouncer: replicas that start together through a transaction-mode pooler (and a
session-mode one, and directly) all succeed, migrate once and leave no lock behind."""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.concurrent_upgrade import PROCESSES, upgrade_together
from tests.support.databases import dialect_params
from tests.support.pgbouncer import ROUTES, route
from tests.support.postgresql_locks import advisory_locks
from tests.support.revisions import HEAD
from vidpipe.db import (
    VERSION_TABLE,
    MigrationSettingError,
    create_engine,
    current_revision,
    upgrade,
)
from vidpipe.db.models import Base
from vidpipe.db.runner.environment import BOOKKEEPING_TABLES
from vidpipe.db.runner.pooler import pooler_safe_connect_args

pytestmark = pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)



@pytest.fixture(params=ROUTES)
def route_url(
    request: pytest.FixtureRequest, database_url: sa.URL, tmp_path: Path
) -> Iterator[sa.URL]:
    with route(request.param, database_url, tmp_path / "pgbouncer") as url:
        yield url


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_eight_replicas_upgrade_through_the_route(
    route_url: sa.URL, database_url: sa.URL, driver: str
) -> None:
    route_url = route_url.set(drivername=f"postgresql+{driver}")
    assert upgrade_together(route_url) == [0] * PROCESSES
    assert advisory_locks(database_url) == []
    engine = create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = list(connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars())
        assert rows == [HEAD]
        assert Counter(sa.inspect(engine).get_table_names()) == Counter(
            [*Base.metadata.tables, *BOOKKEEPING_TABLES]
        )
    finally:
        engine.dispose()
    # The start-up check of replicas at head (the fast path) through the same route.
    assert upgrade_together(route_url) == [0] * PROCESSES
    assert advisory_locks(database_url) == []


def test_a_connection_handed_in_inside_a_transaction_is_migrated_in_it(
    route_url: sa.URL, database_url: sa.URL
) -> None:
    """The lock belongs to the caller's transaction and goes with its commit, on any route."""
    # As the README tells a host to make its engine for a transaction-mode PgBouncer.
    engine = create_engine(
        route_url, poolclass=sa.pool.NullPool, connect_args=pooler_safe_connect_args(route_url)
    )
    try:
        with engine.begin() as connection:
            upgrade(connection)
            assert current_revision(connection) == HEAD
            assert [mode for _, mode, _ in advisory_locks(database_url)] == ["ExclusiveLock"]
        assert advisory_locks(database_url) == []
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_an_autocommit_connection_is_refused_rather_than_migrated_without_the_lock(
    database_url: sa.URL,
) -> None:
    """In AUTOCOMMIT mode a transaction-level lock would end with the statement that took it."""
    engine = create_engine(database_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(MigrationSettingError, match="AUTOCOMMIT"):
            upgrade(engine)
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
