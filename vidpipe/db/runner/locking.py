"""One migration run at a time per database, across processes and machines.

Several replicas of a backend often start together and each runs the upgrade. Each run takes
the database's own lock before Alembic reads the version table, so the second run waits, then
reads the revision the first one left and has nothing to do:

- PostgreSQL: a transaction advisory lock (``pg_advisory_xact_lock``), taken by the run's own
  transaction (vidpipe commits it, or the caller does if it handed in a connection already
  inside a transaction). A session lock was rejected: behind a transaction-mode pooler
  (PgBouncer) it stays on whichever server connection took it, so the unlock misses it, other
  runs wait for a lock nobody holds, and a run that lands on that server connection is granted
  it again and migrates at the same time. The wait is cut into slices of at most
  :data:`WAIT_SLICE` seconds, each its own transaction, so a waiter behind a transaction pooler
  frees its server connection between slices. The run's transaction is READ COMMITTED, so it
  sees what the previous holder committed.

  A run that must commit mid-way on a table that holds rows (vidpipe.db.runner.mid_run_commits: to
  build an index CONCURRENTLY, or to end a table's lock with its changes) first calls
  :func:`hold_across_commits`: a second connection takes a handover key in a transaction that
  touches no table and keeps it until the run ends. A run that gets the main lock checks that
  the handover key is free (in one statement that takes and drops it) and otherwise lets go
  and sleeps out its slice outside any transaction, so that behind a transaction pooler it
  keeps no server connection from the run, which needs one for each of its transactions. Idle
  in READ COMMITTED with no snapshot (see ``hold_across_commits``), the holder is not waited
  for by a concurrent build. Only such a run uses a second server connection.

  The handover connection can die while the run goes on (``pg_terminate_backend``, a pooler
  or network fault); a run that took the lock after that would migrate beside this one. So:
  the lock's transactions (the run's and the holder's) ``SET LOCAL`` the server's idle and
  statement timeouts off (local: a pooled server connection keeps none of it); each of the
  run's transactions after a mid-run commit takes the main lock again
  (:func:`resume_after_commit`), so a run that starts meanwhile waits for that transaction;
  and before each of them, and before each statement of an autocommit stretch
  (:func:`confirm_lock_held`), the run checks that its holder still holds the handover key,
  and stops with :class:`MigrationLockLost` if not: the next run finishes the work, as after
  a crash. What the lost run is still doing (one statement, a concurrent index build say) is
  waited for by the next run, not undone (vidpipe.db.runner.index_builds).
- MariaDB (and MySQL, untested): ``GET_LOCK`` on a name derived from the database, with its own
  timeout.
- SQLite: the migration transaction opens with ``BEGIN IMMEDIATE``, which takes the database's
  write lock at once; ``busy_timeout`` is the wait. A lock file was rejected: it needs a writable
  directory beside the database, is advisory only for vidpipe, and can outlive a crashed
  process, while the write lock is released by SQLite itself on commit, rollback or crash.

A lock held by a process that dies is released by the server (the session ends) or by SQLite.

A run first tries the lock without waiting. If another process holds it, the wait is logged on
this module's logger (``vidpipe.db.runner.locking``): when it starts, naming the lock, every
``WAIT_REPORT_INTERVAL`` seconds while it lasts, and when the lock is taken or the run gives up.
A run that gets the lock at once logs nothing, so a replica's start-up stays quiet.
"""

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vidpipe.db.dialects import dialect_for
from vidpipe.db.dialects.sqlite import (
    SQLITE_BEGIN_STATEMENT,
    sqlite_pragma,
    uses_real_sqlite_transactions,
)
from vidpipe.db.errors import MigrationLockLost, MigrationLockTimeout, MigrationSettingError

__all__ = [
    "HANDOVER_KEY",
    "MAY_COMMIT_MID_RUN",
    "MYSQL_LOCK_PREFIX",
    "POSTGRESQL_LOCK_KEY",
    "WAIT_REPORT_INTERVAL",
    "WAIT_SLICE",
    "confirm_lock_held",
    "hold_across_commits",
    "migration_lock",
    "pause",
    "resume_after_commit",
]

logger = logging.getLogger(__name__)

#: The PostgreSQL advisory lock key: the ASCII bytes of "vidpipe1" read as a bigint. Advisory
#: locks are per database, so one key serves every vidpipe database on a server.
POSTGRESQL_LOCK_KEY = int.from_bytes(b"vidpipe1", "big")
#: GET_LOCK names are server-wide (and at most 64 characters): the database name is part of it.
MYSQL_LOCK_PREFIX = "vidpipe_migrations:"
#: Seconds between two "still waiting" lines while a run waits for another one's migration:
#: often enough that a stuck deployment shows it is alive, rarely enough not to flood a log.
WAIT_REPORT_INTERVAL = 30.0
_MYSQL_LOCK_NAME_LIMIT = 64
_POSTGRESQL_LOCK_NOT_AVAILABLE = "55P03"
#: The longest one PostgreSQL lock wait keeps a (pooled) server connection (see ``_hold``).
WAIT_SLICE = 1.0
#: In ``Connection.info`` while the connection's own run holds the PostgreSQL migration lock in a
#: transaction vidpipe commits: the run may then commit mid-way (vidpipe.db.runner.mid_run_commits)
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
_LOCK_TRANSACTION_TIMEOUTS_OFF = (
    "SET LOCAL idle_in_transaction_session_timeout = 0",
    "SET LOCAL statement_timeout = 0",
)


