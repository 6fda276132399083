"""PostgreSQL, the production database: what vidpipe does differently there, and why.

- The migration lock is a transaction advisory lock (``pg_advisory_xact_lock`` on
  :data:`LOCK_KEY`), taken by the run's own transaction (vidpipe commits it, or the caller
  does if it handed in a connection already inside a transaction). A session lock was
  rejected: behind a transaction-mode pooler (PgBouncer) it stays on whichever server
  connection took it, so the unlock misses it, other runs wait for a lock nobody holds, and a
  run that lands on that server connection is granted it again and migrates at the same time.
  The wait is cut into slices of at most :data:`WAIT_SLICE` seconds, each its own transaction,
  so a waiter behind a transaction pooler frees its server connection between slices. The
  run's transaction is READ COMMITTED, so it sees what the previous holder committed.
- A run that must commit mid-way on a table that holds rows (to build an index CONCURRENTLY,
  or to end a table's lock with its changes) first calls :func:`hold_across_commits`: a second
  connection takes :data:`HANDOVER_KEY` in a transaction that touches no table and keeps it
  until the run ends. A run that gets the main lock checks that the handover key is free (in
  one statement that takes and drops it) and otherwise lets go and sleeps out its slice outside
  any transaction, so that behind a transaction pooler it keeps no server connection from the
  run, which needs one for each of its transactions. Idle in READ COMMITTED with no snapshot,
  the holder is not waited for by a concurrent build. Only such a run uses a second server
  connection.
- The handover connection can die while the run goes on (``pg_terminate_backend``, a pooler or
  network fault); a run that took the lock after that would migrate beside this one. So the
  lock's transactions (the run's and the holder's) ``SET LOCAL`` the server's idle and
  statement timeouts off (local: a pooled server connection keeps none of it); each of the
  run's transactions after a mid-run commit takes the main lock again
  (:func:`resume_after_commit`), so a run that starts meanwhile waits for that transaction;
  and before each of them, and before each statement of an autocommit stretch
  (:func:`confirm_lock_held`), the run checks that its holder still holds the handover key, and
  stops with :class:`~vidpipe.db.errors.MigrationLockLost` if not: the next run finishes the
  work, as after a crash. What the lost run is still doing (one statement, a concurrent index
  build say) is waited for by the next run, not undone.
- A run is one transaction, and every lock its DDL takes lasts until it ends. Two things must
  not wait that long on a table that holds rows: a ``CREATE INDEX CONCURRENTLY``, which cannot
  run inside a transaction block at all, and the lock an ``ALTER TABLE`` takes on a table the
  application writes (vidpipe.db.runner.table_locks). So there the run commits mid-way
  (:meth:`PostgreSQL.commit_mid_run`, :meth:`PostgreSQL.outside_the_run_transaction`): the
  lock passes to the handover connection first, the revisions finished so far are recorded
  with the commit, and the next transaction begins by confirming the lock and taking the main
  lock again, with the run's timeouts set again (they are ``SET LOCAL`` and end with the
  commit). Only on a table that holds rows: a new database keeps its whole run in one
  transaction, so a failure leaves nothing behind. Only a run whose lock outlives its commits:
  not a connection handed in inside a transaction (its caller owns the commit). A run that dies
  between two of its commits leaves the revision it was in unrecorded with part of its work
  committed; the next run runs that revision again from its start, and revisions are
  idempotent.
- After each table's changes the run commits if its transaction holds a lock that stops writes
  (``ACCESS EXCLUSIVE``, ``SHARE ROW EXCLUSIVE``...: :meth:`PostgreSQL.tables_blocking_writes`)
  on a table with rows, so writers wait for that table's changes only. A foreign key added to
  such a table is ``NOT VALID`` (only rows written from then on are checked) and validated
  after the commit: ``VALIDATE CONSTRAINT`` reads the rows under ``SHARE UPDATE EXCLUSIVE``,
  which lets writes through. A run that dies in between leaves the key ``NOT VALID``; the next
  one validates the keys its revision declares (:meth:`PostgreSQL.validate_foreign_keys`).
- A plain ``CREATE INDEX`` holds a SHARE lock on its table until the run's transaction ends:
  every write to the table waits for the whole build and the rest of the run. So an index on a
  table that holds rows is built with ``CREATE INDEX CONCURRENTLY`` outside the run's
  transaction (:meth:`PostgreSQL.build_index`), under the session's own timeouts: its waits
  are for older transactions to finish, which delay the build but block no writer. An empty
  table, and a connection handed in inside a transaction, keep the plain build. A concurrent
  build that failed or was cancelled leaves an index marked invalid (``pg_index.indisvalid``)
  that PostgreSQL maintains but never uses; the next run drops it (``DROP INDEX
  CONCURRENTLY``) and builds it again, unless another server process is still building it (a
  run that lost its lock goes on with that one statement): that build is waited for
  (``pg_stat_progress_create_index``, visible to the same role, a superuser or
  ``pg_read_all_stats``). Offline (``--sql``) the script is for an empty database: the plain
  build, after a ``squawk-ignore`` comment for ``require-concurrent-index-creation`` that says
  why, so the linter keeps that rule for every other ``CREATE INDEX``.
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
- A save sends its statements after the look-up (UPDATE, DELETEs, INSERTs) in one round trip
  with psycopg's pipeline mode (:meth:`PostgreSQL.statements_together`), which SQLAlchemy does
  not offer.
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.compiler import DDLCompiler, SQLCompiler

from vidpipe.db.dialects.base import (
    ANOTHER_SAVE_WON,
    Blocker,
    Dialect,
    Execute,
    ForeignKey,
    LockWait,
    holds_rows,
    pause,
)
from vidpipe.db.errors import MigrationLockLost, MigrationSettingError, UnconvertibleValue

__all__ = [
    "HANDOVER_KEY",
    "LOCK_KEY",
    "MAY_COMMIT_MID_RUN",
    "SQUAWK_IGNORE_PLAIN_BUILD",
    "WAIT_SLICE",
    "PostgreSQL",
    "confirm_lock_held",
    "hold_across_commits",
    "resume_after_commit",
    "sqlstate",
]

logger = logging.getLogger(__name__)

#: SQLSTATE lock_not_available (lock_timeout fired) and deadlock_detected.
_LOCK_WAITS = ("55P03", "40P01")
#: A transaction that lost to a concurrent one: serialization failure (REPEATABLE READ,
#: SERIALIZABLE) and deadlock.
_LOST_RACE = ("40001", "40P01")
_UNIQUE_VIOLATION = "23505"


#: The PostgreSQL advisory lock key: the ASCII bytes of "vidpipe1" read as a bigint. Advisory
#: locks are per database, so one key serves every vidpipe database on a server.
LOCK_KEY = int.from_bytes(b"vidpipe1", "big")
_LOCK_NOT_AVAILABLE = "55P03"
#: The longest one PostgreSQL lock wait keeps a (pooled) server connection (see ``_hold``).
WAIT_SLICE = 1.0
#: In ``Connection.info`` while the connection's own run holds the PostgreSQL migration lock in a
#: transaction vidpipe commits: the run may then commit mid-way (``commit_mid_run``)
#: after :func:`hold_across_commits`. Its value is the :class:`_Handover` that holds the
#: handover key, once there is one.
MAY_COMMIT_MID_RUN = "vidpipe.may_commit_mid_run"
#: The second advisory key ("vidpipe2"): held by a run that committed mid-way until it ends.
HANDOVER_KEY = int.from_bytes(b"vidpipe2", "big")
#: Whether the server process ``pid`` holds the handover key: pg_locks shows a bigint advisory
#: key as its high and low 32 bits (``objsubid`` 1). Read by the run itself, it needs no
#: privilege, and unlike the holder's own connection it cannot be the thing that died.
_HANDOVER_HELD_BY = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = :pid AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid) "
    "AND objsubid = 1 AND database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database()))"
).bindparams(high=HANDOVER_KEY >> 32, low=HANDOVER_KEY & 0xFFFFFFFF)
#: The server's timeouts that would end the lock's transactions: the holder idles in its
#: transaction for the whole run, and the run's own transaction idles between statements.
#: Set LOCAL, off, in each of them (``idle_session_timeout`` counts outside transactions only).
#: The run's timeouts (``run_timeouts``), set again in its next transaction after a commit.
_RUN_SETTINGS = ("lock_timeout", "statement_timeout")
_LOCK_TRANSACTION_TIMEOUTS_OFF = (
    "SET LOCAL idle_in_transaction_session_timeout = 0",
    "SET LOCAL statement_timeout = 0",
)


#: The table locks that make INSERT, UPDATE or DELETE (ROW EXCLUSIVE) wait.
_BLOCKING_WRITES = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
#: The run's own tables (of its schema, not the catalog's) that it holds such a lock on.
_LOCKED_TABLES = sa.text(
    "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted "
    "AND c.relkind IN ('r', 'p') AND c.relnamespace = to_regnamespace(current_schema()) "
    "AND l.mode = ANY(CAST(:modes AS text[]))"
)


#: The server process (other than this one) building the index named ``:name``, if any.
_BUILDER = sa.text(
    "SELECT pid FROM pg_stat_progress_create_index "
    "WHERE index_relid = to_regclass(:name) AND pid <> pg_backend_pid()"
)

#: What the offline script puts before each plain index build
#: (tests/migrations/test_squawk.py).
SQUAWK_IGNORE_PLAIN_BUILD = (
    "-- Written for an empty table; online, vidpipe builds CONCURRENTLY on a table with rows.\n"
    # squawk applies an ignore comment to the statement right below it.
    "-- squawk-ignore require-concurrent-index-creation\n"
)



@dataclass(frozen=True)
class _Handover:
    """The connection that holds the handover key for a run, and its server process."""

    holder: sa.Connection
    pid: int


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

    def without_prepared_statements(
        self, connection: sa.Connection
    ) -> AbstractContextManager[None]:
        return _without_prepared_statements(connection)

    def migration_lock(
        self, connection: sa.Connection, wait: LockWait
    ) -> AbstractContextManager[None]:
        return _migration_lock(connection, wait)

    def can_commit_mid_run(self, bind: sa.Connection) -> bool:
        return MAY_COMMIT_MID_RUN in bind.info

    def commit_mid_run(self, bind: sa.Connection) -> None:
        _commit_mid_run(bind)

    def outside_the_run_transaction(self, bind: sa.Connection) -> AbstractContextManager[None]:
        return _outside_the_run_transaction(bind)

    def tables_blocking_writes(self, bind: sa.Connection) -> list[str]:
        modes = {"modes": list(_BLOCKING_WRITES)}
        return list(bind.execute(_LOCKED_TABLES, modes).scalars())

    def validate_foreign_keys(
        self, bind: sa.Connection, execute: Execute, table_name: str, declared: set[ForeignKey]
    ) -> None:
        # VALIDATE CONSTRAINT reads the rows under SHARE UPDATE EXCLUSIVE, which lets writes
        # through. Only keys the revision declares: an unvalidated key somebody else added is
        # left as it is.
        unvalidated = set(
            bind.execute(
                sa.text(
                    "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:table) "
                    "AND contype = 'f' AND NOT convalidated"
                ),
                {"table": table_name},
            ).scalars()
        )
        if not unvalidated:
            return
        quote = bind.dialect.identifier_preparer.quote
        for fk in sa.inspect(bind).get_foreign_keys(table_name):
            name, key = fk["name"], (tuple(fk["constrained_columns"]), fk["referred_table"])
            if name in unvalidated and key in declared:
                execute(f"ALTER TABLE {quote(table_name)} VALIDATE CONSTRAINT {quote(str(name))}")

    def build_index(
        self,
        bind: sa.Connection | None,
        execute: Execute,
        index: sa.Index,
        table_name: str,
        check: Callable[[], None] | None = None,
    ) -> None:
        if bind is None:
            execute(_PlainBuildForAnEmptyTable(index))
            return
        if not _builds_concurrently(bind, table_name):
            super().build_index(bind, execute, index, table_name, check)
            return
        with _outside_the_run_transaction(bind):
            if check is not None:
                check()
                confirm_lock_held(bind)  # the check may have read for long
            index.dialect_options["postgresql"]["concurrently"] = True
            try:
                execute(CreateIndex(index))
            finally:
                index.dialect_options["postgresql"]["concurrently"] = False

    def drop_invalid_index(
        self, bind: sa.Connection | None, execute: Execute, name: str, table_name: str
    ) -> bool:
        # A build of it still running elsewhere is waited for first; if it succeeds, nothing
        # is dropped.
        if bind is None or not _invalid(bind, name):
            return False
        quoted = bind.dialect.identifier_preparer.quote(name)
        if _builds_concurrently(bind, table_name):
            with _outside_the_run_transaction(bind):
                _wait_for_a_build_elsewhere(bind, name)
                if not _invalid(bind, name):
                    return False
                confirm_lock_held(bind)
                execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")
        else:
            _wait_for_a_build_elsewhere(bind, name)
            if not _invalid(bind, name):
                return False
            execute(f"DROP INDEX IF EXISTS {quoted}")
        return True

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

    @contextmanager
    def statements_together(self, connection: sa.Connection) -> Iterator[None]:
        """psycopg's pipeline mode queues the block's statements and waits once, at its end:
        the round trip each statement would otherwise wait for cost a single save more than its
        rows did. A database error then surfaces at a later statement of the block (which
        SQLAlchemy's message names) or at its end, where it is raised as SQLAlchemy raises a
        statement's error (``IntegrityError``, ``OperationalError``, ...); the statements
        queued after the failing one are not run. Other drivers (asyncpg, psycopg's async
        connection) send each statement as it comes, and the block works the same."""
        dbapi = connection.dialect.loaded_dbapi
        driver_connection = connection.connection.driver_connection
        if (
            connection.dialect.driver != "psycopg"
            or driver_connection is None
            or not dbapi.Pipeline.is_supported()
        ):
            yield
            return
        try:
            with driver_connection.pipeline():
                yield
        except dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(
                None, None, exc, dbapi.Error, dialect=connection.dialect
            ) from exc

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


@contextmanager
def _without_prepared_statements(connection: sa.Connection) -> Iterator[None]:
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


@contextmanager
def _migration_lock(connection: sa.Connection, wait: LockWait) -> Iterator[None]:
    if getattr(connection.connection.dbapi_connection, "autocommit", False):
        # Each statement would be its own transaction: the lock would end with the statement
        # that took it, and the run would neither be exclusive nor atomic.
        raise MigrationSettingError(
            "vidpipe migrates PostgreSQL in one transaction that holds the migration lock, and "
            "this connection is in AUTOCOMMIT mode, where no transaction spans two statements. "
            "Nothing was changed. Hand in a connection or engine without "
            "isolation_level='AUTOCOMMIT'."
        )
    what = f"PostgreSQL advisory lock {LOCK_KEY}"
    if MAY_COMMIT_MID_RUN in connection.info:
        # A run nested in a block that already holds the lock for this connection (advisory
        # locks are re-entrant for their session).
        yield
        return
    if connection.in_transaction():
        # The caller's transaction holds the lock; its commit or rollback releases it. Its
        # timeouts are the caller's: if one ends it, the run's work goes with it.
        _hold(connection, wait, what)
        yield
        return
    _hold(connection, wait, what)
    _timeouts_off(connection)
    connection.info[MAY_COMMIT_MID_RUN] = None
    try:
        yield
    except BaseException:
        with suppress(sa.exc.DBAPIError):
            connection.rollback()
        raise
    else:
        connection.commit()
    finally:
        handover = connection.info.pop(MAY_COMMIT_MID_RUN)
        if handover is not None:
            # After the run's commit: the next run must find the revision this one recorded.
            with suppress(sa.exc.DBAPIError):
                handover.holder.rollback()
            handover.holder.close()


def _timeouts_off(connection: sa.Connection) -> None:
    for statement in _LOCK_TRANSACTION_TIMEOUTS_OFF:
        connection.exec_driver_sql(statement)


@contextmanager
def _holder_connection(connection: sa.Connection) -> Iterator[sa.Connection]:
    holder = connection.engine.connect()
    try:
        with _without_prepared_statements(holder):
            yield holder
    except BaseException:
        holder.close()
        raise


def hold_across_commits(connection: sa.Connection) -> None:
    """Keep the migration lock of ``connection``'s run held after its transaction commits.

    For the rest of the run a second connection holds the handover key in a transaction that
    touches no table; a run that gets the main lock meanwhile finds the handover key taken and
    lets go again (``_take_slice``). Raises if the run's lock lives in a caller's transaction:
    vidpipe cannot commit that one (see :data:`MAY_COMMIT_MID_RUN`).
    """
    if MAY_COMMIT_MID_RUN not in connection.info:
        raise RuntimeError("this connection's migration lock does not survive its commit")
    if connection.info[MAY_COMMIT_MID_RUN] is not None:
        return
    with _holder_connection(connection) as holder:
        holder.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        # Free: only the holder of the main lock (this run) ever takes it.
        pid = holder.execute(
            sa.text("SELECT pg_backend_pid() FROM pg_advisory_xact_lock(:key)"),
            {"key": HANDOVER_KEY},
        ).scalar_one()
        # The driver's unnamed portal of that statement keeps its snapshot
        # (pg_stat_activity.backend_xmin) until another statement replaces it, and CREATE INDEX
        # CONCURRENTLY would wait for that snapshot until the run ends: utility statements,
        # which take none, replace it.
        _timeouts_off(holder)
        connection.info[MAY_COMMIT_MID_RUN] = _Handover(holder, pid)


def confirm_lock_held(connection: sa.Connection) -> None:
    """Raise :class:`MigrationLockLost` unless the handover key of ``connection``'s run is still
    held by its holder (after :func:`hold_across_commits`; one round trip)."""
    handover = connection.info[MAY_COMMIT_MID_RUN]
    if not connection.execute(_HANDOVER_HELD_BY, {"pid": handover.pid}).scalar():
        raise MigrationLockLost(
            "vidpipe lost its migration lock on PostgreSQL mid-run: the connection that kept it "
            f"across the run's commits (server process {handover.pid}) is gone, ended by "
            "pg_terminate_backend, a pooler or network fault, or a server timeout, so another "
            "run may be migrating now. This run stopped before its next statement; what it "
            "committed stays and the revision it was in is not recorded. Run the upgrade again "
            "(or let the next replica start): it finishes the work, as after a crash."
        )


def resume_after_commit(connection: sa.Connection) -> None:
    """Begin the run's next transaction after a mid-run commit: confirm the run still holds
    its lock and take the main lock again in this transaction, so that a run that took the
    lock after the holder died waits for this transaction to end instead of migrating beside
    it (and this run stops at its next resume). Then the lock's timeouts go off again.

    The main lock is held by other runs only for a slice's check (``_take_slice``): it is
    waited for in slices, checking the holder between them.
    """
    confirm_lock_held(connection)
    statement = "SELECT pg_advisory_xact_lock(:key)"
    while not _wait_for_advisory_lock(connection, WAIT_SLICE, statement, LOCK_KEY):
        confirm_lock_held(connection)
    # The holder may have died while this transaction waited and another run migrated.
    confirm_lock_held(connection)
    _timeouts_off(connection)


def _hold(connection: sa.Connection, wait: LockWait, what: str) -> None:
    """Take the lock in ``connection``'s transaction, waiting up to ``timeout`` seconds.

    The wait is cut into slices of at most :data:`WAIT_SLICE`, each its own transaction (or,
    in a caller's transaction, its own savepoint): a waiter behind a transaction-mode pooler
    then frees its server connection between slices.
    """
    if _take_slice(connection, 0):
        return
    deadline = time.monotonic() + wait.timeout
    with wait.logged(what):
        while (remaining := deadline - time.monotonic()) > 0:
            if _take_slice(connection, min(WAIT_SLICE, remaining)):
                return
        raise wait.timed_out(what)


def _take_slice(connection: sa.Connection, seconds: float) -> bool:
    """Try ``pg_advisory_xact_lock`` for ``seconds`` (0: only if free) in ``connection``'s
    transaction, then check that the handover key is free (a run that committed mid-way holds
    it until it ends); if either fails, let go of the main lock again.

    While a run that committed mid-way goes on, the main lock is free and only the handover key
    is taken. A waiter that finds it so lets go of the main lock (the run takes it again in each
    of its transactions: ``resume_after_commit``) and sleeps out its slice: outside any
    transaction, so that behind a transaction-mode pooler it keeps no server connection from
    that run, which needs one again for each of its transactions; in a caller's transaction,
    which cannot be left, it rolls back to a savepoint, which releases a lock taken after it.

    The run's transaction is READ COMMITTED, so statements after the wait see what the previous
    holder committed.
    """
    external = connection.in_transaction()
    if not external:
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    attempt = connection.begin_nested() if external else None
    if seconds <= 0:
        got_main = bool(
            connection.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
            ).scalar()
        )
    else:
        got_main = _wait_for_advisory_lock(
            connection, seconds, "SELECT pg_advisory_xact_lock(:key)", LOCK_KEY
        )
    got = got_main and bool(
        # One statement takes and drops it: pooler-safe although it is session-level.
        connection.execute(
            sa.text(
                "SELECT CASE WHEN pg_try_advisory_lock_shared(:key) "
                "THEN pg_advisory_unlock_shared(:key) ELSE false END"
            ),
            {"key": HANDOVER_KEY},
        ).scalar()
    )
    if got:
        if attempt is not None:
            attempt.commit()  # the caller's transaction keeps the lock
        return True
    if attempt is not None:
        attempt.rollback()
    else:
        connection.rollback()
    if got_main and seconds > 0:
        pause(connection, seconds)
    return False


def _commit_mid_run(bind: sa.Connection) -> None:
    """Commit the run's transaction, keeping the migration lock, and begin the next one with
    the lock confirmed and the run's timeouts."""
    settings = _run_settings(bind)
    hold_across_commits(bind)
    bind.commit()
    _resume(bind, settings)


@contextmanager
def _outside_the_run_transaction(bind: sa.Connection) -> Iterator[None]:
    """Commit the run's transaction, run the block in autocommit, then begin a new one with
    the lock confirmed and the run's timeouts set again.

    Alembic's ``autocommit_block`` does the same for a transaction Alembic began; the run's
    transaction is begun by the migration lock (:func:`_migration_lock`), so this commits it
    itself.
    """
    settings = _run_settings(bind)
    hold_across_commits(bind)
    bind.commit()
    level = bind.get_isolation_level()
    bind.execution_options(isolation_level="AUTOCOMMIT")
    try:
        # SQLAlchemy keeps its own transaction bookkeeping in AUTOCOMMIT; this block ends it.
        with bind.begin():
            # The holder may have died during the transaction just committed.
            confirm_lock_held(bind)
            yield
    finally:
        bind.execution_options(isolation_level=level)
    _resume(bind, settings)


def _run_settings(bind: sa.Connection) -> dict[str, str | None]:
    return {
        name: bind.exec_driver_sql(f"SELECT current_setting('{name}')").scalar()
        for name in _RUN_SETTINGS
    }


def _resume(bind: sa.Connection, settings: dict[str, str | None]) -> None:
    resume_after_commit(bind)
    for name, value in settings.items():
        bind.execute(
            sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
        )


def _builds_concurrently(bind: sa.Connection, table_name: str) -> bool:
    """A run whose lock outlives its commits, and a table with rows."""
    return MAY_COMMIT_MID_RUN in bind.info and holds_rows(bind, table_name)


def _invalid(bind: sa.Connection, name: str) -> bool:
    """Whether the index ``name`` exists and is marked invalid."""
    valid = bind.execute(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
        {"name": name},
    ).scalar()
    return valid is False


def _wait_for_a_build_elsewhere(bind: sa.Connection, name: str) -> None:
    """Return once no other server process is building the index ``name``."""
    builder = bind.execute(_BUILDER, {"name": name}).scalar()
    if builder is None:
        return
    logger.info(
        "Waiting for the build of index %s by another server process (%d) to end: an earlier "
        "run, which lost vidpipe's migration lock, is still running it",
        name,
        builder,
    )
    while bind.execute(_BUILDER, {"name": name}).scalar() is not None:
        pause(bind, WAIT_SLICE)
    logger.info("The build of index %s by server process %d ended", name, builder)


def _wait_for_advisory_lock(
    connection: sa.Connection, seconds: float, statement: str, key: int
) -> bool:
    """Run the waiting ``statement`` (on advisory ``key``) under a ``lock_timeout`` of
    ``seconds``; False if it timed out (a savepoint keeps the transaction usable)."""
    previous = connection.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar()
    connection.execute(
        sa.text("SELECT set_config('lock_timeout', :ms, true)"),
        {"ms": f"{max(1, int(seconds * 1000))}"},
    )
    try:
        with connection.begin_nested():
            connection.execute(sa.text(statement), {"key": key})
    except sa.exc.DBAPIError as exc:
        if sqlstate(exc) != _LOCK_NOT_AVAILABLE:
            raise
        return False
    connection.execute(
        sa.text("SELECT set_config('lock_timeout', :previous, true)"), {"previous": previous}
    )
    return True


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


class _PlainBuildForAnEmptyTable(CreateIndex):
    """The offline script's ``CREATE INDEX``, preceded by :data:`SQUAWK_IGNORE_PLAIN_BUILD`: a
    construct, not a string, so that what reads a revision's statements
    (vidpipe.db.runner.revision_kinds) sees an index build."""

    inherit_cache = False


@compiles(_PlainBuildForAnEmptyTable, "postgresql")
def _with_squawk_ignore(
    element: _PlainBuildForAnEmptyTable, compiler: DDLCompiler, **kw: Any
) -> str:
    plain: str = compiler.visit_create_index(element, **kw)  # type: ignore[no-untyped-call]
    return SQUAWK_IGNORE_PLAIN_BUILD + plain
