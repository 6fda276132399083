"""SQLite: a run lets the application write between the tables it changes (issue 17).

SQLite has one write lock per database. A run used to hold it from its first statement to its
last (``BEGIN IMMEDIATE``), and ``vidpipe_0006`` rebuilds six tables (batch mode: move and
copy): at 500,000 rows per table that is over a minute, and an application writing meanwhile
failed with ``database is locked`` after its 30 s ``busy_timeout``. So, like the PostgreSQL
run (vidpipe.db.dialects.postgresql), a SQLite run commits after each table's changes and
after each index build (vidpipe.db.runner.table_locks asks :class:`~vidpipe.db.dialects.sqlite.
SQLite`, which calls :func:`commit_mid_run`), and the application's writers, waiting in their
``busy_timeout``, get the lock between two tables.

Decisions:

- Other runs are kept out by a second lock that application writers never take: an exclusive
  ``flock`` on ``<database>-vidpipe-migration.lock`` beside the database, held from before the
  run's first transaction to after its last (:func:`holding_lock_file`, taken by the dialect's
  ``migration_lock``). The kernel releases it when the process dies, so a crash leaves no stale
  lock (only the empty file, which the next run takes and removes at its end, as every run
  does). The directory is writable anyway: WAL mode keeps its ``-wal`` and ``-shm`` files there.
  Where ``flock`` does not exist (Windows) or the database is not a file, the run keeps the
  write lock throughout, as before.
- Foreign keys are off during a run (batch mode drops and renames tables) and checked before
  each commit, for the tables changed since the last one (``PRAGMA foreign_key_check(t)``:
  their rows against the tables they refer to), and for the whole database if a table was
  dropped. A violation raises before the commit, so the chunk that caused it is rolled back;
  what earlier commits did is kept and the revision stays unrecorded.
- A run that dies between commits leaves its revision unrecorded with part of its tables
  changed; the next run does the revision again, and revisions are idempotent.
- After each commit the run pauses (:data:`WRITERS_TURN`) before it takes the lock again:
  SQLite has no queue for its lock, and without the pause the run would win it back every time.
"""

import os
import re
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import event

from vidpipe.db.dialects.base import LockWait, pause
from vidpipe.db.errors import ForeignKeyViolation

try:
    import fcntl
except ImportError:  # Windows: SQLite runs keep the write lock throughout
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "WRITERS_TURN",
    "changed_in_place",
    "check_foreign_keys",
    "commit_mid_run",
    "holding_lock_file",
    "lock_file_path",
    "may_commit_mid_run",
    "watching_changed_tables",
]

#: In ``Connection.info`` while the run holds the migration lock file, so it may commit mid-way.
_RUN_LOCK = "vidpipe.sqlite_run_lock"
#: In ``Connection.info`` while a run is watched: the tables changed since its last commit.
_CHANGED = "vidpipe.sqlite_changed_tables"
#: Statements that can leave a row pointing nowhere while foreign keys are off, and the table
#: each changes: writes to rows, and dropped or renamed tables (a batch rebuild does all of
#: them, into ``_alembic_tmp_<table>``). Additive DDL cannot.
_ROW_CHANGING = re.compile(
    r"\s*(?:(?:INSERT|REPLACE)\s+INTO|UPDATE|DELETE\s+FROM|(DROP)\s+TABLE(?:\s+IF\s+EXISTS)?"
    r"|ALTER\s+TABLE(?=\s+\S+\s+RENAME))\s+[\"`\[]?(\w+)",
    re.I,
)
_BATCH_PREFIX = "_alembic_tmp_"
#: Seconds the run waits after a commit mid-run: longer than the longest sleep of SQLite's busy
#: handler (100 ms), so every writer waiting in its busy_timeout tries the lock meanwhile.
WRITERS_TURN = 0.15
#: A dropped table: its children can only be checked by checking everything.
_DROPPED = "*"
#: How often a run waiting for the migration lock file tries it again (seconds).
_LOCK_FILE_POLL = 0.05


def lock_file_path(database: str) -> str:
    """The file whose ``flock`` keeps other runs out of ``database`` between commits."""
    return f"{database}-vidpipe-migration.lock"


def may_commit_mid_run(bind: sa.Connection) -> bool:
    """Whether the run on ``bind`` holds the lock file, so it may commit between tables."""
    return _RUN_LOCK in bind.info