@dataclass(frozen=True)
class _Handover:
    """The connection that holds the handover key for a run, and its server process."""

    holder: sa.Connection
    pid: int


_Lock = Callable[[sa.Connection, float, float], AbstractContextManager[None]]


@contextmanager
def migration_lock(
    connection: sa.Connection, timeout: float, *, report_every: float = WAIT_REPORT_INTERVAL
) -> Iterator[None]:
    """Hold vidpipe's migration lock on ``connection``'s database while the block runs.

    Raises :class:`MigrationLockTimeout` if the lock is not free within ``timeout`` seconds;
    while it waits, logs that it is waiting every ``report_every`` seconds.
    On SQLite and PostgreSQL the block runs inside one transaction that commits when the block
    succeeds (on PostgreSQL a run may commit mid-way after :func:`hold_across_commits`); on
    MariaDB the lock is independent of the block's
    transactions.
    """
    name = connection.dialect.name
    lock: _Lock
    if name == "postgresql":
        lock = _postgresql_lock
    elif name in ("mysql", "mariadb"):
        lock = _mysql_lock
    elif name == "sqlite":
        lock = _sqlite_lock
    else:
        raise NotImplementedError(f"no migration lock for dialect {name!r}")
    with lock(connection, timeout, report_every):
        yield


def _timeout_error(timeout: float, what: str) -> MigrationLockTimeout:
    return MigrationLockTimeout(
        f"Another process has held vidpipe's migration lock ({what}) for more than {timeout:g} s; "
        "it is probably migrating this database right now. Nothing was changed. Wait for it "
        "and run again, or give a longer timeout (-x lock_timeout=SECONDS on the alembic "
        "command line, lock_timeout=... in the Python API)."
    )


@contextmanager
def _logged_wait(what: str, timeout: float, report_every: float) -> Iterator[None]:
    """Log the wait for the lock ``what`` that the block does: its start, progress and end."""
    logger.info(
        "Waiting up to %g s for vidpipe's migration lock (%s): another process holds it, "
        "probably migrating this database",
        timeout,
        what,
    )
    started = time.monotonic()
    try:
        with _progress_reports(what, timeout, report_every, started):
            yield
    except MigrationLockTimeout:
        logger.warning(
            "Gave up waiting for vidpipe's migration lock (%s) after %.1f s",
            what,
            time.monotonic() - started,
        )
        raise
    logger.info(
        "Got vidpipe's migration lock (%s) after waiting %.1f s", what, time.monotonic() - started
    )


