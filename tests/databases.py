"""Throw-away databases on each dialect: one fresh database per test, dropped afterwards.

Server URLs come from the environment so CI and developers can point elsewhere; the defaults
are the services on the test machines.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

SERVER_URLS = {
    "postgresql": os.environ.get(
        "VIDPIPE_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get(
        "VIDPIPE_TEST_MARIADB_URL", "mariadb+pymysql://root@127.0.0.1:3306/test"
    ),
}
DIALECTS = ("sqlite", "postgresql", "mariadb")
#: Async drivers for each dialect, swapped into a sync URL by :func:`as_async`.
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "mariadb": "mariadb+aiomysql",
}


#: pg_locks rows of the connection's own database only: tests run in parallel (pytest-xdist),
#: and another test's migration lock must not count as this one's.
IN_THIS_POSTGRESQL_DATABASE = (
    "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def dialect_params(*names: str) -> list:
    """``pytest.param`` per dialect (all by default), each carrying its dialect's marker."""
    return [
        pytest.param(name, marks=getattr(pytest.mark, name), id=name) for name in names or DIALECTS
    ]


@cache
def server_unreachable(dialect: str) -> str | None:
    """None if the dialect's server answers, else why not."""
    if dialect == "sqlite":
        return None
    engine = sa.create_engine(SERVER_URLS[dialect], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as exc:
        return f"{dialect} at {engine.url.render_as_string(hide_password=True)}: {exc}"
    finally:
        engine.dispose()
    return None


@contextmanager
def fresh_database(dialect: str, directory: Path) -> Iterator[sa.URL]:
    """Create an empty database, yield its sync URL, drop it afterwards."""
    if dialect == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        yield sa.make_url(f"sqlite:///{directory / 'vidpipe-test.db'}")
        return
    name = f"vidpipe_test_{uuid.uuid4().hex[:12]}"
    server = sa.make_url(SERVER_URLS[dialect])
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield server.set(database=name)
        finally:
            with admin.connect() as connection:
                if dialect == "postgresql":
                    connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                else:
                    connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.dispose()


def as_async(url: sa.URL, dialect: str) -> sa.URL:
    """The same database through the dialect's asyncio driver."""
    return url.set(drivername=ASYNC_DRIVERS[dialect])
