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
  for by a concurrent build. Only such a run uses a second server connection;
  ``idle_in_transaction_session_timeout``, if the server sets one, must exceed the longest
  run.
- MariaDB (and MySQL, untested): ``GET_LOCK`` on a name derived from the database, with its own
  timeout.
- SQLite: an exclusive ``flock`` on ``<database>-vidpipe-migration.lock`` (released by the kernel
  when the process dies; the file is removed at the end of the run), then the migration
  transaction opens with ``BEGIN IMMEDIATE``, which takes the database's write lock at once;
  ``busy_timeout`` is the wait. The file lock keeps
  other runs out while the run commits between tables to let the application write
  (vidpipe.db.runner.sqlite_commits, which says why a file lock); without ``flock``
  (Windows), the write lock alone, held for the whole run.

A lock held by a process that dies is released by the server (the session ends) or by SQLite.

A run first tries the lock without waiting. If another process holds it, the wait is logged on
this module's logger (``vidpipe.db.runner.locking``): when it starts, naming the lock, every
``WAIT_REPORT_INTERVAL`` seconds while it lasts, and when the lock is taken or the run gives up.
A run that gets the lock at once logs nothing, so a replica's start-up stays quiet.
"""

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import IO, Any

import sqlalchemy as sa

from vidpipe.db.engine import SQLITE_BEGIN_STATEMENT, sqlite_pragma, uses_real_sqlite_transactions
from vidpipe.db.errors import MigrationLockTimeout, MigrationSettingError
from vidpipe.db.runner.pooler import no_server_side_prepares
from vidpipe.db.runner.sqlite_commits import SQLITE_RUN_LOCK, lock_file_path

try:
    import fcntl
except ImportError:  # Windows: SQLite runs keep the write lock throughout
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MAY_COMMIT_MID_RUN",
    "MYSQL_LOCK_PREFIX",
    "POSTGRESQL_LOCK_KEY",
    "WAIT_REPORT_INTERVAL",
    "hold_across_commits",
    "migration_lock",
    "pause",
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
#: after :func:`hold_across_commits`. Its value is the connection that holds the handover key,
#: once there is one.
MAY_COMMIT_MID_RUN = "vidpipe.may_commit_mid_run"
#: The second advisory key ("vidpipe2"): held by a run that committed mid-way until it ends.
_HANDOVER_KEY = int.from_bytes(b"vidpipe2", "big")

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
        # The caller's transaction holds the lock; its commit or rollback releases it.
        if not _take_slice(connection, 0):
            with _logged_wait(what, timeout, report_every):
                if not _take_slice(connection, timeout):
                    raise _timeout_error(timeout, what)
        yield
        return
    _hold(connection, timeout, report_every, what)
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
        holder = connection.info.pop(MAY_COMMIT_MID_RUN)
        if holder is not None:
            # After the run's commit: the next run must find the revision this one recorded.
            with suppress(sa.exc.DBAPIError):
                holder.rollback()
            holder.close()


@contextmanager
def _holder_connection(connection: sa.Connection) -> Iterator[sa.Connection]:
    holder = connection.engine.connect()
    try:
        with no_server_side_prepares(holder):
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
        holder.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _HANDOVER_KEY})
        # The driver's unnamed portal of that statement keeps its snapshot
        # (pg_stat_activity.backend_xmin) until another statement replaces it, and CREATE INDEX
        # CONCURRENTLY would wait for that snapshot until the run ends: a utility statement,
        # which takes none, replaces it.
        holder.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
        connection.info[MAY_COMMIT_MID_RUN] = holder


def _hold(connection: sa.Connection, timeout: float, report_every: float, what: str) -> None:
    """Take the lock in ``connection``'s transaction, waiting up to ``timeout`` seconds.

    The wait is cut into slices of at most :data:`WAIT_SLICE`, each its own transaction: a
    waiter behind a transaction-mode pooler then frees its server connection between slices.
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
    it until it ends); if either fails, roll back that transaction (unless it is the caller's).

    While a run that committed mid-way goes on, the main lock is free and only the handover key
    is taken. A waiter that finds it so sleeps out its slice outside any transaction instead of
    waiting for the key inside one: behind a transaction-mode pooler it then keeps no server
    connection from that run, which needs one again for each of its transactions. A caller's
    transaction cannot be left: it waits for the key.

    The run's transaction is READ COMMITTED, so statements after the wait see what the previous
    holder committed.
    """
    external = connection.in_transaction()
    if not external:
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
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
    if got_main and external and seconds > 0:
        got = _wait_for_advisory_lock(
            connection,
            seconds,
            "SELECT pg_advisory_lock_shared(:key), pg_advisory_unlock_shared(:key)",
            _HANDOVER_KEY,
        )
    else:
        got = got_main and bool(
            # One statement takes and drops it: pooler-safe although it is session-level.
            connection.execute(
                sa.text(
                    "SELECT CASE WHEN pg_try_advisory_lock_shared(:key) "
                    "THEN pg_advisory_unlock_shared(:key) ELSE false END"
                ),
                {"key": _HANDOVER_KEY},
            ).scalar()
        )
    if not got and not external:
        connection.rollback()
        if got_main and seconds > 0:
            pause(connection, seconds)
    return got


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
    with _sqlite_lock_file(connection, timeout, report_every) as may_commit:
        raw = connection.connection.dbapi_connection
        what = f"SQLite write lock of {connection.engine.url.database}"
        previous = sqlite_pragma(raw, "PRAGMA busy_timeout")
        # Kept for the whole run where it may commit mid-way: each of its transactions takes
        # the write lock at its BEGIN, never later in the middle of a read.
        connection.info[SQLITE_BEGIN_STATEMENT] = "BEGIN IMMEDIATE"
        try:
            try:
                transaction = _begin_immediate(connection, raw, 0)
                if transaction is None:
                    with _logged_wait(what, timeout, report_every):
                        transaction = _begin_immediate(connection, raw, timeout)
                        if transaction is None:
                            raise _timeout_error(timeout, what)
            finally:
                if not may_commit:
                    del connection.info[SQLITE_BEGIN_STATEMENT]
                sqlite_pragma(raw, f"PRAGMA busy_timeout={previous}")
            try:
                # Committed mid-run (vidpipe.db.runner.sqlite_commits), the run's last
                # transaction is not ``transaction`` but the one its next statement began.
                yield
            except BaseException:
                if connection.in_transaction():
                    connection.rollback()
                raise
            if connection.in_transaction():
                connection.commit()
        finally:
            connection.info.pop(SQLITE_BEGIN_STATEMENT, None)


@contextmanager
def _sqlite_lock_file(
    connection: sa.Connection, timeout: float, report_every: float
) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the database's migration lock file while the block runs,
    so the run may commit between tables with other runs still kept out
    (vidpipe.db.runner.sqlite_commits); yields whether it does. Without ``flock`` (Windows) or
    a database file, yields False: the run keeps SQLite's write lock throughout."""
    database = connection.engine.url.database
    if fcntl is None or not database or database == ":memory:" or database.startswith("file:"):
        yield False
        return
    path = lock_file_path(database)
    what = f"migration lock file {path}"
    lock_file = _locked_file(path, 0)
    if lock_file is None:
        with _logged_wait(what, timeout, report_every):
            lock_file = _locked_file(path, timeout)
            if lock_file is None:
                raise _timeout_error(timeout, what)
    connection.info[SQLITE_RUN_LOCK] = True
    try:
        yield True
    finally:
        del connection.info[SQLITE_RUN_LOCK]
        # Removed while still locked: a run that opened it meanwhile finds, once it has the
        # lock, that the path is no longer its file, and starts again (``_locked_file``).
        with suppress(FileNotFoundError):
            os.unlink(path)
        lock_file.close()  # releases the flock


def _locked_file(path: str, timeout: float) -> IO[str] | None:
    """``path``, created if need be, opened and ``flock``ed within ``timeout`` seconds; None
    if another run holds it. A file that a finishing run removed after this one opened it is
    not the lock any more: then the new file at ``path`` is taken instead."""
    deadline = time.monotonic() + timeout
    while True:
        lock_file = open(path, "a")  # noqa: SIM115 - closed by the caller, or below
        if not _flock(lock_file.fileno(), max(0.0, deadline - time.monotonic())):
            lock_file.close()
            return None
        with suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(lock_file.fileno()).st_ino:
                return lock_file
        lock_file.close()


#: How often a run waiting for the SQLite migration lock file tries it again (seconds).
_LOCK_FILE_POLL = 0.05


def _flock(fileno: int, timeout: float) -> bool:
    """Take the exclusive ``flock`` on ``fileno`` within ``timeout`` seconds; False if not."""
    assert fcntl is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fileno, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_LOCK_FILE_POLL)


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
