"""PostgreSQL, the production database: what vidpipe does differently there, and why.

- Behind a transaction-mode pooler (PgBouncer) each transaction may run on another server
  connection, where a statement the driver prepared before does not exist or belongs to another
  client. So the engines vidpipe makes set psycopg's ``prepare_threshold=None`` and give asyncpg
  unique statement names and no statement cache (:meth:`PostgreSQL.connect_args`), and a psycopg
  connection handed in runs the migration with ``prepare_threshold=None``
  (:meth:`PostgreSQL.without_prepared_statements`), then gets its own value back.
- A run's transaction carries ``SET LOCAL lock_timeout`` (``ddl_lock_timeout``, 5 s) and
  ``statement_timeout`` (15 min): a DDL statement queued behind an application's transaction
  gives up instead of queueing every later query behind itself, and a host's connection keeps
  its own settings afterwards.
- Adopting an older database, a column's type changes in place with ``USING col::type``, so
  the ``json`` an older vidpipe left becomes ``jsonb`` keeping its values; a value holding the
  escape ``\\u0000``, which ``jsonb`` cannot store, is named by row before anything changes
  (:class:`~vidpipe.db.errors.UnconvertibleValue`).
- A statement that gave up waiting for a lock (SQLSTATE 55P03, ``lock_timeout``) or lost a
  deadlock (40P01) makes vidpipe.db.runner.lock_retry try the run again; ``pg_locks`` and
  ``pg_stat_activity`` name the sessions holding the table, for the warning and for
  :class:`~vidpipe.db.errors.DDLLockTimeout`.
- A downgrade that drops data is counted first (vidpipe.db.runner.data_loss), with the
  application's writers held off by ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` on the tables
  that lose data, in the migration's transaction: the lock lasts until the DDL commits.
- A tag look-up (vidpipe.db.store.lookups) is ``tags @> jsonb_build_array(TAG)``, which the GIN
  indexes of ``vidpipe_0003`` answer; JSONB compares decoded strings, so the match is exact.
- A save that lost to a concurrent one (a serialization failure under REPEATABLE READ or
  SERIALIZABLE, a deadlock, a unique violation) is told that another save won
  (vidpipe.db.store.explain).
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL
from sqlalchemy.sql.compiler import SQLCompiler

from vidpipe.db.dialects.base import ANOTHER_SAVE_WON, Blocker, Dialect
from vidpipe.db.errors import UnconvertibleValue

__all__ = ["PostgreSQL", "sqlstate"]

#: SQLSTATE lock_not_available (lock_timeout fired) and deadlock_detected.
_LOCK_WAITS = ("55P03", "40P01")
#: A transaction that lost to a concurrent one: serialization failure (REPEATABLE READ,
#: SERIALIZABLE) and deadlock.
_LOST_RACE = ("40001", "40P01")
_UNIQUE_VIOLATION = "23505"


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

    def check_conversion(
        self, connection: sa.Connection, table: sa.Table, column: str, new_type: Any
    ) -> None:
        if isinstance(new_type, sa.JSON):  # JSONB here: vidpipe.db.types.JSONDocument
            _refuse_nul_escapes(connection, table, column)

    def type_change_options(
        self, connection: sa.Connection, column: sa.Column[Any]
    ) -> dict[str, Any]:
        # Reinterpret the stored text (json, text) as the new type, not refuse it.
        quoted = connection.dialect.identifier_preparer.quote(column.name)
        spelled = column.type.compile(dialect=connection.dialect)
        return {"postgresql_using": f"{quoted}::{spelled}"}

    def run_timeouts(self, lock_timeout: str, statement_timeout: str) -> list[str]:
        # SET LOCAL: local to the migration transaction, so a host's connection keeps its own
        # settings, and pooler-safe.
        return [
            f"SET LOCAL lock_timeout = '{lock_timeout}'",
            f"SET LOCAL statement_timeout = '{statement_timeout}'",
        ]

    def tags_contain(
        self,
        column: sa.ColumnElement[Any],
        tag: sa.BindParameter[str],
        compiler: SQLCompiler,
        **kw: Any,
    ) -> str:
        # jsonb @> '["TAG"]': the operator the GIN index (jsonb_path_ops) answers. JSONB
        # compares decoded strings, so any character matches itself.
        array = sa.func.jsonb_build_array(sa.cast(tag, sa.Text()))
        return compiler.process(sa.type_coerce(column, JSONB).op("@>")(array), **kw)

    def is_duplicate_key(self, exc: sa.exc.DBAPIError) -> bool:
        return sqlstate(exc) == _UNIQUE_VIOLATION

    def lost_race(self, exc: sa.exc.DBAPIError) -> str | None:
        # A row changed after a REPEATABLE READ or SERIALIZABLE snapshot cannot be locked.
        return ANOTHER_SAVE_WON if sqlstate(exc) in _LOST_RACE else None

    def is_lock_wait(self, exc: sa.exc.DBAPIError) -> bool:
        return sqlstate(exc) in _LOCK_WAITS

    def blockers(
        self, connection: sa.Connection, tables: list[str]
    ) -> tuple[str | None, list[Blocker]]:
        first = tables[0] if tables else None
        if not tables:
            return first, []
        try:
            if connection.in_transaction():
                connection.rollback()  # the failed attempt's, if the run left it open
            rows = connection.execute(
                sa.text(
                    "SELECT DISTINCT c.relname, a.pid, a.state, a.query FROM pg_locks l "
                    "JOIN pg_class c ON c.oid = l.relation "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.relation IN "
                    "(SELECT to_regclass(name) FROM unnest(CAST(:tables AS text[])) AS name) "
                    "AND l.granted AND l.pid <> pg_backend_pid() ORDER BY a.pid"
                ),
                {"tables": tables},
            ).all()
            connection.rollback()
        except sa.exc.DBAPIError:
            return first, []  # only for the message: the lock wait is the error that matters
        if not rows:
            return first, []
        held = {row[0] for row in rows}
        table = next(name for name in tables if name in held)
        return table, [
            (pid, state or "", query or "") for name, pid, state, query in rows if name == table
        ]

    @contextmanager
    def hold_writers_off(
        self, connection: sa.Connection, losing: list[str], every_table: list[str]
    ) -> Iterator[None]:
        # In the migration's transaction, so the lock lasts until the DDL commits. It waits for
        # the transactions already writing there (under the run's lock_timeout), whose rows are
        # then counted; later writers wait, then find the table gone: an error, never a loss.
        if losing:
            quote = connection.dialect.identifier_preparer.quote
            connection.exec_driver_sql(
                f"LOCK TABLE {', '.join(map(quote, losing))} IN ACCESS EXCLUSIVE MODE"
            )
        yield  # the lock ends with the migration's transaction


def sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    """The SQLSTATE of a driver error (psycopg and asyncpg name it differently)."""
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def _refuse_nul_escapes(bind: sa.Connection, table: sa.Table, name: str) -> None:
    """Raise before ``json`` becomes ``jsonb`` if a row holds ``\\u0000``, which jsonb refuses.

    PostgreSQL would fail the whole conversion with only "unsupported Unicode escape sequence";
    this names the rows instead (by key, never by value: a row may hold credentials). The text
    search finds candidates cheaply, a cast of each one in a savepoint confirms it (an escaped
    backslash followed by ``u0000`` is harmless).
    """
    quote = bind.dialect.identifier_preparer.quote
    key = [column.name for column in table.primary_key.columns]
    column = quote(name)
    candidates = bind.execute(
        sa.text(
            f"SELECT {', '.join(map(quote, key))} FROM {quote(table.name)} "
            f"WHERE strpos({column}::text, '\\u0000') > 0"
        )
    ).all()
    refused = []
    for row in candidates:
        where = " AND ".join(f"{quote(k)} = :k{i}" for i, k in enumerate(key))
        values = {f"k{i}": value for i, value in enumerate(row)}
        try:
            with bind.begin_nested():
                bind.execute(
                    sa.text(f"SELECT {column}::jsonb FROM {quote(table.name)} WHERE {where}"),
                    values,
                )
        except sa.exc.DataError:
            refused.append(", ".join(f"{k} {v}" for k, v in zip(key, row, strict=True)))
    if refused:
        raise UnconvertibleValue(
            f"{table.name}.{name} cannot become jsonb: {len(refused)} row(s) hold the JSON "
            f"escape \\u0000 (a NUL character), which PostgreSQL's jsonb cannot store: "
            f"{'; '.join(refused)}. Nothing was changed. Remove the NUL from those values, "
            "then upgrade again.",
            table=table.name,
            column=name,
            rows=refused,
        )


def _unique_statement_name() -> str:
    return f"__vidpipe_{uuid.uuid4().hex}__"
