"""One migration run at a time per database, across processes and machines.

Several replicas of a backend often start together and each runs the upgrade. Each run takes
the database's own lock before Alembic reads the version table, so the second run waits, then
reads the revision the first one left and has nothing to do:

- PostgreSQL: a session advisory lock (``pg_advisory_lock``), waited for under ``lock_timeout``;
  if the caller's connection is already in a transaction, the transaction-scoped variant, so the
  lock is held until the caller commits the migration.
- MariaDB (and MySQL, untested): ``GET_LOCK`` on a name derived from the database, with its own
  timeout.
- SQLite: the migration transaction opens with ``BEGIN IMMEDIATE``, which takes the database's
  write lock at once; ``busy_timeout`` is the wait. A lock file was rejected: it needs a writable
  directory beside the database, is advisory only for vidpipe, and can outlive a crashed
  process, while the write lock is released by SQLite itself on commit, rollback or crash.

A lock held by a process that dies is released by the server (the session ends) or by SQLite.

A run first tries the lock without waiting. If another process holds it, the wait is logged on
this module's logger (``vidpipe.db.locking``): when it starts, naming the lock, every
``WAIT_REPORT_INTERVAL`` seconds while it lasts, and when the lock is taken or the run gives up.
A run that gets the lock at once logs nothing, so a replica's start-up stays quiet.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import sqlalchemy as sa

from vidpipe.db.engine import SQLITE_BEGIN_STATEMENT, sqlite_pragma, uses_real_sqlite_transactions
from vidpipe.db.errors import MigrationLockTimeout

__all__ = [
    "MYSQL_LOCK_PREFIX",
    "POSTGRESQL_LOCK_KEY",
    "WAIT_REPORT_INTERVAL",
    "migration_lock",
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

_Lock = Callable[[sa.Connection, float, float], AbstractContextManager[None]]


@contextmanager
def migration_lock(
    connection: sa.Connection, timeout: float, *, report_every: float = WAIT_REPORT_INTERVAL
) -> Iterator[None]:
    """Hold vidpipe's migration lock on ``connection``'s database while the block runs.

    Raises :class:`MigrationLockTimeout` if the lock is not free within ``timeout`` seconds;
    while it waits, logs that it is waiting every ``report_every`` seconds.
    On SQLite the block runs inside the transaction that holds the lock, and it commits when
    the block succeeds; elsewhere the lock is independent of the block's transactions.
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
    external = connection.in_transaction()
    # If the caller's connection is in a transaction, the lock is held until it commits.
    scope = "_xact" if external else ""
    what = f"PostgreSQL advisory lock {POSTGRESQL_LOCK_KEY}"
    key = {"key": POSTGRESQL_LOCK_KEY}
    if not connection.execute(sa.text(f"SELECT pg_try_advisory{scope}_lock(:key)"), key).scalar():
        with _logged_wait(what, timeout, report_every):
            _wait_for_advisory_lock(connection, f"pg_advisory{scope}_lock", timeout, what, external)
    if external:
        yield
        return
    # A fresh transaction for the migration: under REPEATABLE READ a snapshot taken before the
    # lock would hide the revision the previous holder committed.
    connection.commit()
    with _releasing(connection, "SELECT pg_advisory_unlock(:key)", key):
        yield


def _wait_for_advisory_lock(
    connection: sa.Connection, function: str, timeout: float, what: str, external: bool
) -> None:
    """Block in ``function`` under a ``lock_timeout`` of ``timeout``, then restore the setting."""
    previous = connection.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar()
    # SET LOCAL ends with the transaction; the session lock does not.
    connection.execute(
        sa.text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": f"{int(timeout * 1000)}"}
    )
    try:
        connection.execute(sa.text(f"SELECT {function}(:key)"), {"key": POSTGRESQL_LOCK_KEY})
    except sa.exc.DBAPIError as exc:
        if _sqlstate(exc) != _POSTGRESQL_LOCK_NOT_AVAILABLE:
            raise
        if not external:
            connection.rollback()
        raise _timeout_error(timeout, what) from None
    connection.execute(
        sa.text("SELECT set_config('lock_timeout', :previous, true)"), {"previous": previous}
    )


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
