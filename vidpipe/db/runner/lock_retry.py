"""Retry a run whose statement waited too long behind an application's lock.

On PostgreSQL every statement of a run waits at most ``ddl_lock_timeout`` for a table lock
(vidpipe.db.runner.environment), so that a migration queued behind a long application transaction
does not in turn queue every later query of the application behind itself. When that timeout
fires, the run is tried again after a back-off (``ddl_retry_delay``, doubled each time, at most
:data:`MAX_RETRY_DELAY`), up to ``ddl_retries`` more times: a deploy during traffic then
succeeds as soon as the blocking transaction ends, and gives up with :class:`DDLLockTimeout`,
naming the statement, its table and what held the table, if it never does. Each retry is
logged at WARNING. Which errors are lock waits, and who holds the table, each dialect answers
(``is_lock_wait``, ``blockers``: vidpipe.db.dialects).

What is retried is the whole run. On PostgreSQL the failed attempt's transaction is rolled
back and the migration lock released while it backs off (another replica may finish the work
meanwhile; the retry then finds the database at head). What the attempt committed before
(vidpipe.db.dialects.postgresql: the revisions before, and the tables of the revision it was in
that hold rows) stays; the revision it was in is not recorded, and the retry runs it again from
its start: revisions are idempotent.

MariaDB/MySQL: the same retry applies. Its DDL waits for a metadata lock up to the session's
``lock_wait_timeout`` (the server's default is a day, while every later query on the table
queues behind the waiting DDL), so the run sets it to ``ddl_lock_timeout`` rounded up to whole
seconds (vidpipe.db.dialects.mariadb) and treats error 1205 (lock wait timeout; InnoDB row
locks give it too, after ``innodb_lock_wait_timeout``) and 1213 (deadlock) as a lock wait.
Each revision commits on its own there and is recorded when done, so the retry resumes with the
revision that waited.

A connection handed in already inside a transaction is not retried: the failed statement
aborted the caller's transaction, which vidpipe cannot replay; the error is raised at once.
SQLite waits ``busy_timeout`` instead and is not retried.
"""

import logging
import re
from collections.abc import Callable

import sqlalchemy as sa

from vidpipe.db.dialects import dialect_for
from vidpipe.db.dialects.base import pause
from vidpipe.db.errors import DDLLockTimeout
from vidpipe.db.runner.settings import MAX_RETRY_DELAY, RunSettings

__all__ = ["retrying_lock_waits"]

logger = logging.getLogger(__name__)

#: The tables a DDL or DML statement names, as vidpipe's revisions write them (a foreign key's
#: REFERENCES locks its parent table too).
_TABLE = re.compile(
    r"\b(?:TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|ON|INTO|UPDATE|FROM|REFERENCES)\s+(?:ONLY\s+)?"
    r"[\"`]?(?:\w+[\"`]?\.[\"`]?)?(\w+)",
    re.IGNORECASE,
)


def retrying_lock_waits(
    connection: sa.Connection, settings: RunSettings, run: Callable[[], None]
) -> None:
    """Call ``run`` (a whole migration run on ``connection``) until it does not time out on a
    lock, at most ``settings.ddl_retries`` more times; then raise :class:`DDLLockTimeout`."""
    external = connection.in_transaction()
    retries = 0 if external else settings.ddl_retries
    dialect = dialect_for(connection.dialect)
    # The same statements repeat on each try: a prepared one would not survive a transaction
    # pooler (vidpipe.db.runner.pooler).
    with (
        dialect.without_prepared_statements(connection),
        dialect.session_lock_wait(connection, None if external else settings.mysql_lock_wait),
    ):
        for attempt in range(1, retries + 2):
            try:
                run()
                return
            except sa.exc.DBAPIError as exc:
                if not dialect.is_lock_wait(exc):
                    raise
                tables = _TABLE.findall(exc.statement or "")
                table = tables[0] if tables else None
                blockers: list[tuple[int, str, str]] = []
                if not external:
                    table, blockers = dialect.blockers(connection, tables)
                if attempt > retries:
                    raise _gave_up(exc, table, attempt, blockers) from exc
                delay = _backoff(settings, attempt)
                logger.warning(
                    "vidpipe migration: %s waited too long for a lock on %s, held by %s; "
                    "retry %d of %d in %.1f s",
                    _shorten(exc.statement),
                    table or "its table",
                    _describe(blockers),
                    attempt,
                    retries,
                    delay,
                )
                pause(connection, delay)


def _backoff(settings: RunSettings, retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (1-based)."""
    return min(settings.ddl_retry_delay * 2.0 ** (retry - 1), MAX_RETRY_DELAY)


def _gave_up(
    exc: sa.exc.DBAPIError, table: str | None, attempts: int, blockers: list[tuple[int, str, str]]
) -> DDLLockTimeout:
    statement = exc.statement or ""
    return DDLLockTimeout(
        f"The migration gave up after {attempts} attempt(s): {_shorten(statement)} waited "
        f"longer than ddl_lock_timeout for a lock on {table or 'its table'}, held by "
        f"{_describe(blockers)}. The run was rolled back (on MariaDB: the revisions before it "
        "are kept). End or wait for that transaction, then run again; or allow more with the "
        "run settings ddl_retries, ddl_retry_delay or ddl_lock_timeout (vidpipe-db "
        "--ddl-retries 10; upgrade(..., ddl_retries=10); alembic -x ddl_retries=10).",
        statement=statement,
        table=table,
        attempts=attempts,
        blockers=blockers,
    )


def _describe(blockers: list[tuple[int, str, str]]) -> str:
    if not blockers:
        return "another transaction"
    return ", ".join(f"pid {pid} ({state}: {_shorten(query)})" for pid, state, query in blockers)


def _shorten(statement: str | None, limit: int = 120) -> str:
    text = " ".join((statement or "").split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
