"""Connections for a migration run that stay correct behind a transaction-mode pooler.

PgBouncer in ``pool_mode = transaction`` hands each transaction of a client to whichever server
connection is free, and (before 1.21, or without ``max_prepared_statements``) passes
protocol-level prepared statements through unchanged. A statement a driver prepared in one
transaction then either does not exist on the next transaction's server connection, or collides
with a statement of the same name that another client left there:

- psycopg 3 prepares a query after ``prepare_threshold`` (5) executions on one connection, so
  a run that repeats a query (the retried lock statement, say) would break; the engines made
  here set ``prepare_threshold=None``, and a psycopg connection handed in runs the migration
  with it too, then gets its own value back.
- asyncpg prepares every statement, under names (``__asyncpg_stmt_1__``) that repeat across
  clients; the engines made here name them uniquely and cache none, as SQLAlchemy's asyncpg
  notes recommend. An async engine handed in must be made the same way (docs/postgresql.md).

Everything else a run does is pooler-safe by construction: the migration lock is held by the
run's one transaction (vidpipe.db.runner.locking) and the timeouts are ``SET LOCAL``.
The driver arguments themselves live with the dialect (vidpipe.db.dialects.postgresql).
"""

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from vidpipe.db.dialects import dialect_for
from vidpipe.db.engine import create_async_engine, create_engine, resolve_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "migration_async_engine",
    "migration_engine",
    "pooler_safe_connect_args",
]


def pooler_safe_connect_args(url: str | URL | None) -> dict[str, Any]:
    """The driver arguments that keep ``url``'s driver off named prepared statements."""
    resolved = resolve_url(url)
    return dialect_for(resolved.get_backend_name()).connect_args(resolved)


def migration_engine(url: str | URL | None) -> sa.Engine:
    """A one-connection engine for one run (NullPool: nothing stays open afterwards)."""
    return create_engine(url, poolclass=NullPool, connect_args=pooler_safe_connect_args(url))


def migration_async_engine(url: str | URL | None) -> "AsyncEngine":
    """The asyncio twin of ``migration_engine``."""
    return create_async_engine(
        url, poolclass=NullPool, connect_args=pooler_safe_connect_args(url)
    )
