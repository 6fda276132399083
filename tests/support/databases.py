"""Throw-away databases on each dialect: one fresh database per test, dropped afterwards.

Server URLs come from the environment so CI and developers can point elsewhere; the defaults
are the services on the test machines.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

from vidpipe.db import create_engine, upgrade

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
def fresh_database(
    dialect: str, directory: Path, *, template: sa.URL | None = None
) -> Iterator[sa.URL]:
    """Create a database, empty or a copy of ``template``'s; yield its URL; drop it afterwards."""
    if dialect == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        url = sa.make_url(f"sqlite:///{directory / 'vidpipe-test.db'}")
        if template is not None:
            shutil.copyfile(str(template.database), str(url.database))
        yield url
        return
    url = _create_database(dialect, f"vidpipe_test_{uuid.uuid4().hex[:12]}", template)
    try:
        yield url
    finally:
        _drop_database(dialect, str(url.database))


@contextmanager
def _admin(dialect: str) -> Iterator[sa.Engine]:
    """An engine on the dialect's server, outside any transaction (CREATE/DROP DATABASE)."""
    admin = sa.create_engine(
        SERVER_URLS[dialect], isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    try:
        yield admin
    finally:
        admin.dispose()


def _create_database(dialect: str, name: str, template: sa.URL | None = None) -> sa.URL:
    with _admin(dialect) as admin, admin.connect() as connection:
        if dialect == "postgresql" and template is not None:
            connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {template.database}")
        else:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        if dialect == "mariadb" and template is not None:
            _copy_tables(connection, str(template.database), name)
    return sa.make_url(SERVER_URLS[dialect]).set(database=name)


def _copy_tables(connection: sa.Connection, source: str, target: str) -> None:
    """MariaDB has no template databases: each table's own CREATE TABLE, then its rows."""
    tables = connection.exec_driver_sql(
        f"SHOW FULL TABLES FROM {source} WHERE Table_type = 'BASE TABLE'"
    ).scalars()
    connection.exec_driver_sql(f"USE {target}")
    connection.exec_driver_sql("SET foreign_key_checks = 0")  # tables come in name order
    for table in list(tables):
        create = connection.exec_driver_sql(f"SHOW CREATE TABLE {source}.{table}").one()[1]
        connection.exec_driver_sql(create)
        connection.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {source}.{table}")


def _drop_database(dialect: str, name: str) -> None:
    force = " WITH (FORCE)" if dialect == "postgresql" else ""
    with _admin(dialect) as admin, admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")


def url_text(url: sa.URL) -> str:
    """The URL as a command line or ``$VIDPIPE_DATABASE_URL`` takes it, password included."""
    return url.render_as_string(hide_password=False)


def as_async(url: sa.URL, dialect: str) -> sa.URL:
    """The same database through the dialect's asyncio driver."""
    return url.set(drivername=ASYNC_DRIVERS[dialect])


class HeadTemplates:
    """A database per dialect that ``upgrade`` built once per test process, to copy from.

    For tests of what is stored, not of how the schema is built (those run the revisions
    themselves): a copy costs a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
    PostgreSQL and replaying ``SHOW CREATE TABLE`` on MariaDB, where an upgrade costs seconds of
    DDL. The copy is of the real upgrade's result, version row included.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._urls: dict[str, sa.URL] = {}
        self._server_databases: list[tuple[str, str]] = []

    def url(self, dialect: str) -> sa.URL:
        """The dialect's template, upgraded to head on first use."""
        if dialect not in self._urls:
            if dialect == "sqlite":
                url = sa.make_url(f"sqlite:///{self._directory / 'head.db'}")
            else:
                url = _create_database(dialect, f"vidpipe_head_{uuid.uuid4().hex[:12]}")
                self._server_databases.append((dialect, str(url.database)))
            engine = create_engine(url, poolclass=sa.pool.NullPool)
            try:
                upgrade(engine)
            finally:
                engine.dispose()  # PostgreSQL copies only a template nobody is connected to
            self._urls[dialect] = url
        return self._urls[dialect]

    @contextmanager
    def engine(self, dialect: str) -> Iterator[sa.Engine]:
        """An engine on the dialect's template, to read the schema ``upgrade`` builds."""
        engine = create_engine(self.url(dialect), poolclass=sa.pool.NullPool)
        try:
            yield engine
        finally:
            engine.dispose()

    def drop(self) -> None:
        for dialect, name in self._server_databases:
            _drop_database(dialect, name)
