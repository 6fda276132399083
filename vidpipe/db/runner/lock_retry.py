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
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext

from vidpipe.db.dialects import dialect_for
from vidpipe.db.dialects.base import pause
from vidpipe.db.errors import DDLLockTimeout, MigrationSettingError

__all__ = [
    "DDL_RETRIES",
    "DDL_RETRY_DELAY",
    "DEFAULT_DDL_RETRIES",
    "DEFAULT_DDL_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "RetrySettings",
    "retrying_lock_waits",
]

logger = logging.getLogger(__name__)

#: Setting names, the same in ``config.attributes`` and in ``-x name=value``.
DDL_RETRIES = "ddl_retries"
DDL_RETRY_DELAY = "ddl_retry_delay"
#: The run's lock wait per statement (PostgreSQL syntax; vidpipe.db.runner.environment sets
#: it there).
DDL_LOCK_TIMEOUT = "ddl_lock_timeout"
DEFAULT_DDL_LOCK_TIMEOUT = "5s"
#: Five retries with the default back-off wait about a minute (plus six ddl_lock_timeouts) for
#: an application transaction to end: longer than a typical request, short enough for a deploy.
DEFAULT_DDL_RETRIES = 5
DEFAULT_DDL_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 60.0

_DURATION = re.compile(r"(\d+)(ms|s|min|h)?")
_MILLISECONDS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
#: The tables a DDL or DML statement names, as vidpipe's revisions write them (a foreign key's
#: REFERENCES locks its parent table too).
_TABLE = re.compile(
    r"\b(?:TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|ON|INTO|UPDATE|FROM|REFERENCES)\s+(?:ONLY\s+)?"
    r"[\"`]?(?:\w+[\"`]?\.[\"`]?)?(\w+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RetrySettings:
    """How often, and after how long, a run that waited too long for a lock is tried again."""

    #: Further tries after the first (0: fail at the first lock timeout).
    retries: int = DEFAULT_DDL_RETRIES
    #: Seconds before the first retry; doubled for each further one, at most MAX_RETRY_DELAY.
    delay: float = DEFAULT_DDL_RETRY_DELAY
    #: MariaDB/MySQL ``lock_wait_timeout`` for the run, in whole seconds (the server knows no
    #: finer): ``ddl_lock_timeout`` rounded up. None keeps the server's (``ddl_lock_timeout=0``,
    #: no limit on PostgreSQL, would mean "never wait" there).
    mysql_lock_wait: int | None = 5

    @classmethod
    def from_context(cls, context: EnvironmentContext) -> "RetrySettings":
        """``config.attributes``, else ``-x``, else the defaults (vidpipe.db.runner.settings's
        rule)."""
        x_arguments = context.get_x_argument(as_dictionary=True)

        def given(name: str, default: Any) -> Any:
            value = context.config.attributes.get(name)
            return value if value is not None else x_arguments.get(name, default)

        return cls(
            retries=_count(DDL_RETRIES, given(DDL_RETRIES, DEFAULT_DDL_RETRIES)),
            delay=_seconds(DDL_RETRY_DELAY, given(DDL_RETRY_DELAY, DEFAULT_DDL_RETRY_DELAY)),
            mysql_lock_wait=_whole_seconds(given(DDL_LOCK_TIMEOUT, DEFAULT_DDL_LOCK_TIMEOUT)),
        )

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return min(self.delay * 2.0 ** (retry - 1), MAX_RETRY_DELAY)


def retrying_lock_waits(
    connection: sa.Connection, settings: RetrySettings, run: Callable[[], None]
) -> None:
    """Call ``run`` (a whole migration run on ``connection``) until it does not time out on a
    lock, at most ``settings.retries`` more times; then raise :class:`DDLLockTimeout`."""
    external = connection.in_transaction()
    retries = 0 if external else settings.retries
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
                delay = settings.backoff(attempt)
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


def _gave_up(
    exc: sa.exc.DBAPIError, table: str | None, attempts: int, blockers: list[tuple[int, str, str]]
) -> DDLLockTimeout:
    statement = exc.statement or ""
    return DDLLockTimeout(
        f"The migration gave up after {attempts} attempt(s): {_shorten(statement)} waited "
        f"longer than ddl_lock_timeout for a lock on {table or 'its table'}, held by "
        f"{_describe(blockers)}. The run was rolled back (on MariaDB: the revisions before it "
        "are kept). End or wait for that transaction, then run again; or allow more with "
        f"-x {DDL_RETRIES}=N, -x {DDL_RETRY_DELAY}=SECONDS or -x ddl_lock_timeout=10s.",
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


def _count(name: str, value: Any) -> int:
    text = str(value).strip()
    number = int(text) if text.isdigit() and not isinstance(value, bool) else -1
    if number < 0:
        raise MigrationSettingError(f"{name} must be a whole number of retries >= 0, got {value!r}")
    return number


def _whole_seconds(duration: Any) -> int | None:
    """A PostgreSQL duration (``5s``, ``200ms``, ``15min``; no unit is ms) in whole seconds,
    rounded up; None for 0. A malformed one is refused by vidpipe.db.runner.environment."""
    found = _DURATION.fullmatch(str(duration))
    if found is None:
        raise MigrationSettingError(
            f"{DDL_LOCK_TIMEOUT}={duration!r} is not a duration like 5s, 500ms, 15min "
            "or 0 (no limit)"
        )
    milliseconds = int(found.group(1)) * _MILLISECONDS[found.group(2) or "ms"]
    return math.ceil(milliseconds / 1000) if milliseconds else None


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 <= seconds <= MAX_RETRY_DELAY:
        raise MigrationSettingError(
            f"{name} must be a number of seconds from 0 to {MAX_RETRY_DELAY:g}, got {value!r}"
        )
    return seconds