@contextmanager
def _progress_reports(
    what: str, timeout: float, report_every: float, started: float
) -> Iterator[None]:
    """Log "still waiting" every ``report_every`` seconds until the block ends.

    From a thread: the wait itself blocks inside the database driver. The thread is joined
    before the block's outcome is logged, so no progress line follows it.
    """
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(report_every):
            logger.info(
                "Still waiting for vidpipe's migration lock (%s): %.1f s of at most %g s",
                what,
                time.monotonic() - started,
                timeout,
            )

    reporter = threading.Thread(target=report, name="vidpipe-lock-wait-reports", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        stop.set()
        reporter.join()


@contextmanager
def _postgresql_lock(
    connection: sa.Connection, timeout: float, report_every: float
) -> Iterator[None]:
    if getattr(connection.connection.dbapi_connection, "autocommit", False):
        # Each statement would be its own transaction: the lock would end with the statement
        # that took it, and the run would neither be exclusive nor atomic.
        raise MigrationSettingError(
            "vidpipe migrates PostgreSQL in one transaction that holds the migration lock, and "
            "this connection is in AUTOCOMMIT mode, where no transaction spans two statements. "
            "Nothing was changed. Hand in a connection or engine without "
            "isolation_level='AUTOCOMMIT'."
        )
    what = f"PostgreSQL advisory lock {POSTGRESQL_LOCK_KEY}"
    if MAY_COMMIT_MID_RUN in connection.info:
        # A run nested in a block that already holds the lock for this connection (advisory
        # locks are re-entrant for their session).
        yield
        return
    if connection.in_transaction():
        # The caller's transaction holds the lock; its commit or rollback releases it. Its
        # timeouts are the caller's: if one ends it, the run's work goes with it.
        _hold(connection, timeout, report_every, what)
        yield
        return
    _hold(connection, timeout, report_every, what)
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
        with dialect_for(holder.dialect).without_prepared_statements(holder):
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
    while not _wait_for_advisory_lock(connection, WAIT_SLICE, statement, POSTGRESQL_LOCK_KEY):
        confirm_lock_held(connection)
    # The holder may have died while this transaction waited and another run migrated.
    confirm_lock_held(connection)
    _timeouts_off(connection)


def _hold(connection: sa.Connection, timeout: float, report_every: float, what: str) -> None:
    """Take the lock in ``connection``'s transaction, waiting up to ``timeout`` seconds.

    The wait is cut into slices of at most :data:`WAIT_SLICE`, each its own transaction (or,
    in a caller's transaction, its own savepoint): a waiter behind a transaction-mode pooler
    then frees its server connection between slices.
    """
    if _take_slice(connection, 0):
        return
    deadline = time.monotonic() + timeout
    with _logged_wait(what, timeout, report_every):
        while (remaining := deadline - time.monotonic()) > 0:
            if _take_slice(connection, min(WAIT_SLICE, remaining)):
                return
        raise _timeout_error(timeout, what)


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
                sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": POSTGRESQL_LOCK_KEY}
            ).scalar()
        )
    else:
        got_main = _wait_for_advisory_lock(
            connection, seconds, "SELECT pg_advisory_xact_lock(:key)", POSTGRESQL_LOCK_KEY
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


def pause(connection: sa.Connection, seconds: float) -> None:
    """Sleep; under an asyncio driver without blocking the host's event loop."""
    if connection.dialect.is_async:
        # The run is inside AsyncConnection.run_sync, on a greenlet of the event loop.
        sa.util.await_(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


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
        if _sqlstate(exc) != _POSTGRESQL_LOCK_NOT_AVAILABLE:
            raise
        return False
    connection.execute(
        sa.text("SELECT set_config('lock_timeout', :previous, true)"), {"previous": previous}
    )
    return True


@contextmanager
def _mysql_lock(connection: sa.Connection, timeout: float, report_every: float) -> Iterator[None]:
    external = connection.in_transaction()
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
    lock_name = MYSQL_LOCK_PREFIX + database
    if len(lock_name) > _MYSQL_LOCK_NAME_LIMIT:
        lock_name = MYSQL_LOCK_PREFIX + hashlib.sha1(database.encode()).hexdigest()
    what = f"GET_LOCK('{lock_name}')"

    def get_lock(seconds: float) -> bool:
        got = connection.execute(
            sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": lock_name, "timeout": seconds}
        ).scalar()
        if not external:
            # GET_LOCK outlives transactions; this one only held the SELECT.
            connection.commit()
        return bool(got == 1)

    if not get_lock(0):
        with _logged_wait(what, timeout, report_every):
            if not get_lock(timeout):
                raise _timeout_error(timeout, what)
    with _releasing(connection, "SELECT RELEASE_LOCK(:name)", {"name": lock_name}):
        yield


@contextmanager
def _releasing(connection: sa.Connection, statement: str, params: dict[str, Any]) -> Iterator[None]:
    """Run the block, then release the session lock with ``statement``.

    If the block failed and the release fails too (the connection died), the original error is
    the one that matters; the server drops a dead session's locks anyway.
    """
    external = connection.in_transaction()
    try:
        yield
    except BaseException:
        with suppress(sa.exc.DBAPIError):
            if not external:
                connection.rollback()  # an aborted transaction would refuse the unlock
            _release(connection, statement, params, external)
        raise
    _release(connection, statement, params, external)


def _release(
    connection: sa.Connection, statement: str, params: dict[str, Any], external: bool
) -> None:
    connection.execute(sa.text(statement), params)
    if not external:
        connection.commit()


@contextmanager
def _sqlite_lock(connection: sa.Connection, timeout: float, report_every: float) -> Iterator[None]:
    if connection.in_transaction() or not uses_real_sqlite_transactions(connection.engine):
        # The caller's transaction, or an engine whose BEGIN vidpipe does not control: the
        # caller owns transaction and locking (see README, "Safety").
        yield
        return
    raw = connection.connection.dbapi_connection
    what = f"SQLite write lock of {connection.engine.url.database}"
    previous = sqlite_pragma(raw, "PRAGMA busy_timeout")
    connection.info[SQLITE_BEGIN_STATEMENT] = "BEGIN IMMEDIATE"
    try:
        transaction = _begin_immediate(connection, raw, 0)
        if transaction is None:
            with _logged_wait(what, timeout, report_every):
                transaction = _begin_immediate(connection, raw, timeout)
                if transaction is None:
                    raise _timeout_error(timeout, what)
    finally:
        del connection.info[SQLITE_BEGIN_STATEMENT]
        sqlite_pragma(raw, f"PRAGMA busy_timeout={previous}")
    with transaction:
        yield


def _begin_immediate(
    connection: sa.Connection, raw: Any, timeout: float
) -> sa.RootTransaction | None:
    """Begin, taking the write lock within ``timeout`` seconds (busy_timeout); None if locked."""
    sqlite_pragma(raw, f"PRAGMA busy_timeout={int(timeout * 1000)}")
    try:
        return connection.begin()
    except sa.exc.OperationalError as exc:
        if "locked" not in str(exc.orig):
            raise
        return None


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    """The SQLSTATE of a driver error (psycopg and asyncpg name it differently)."""
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