@contextmanager
def holding_lock_file(connection: sa.Connection, wait: LockWait) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the database's migration lock file while the block runs,
    so the run may commit between tables with other runs still kept out; yields whether it
    does. Without ``flock`` (Windows) or a database file, yields False: the run keeps SQLite's
    write lock throughout."""
    database = connection.engine.url.database
    if fcntl is None or not database or database == ":memory:" or database.startswith("file:"):
        yield False
        return
    path = lock_file_path(database)
    what = f"migration lock file {path}"
    lock_file = _locked_file(path, 0)
    if lock_file is None:
        with wait.logged(what):
            lock_file = _locked_file(path, wait.timeout)
            if lock_file is None:
                raise wait.timed_out(what)
    connection.info[_RUN_LOCK] = True
    try:
        yield True
    finally:
        del connection.info[_RUN_LOCK]
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


@contextmanager
def watching_changed_tables(
    connection: sa.Connection, bookkeeping: Collection[str]
) -> Iterator[Callable[[], set[str]]]:
    """Record the tables the block's statements change (until the next commit mid-run), but
    ``bookkeeping`` (vidpipe's own version and record tables, which point at nothing); yields
    what reads them."""
    changed: set[str] = set()

    def watch(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        found = _ROW_CHANGING.match(statement)
        if found is None:
            return
        dropped, table = found.groups()
        table = table.removeprefix(_BATCH_PREFIX)
        if table not in bookkeeping:
            # A batch rebuild drops the table it then renames its copy to: that is a change of
            # the table, found again by the rename, not a table gone.
            changed.add(_DROPPED if dropped and table not in changed else table)

    connection.info[_CHANGED] = changed
    event.listen(connection, "before_cursor_execute", watch)
    try:
        yield lambda: set(changed)
    finally:
        event.remove(connection, "before_cursor_execute", watch)
        connection.info.pop(_CHANGED, None)


def changed_in_place(connection: sa.Connection, table: str) -> None:
    """Count ``table`` as changed although no statement the watch reads changed it (its
    definition was edited: vidpipe.db.dialects.sqlite_schema_edit), so that its foreign keys
    are checked before the next commit, as after a rebuild; at once where nothing watches."""
    changed: set[str] | None = connection.info.get(_CHANGED)
    if changed is None:
        check_foreign_keys(connection, {table})
    else:
        changed.add(table)


def check_foreign_keys(connection: sa.Connection, tables: set[str]) -> None:
    """Raise (so the transaction rolls back) if a row of ``tables`` points at a missing parent;
    all tables if ``tables`` holds a dropped one.

    ``PRAGMA foreign_key_check`` reads every row it checks, which on a big database costs more
    than a migration: only the tables changed are read."""
    if not tables:
        return
    present = set(sa.inspect(connection).get_table_names())
    if _DROPPED in tables or not tables <= present:
        statements = ["PRAGMA foreign_key_check"]
    else:
        statements = [f'PRAGMA foreign_key_check("{table}")' for table in sorted(tables)]
    problems = [row for s in statements for row in connection.exec_driver_sql(s).fetchall()]
    if problems:
        shown = "; ".join(
            f"{table} rowid {rowid} -> missing {parent}" for table, rowid, parent, _ in problems[:5]
        )
        raise ForeignKeyViolation(
            f"{len(problems)} row(s) violate foreign keys after the migration ({shown}); "
            "the migration was rolled back. Repair or delete those rows, then upgrade again."
        )


def commit_mid_run(bind: sa.Connection) -> None:
    """Check the foreign keys of the tables changed since the last commit, and commit: the
    application's writers get the write lock, and the run's next statement takes it again
    (``BEGIN IMMEDIATE``, waiting in ``busy_timeout``)."""
    changed: set[str] = bind.info.get(_CHANGED, set())
    check_foreign_keys(bind, changed)
    changed.clear()
    bind.commit()
    # SQLite queues no one: a writer in busy_timeout sleeps and tries again, and the run's next
    # BEGIN IMMEDIATE would take the lock back before any woke up. Writers waiting for a while
    # try every 100 ms (SQLite's busy handler), so this pause lets each of them in.
    pause(bind, WRITERS_TURN)
