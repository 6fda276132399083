"""One migration run at a time per database, across processes and machines.

Several replicas of a backend often start together and each runs the upgrade. Each run takes
the database's own lock before Alembic reads the version table, so the second run waits, then
reads the revision the first one left and has nothing to do. Which lock, and how it is held,
each dialect says (``migration_lock``): PostgreSQL a transaction advisory lock, handed over to
a second connection when the run commits mid-way (vidpipe.db.dialects.postgresql); MariaDB
``GET_LOCK`` (vidpipe.db.dialects.mariadb); SQLite an ``flock`` on a lock file beside the
database, kept across the run's commits mid-way, then its write lock, ``BEGIN IMMEDIATE``
(vidpipe.db.dialects.sqlite). A lock held by a process that dies is released by the server
(the session ends), by the kernel or by SQLite.

A run first tries the lock without waiting. If another process holds it, the wait is logged on
this module's logger (``vidpipe.db.runner.locking``): when it starts, naming the lock, every
``WAIT_REPORT_INTERVAL`` seconds while it lasts, and when the lock is taken or the run gives up.
A run that gets the lock at once logs nothing, so a replica's start-up stays quiet.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from vidpipe.db.dialects import dialect_for
from vidpipe.db.dialects.base import LockWait

__all__ = ["WAIT_REPORT_INTERVAL", "migration_lock"]

logger = logging.getLogger(__name__)

#: Seconds between two "still waiting" lines while a run waits for another one's migration:
#: often enough that a stuck deployment shows it is alive, rarely enough not to flood a log.
WAIT_REPORT_INTERVAL = 30.0


@contextmanager
def migration_lock(
    connection: sa.Connection, timeout: float, *, report_every: float = WAIT_REPORT_INTERVAL
) -> Iterator[None]:
    """Hold vidpipe's migration lock on ``connection``'s database while the block runs.

    Raises :class:`MigrationLockTimeout` if the lock is not free within ``timeout`` seconds;
    while it waits, logs that it is waiting every ``report_every`` seconds.
    On SQLite and PostgreSQL the block runs inside one transaction that commits when the block
    succeeds (a run may commit mid-way: on PostgreSQL after ``hold_across_commits``, on SQLite
    while it holds the lock file); on
    MariaDB the lock is independent of the block's transactions.
    """
    wait = LockWait(timeout, report_every, logger)
    with dialect_for(connection.dialect).migration_lock(connection, wait):
        yield
