"""SQLite, the embedded default: what vidpipe does differently there, and why.

- Every connection of an engine vidpipe makes (or hands to :func:`vidpipe.db.engine.
  configure_sqlite`) gets ``foreign_keys=ON`` (SQLite's default is off), WAL (readers go on
  while a writer commits), a 30 s ``busy_timeout`` (pysqlite's own is 5 s) and a real
  ``BEGIN``: the driver's transaction handling never begins before DDL, so without it a failed
  migration would leave half its tables behind. A read-only URL (``mode=ro``) gets the
  per-connection settings only, since WAL is written into the file.
- A downgrade that drops data is counted first (vidpipe.db.runner.data_loss); no writer can
  add a row before the DROP, since the migration holds the database's write lock throughout.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from vidpipe.db.dialects.base import Dialect

__all__ = [
    "SQLITE_BEGIN_STATEMENT",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLite",
    "sqlite_pragma",
    "uses_real_sqlite_transactions",
]

#: How long a SQLite connection waits for another writer before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: ``Connection.info`` key: the statement that opens the connection's next transaction on SQLite
#: (the migration lock sets "BEGIN IMMEDIATE"); absent means a plain deferred "BEGIN".
SQLITE_BEGIN_STATEMENT = "vidpipe.sqlite_begin_statement"


class SQLite(Dialect):
    """SQLite through sqlite3 or aiosqlite."""

    __dialect__ = "sqlite"

    def configure_engine(self, engine: sa.Engine) -> None:
        if event.contains(engine, "begin", _on_begin):
            return
        read_only = engine.url.query.get("mode") == "ro"
        event.listen(engine, "connect", _on_read_only_connect if read_only else _on_connect)
        event.listen(engine, "begin", _on_begin)

    @contextmanager
    def hold_writers_off(
        self, connection: sa.Connection, losing: list[str], every_table: list[str]
    ) -> Iterator[None]:
        # The migration lock is the database's write lock (BEGIN IMMEDIATE), held from before
        # the count to the commit: no writer gets in between.
        yield


def uses_real_sqlite_transactions(engine: sa.Engine) -> bool:
    """Whether ``engine`` was configured by :meth:`SQLite.configure_engine` (DDL is
    transactional)."""
    return event.contains(engine, "begin", _on_begin)


def sqlite_pragma(dbapi_connection: Any, statement: str) -> Any:
    """Run a PRAGMA on the raw driver connection (no SQLAlchemy autobegin) and return its value."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        row = cursor.fetchone()
        return row[0] if row else None
    finally:
        cursor.close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    _on_read_only_connect(dbapi_connection, _record)
    # WAL lets readers go on while a writer commits; in-memory databases keep "memory". It is
    # written into the file, so a read-only connection (above) leaves it out.
    sqlite_pragma(dbapi_connection, "PRAGMA journal_mode=WAL")


def _on_read_only_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection settings only: nothing here changes the file."""
    dbapi_connection.isolation_level = None
    sqlite_pragma(dbapi_connection, "PRAGMA foreign_keys=ON")
    sqlite_pragma(dbapi_connection, f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _on_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql(connection.info.get(SQLITE_BEGIN_STATEMENT, "BEGIN"))
