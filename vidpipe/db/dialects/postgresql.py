"""PostgreSQL, the production database: what vidpipe does differently there, and why.

- Behind a transaction-mode pooler (PgBouncer) each transaction may run on another server
  connection, where a statement the driver prepared before does not exist or belongs to another
  client. So the engines vidpipe makes set psycopg's ``prepare_threshold=None`` and give asyncpg
  unique statement names and no statement cache (:meth:`PostgreSQL.connect_args`), and a psycopg
  connection handed in runs the migration with ``prepare_threshold=None``
  (:meth:`PostgreSQL.without_prepared_statements`), then gets its own value back.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from vidpipe.db.dialects.base import Dialect

__all__ = ["PostgreSQL"]


class PostgreSQL(Dialect):
    """PostgreSQL through psycopg 3 or asyncpg."""

    __dialect__ = "postgresql"

    def connect_args(self, url: URL) -> dict[str, Any]:
        driver = url.get_driver_name()
        if driver == "psycopg":
            return {"prepare_threshold": None}
        if driver == "asyncpg":
            # asyncpg prepares every statement, under names that repeat across clients
            # (__asyncpg_stmt_1__): SQLAlchemy's asyncpg notes recommend unique names, no cache.
            return {
                "prepared_statement_name_func": _unique_statement_name,
                "prepared_statement_cache_size": 0,
                "statement_cache_size": 0,
            }
        return {}

    @contextmanager
    def without_prepared_statements(self, connection: sa.Connection) -> Iterator[None]:
        # psycopg prepares a query after prepare_threshold (5) executions on one connection: a
        # run that repeats one (the retried lock statement, say) would break behind a pooler.
        driver_connection = connection.connection.driver_connection
        if connection.dialect.driver != "psycopg" or driver_connection is None:
            yield
            return
        previous = driver_connection.prepare_threshold
        driver_connection.prepare_threshold = None
        try:
            yield
        finally:
            driver_connection.prepare_threshold = previous


def _unique_statement_name() -> str:
    return f"__vidpipe_{uuid.uuid4().hex}__"
