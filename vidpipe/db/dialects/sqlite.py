"""SQLite, the embedded default: what vidpipe does differently there, and why.

- Every connection of an engine vidpipe makes, or of one given to
  :func:`vidpipe.db.engine.configure_sqlite`, gets ``foreign_keys=ON`` (SQLite's default is
  off), WAL (readers go on while a writer commits), a 30 s ``busy_timeout`` (pysqlite's own
  is 5 s) and a real ``BEGIN``: the driver's transaction handling never begins before DDL, so
  without it a failed migration would leave half its tables behind. A read-only URL
  (``mode=ro``) gets the per-connection settings only, since WAL is written into the file.
- The migration lock is the database's own write lock: the run's transaction opens with
  ``BEGIN IMMEDIATE``, which takes it at once, and ``busy_timeout`` is the wait. A lock file was
  rejected: it needs a writable directory beside the database, is advisory only for vidpipe,
  and can outlive a crashed process, while the write lock is released by SQLite itself on
  commit, rollback or crash. A connection handed in inside a transaction, or an engine whose
  BEGIN vidpipe does not control, leaves transaction and locking to the caller.
- Index builds keep the plain ``CREATE INDEX``, inside the run's transaction: a writing
  transaction excludes every other writer anyway.
- SQLite cannot ALTER most things, so revisions run in batch mode (``render_as_batch``: the
  table is rebuilt, moved and copied). Batch mode drops and renames tables, which with foreign
  keys on would cascade or fail, so a run turns them off (on the raw connection, before its
  transaction: the pragma is ignored inside one) and, if it changed any row, runs ``PRAGMA
  foreign_key_check`` before it commits (it reads every row, so only then): a row left
  pointing nowhere rolls the run back with :class:`~vidpipe.db.errors.ForeignKeyViolation`.
  The same holds for the idempotent helpers and the adoption of an older database
  (``alters_by_rebuilding``): a table's changes, and the foreign key of a column they add, go
  into one rebuild, which keeps every stored value as it is.
- A tag look-up (vidpipe.db.store.lookups) reads each element with ``json_each``, which decodes
  ``\\u`` escapes; ``=`` on TEXT is binary here, so the match is exact.
- One writer at a time: a save whose transaction read before it wrote cannot wait for the
  write lock ("database is locked" at once), and is told so, with the way out (save first, or
  ``BEGIN IMMEDIATE``), by vidpipe.db.store.explain.
- A downgrade that drops data is counted first (vidpipe.db.runner.data_loss); no writer can
  add a row before the DROP, since the migration holds the database's write lock throughout.
"""

import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.sql.compiler import SQLCompiler

from vidpipe.db.dialects.base import Dialect, LockWait
from vidpipe.db.errors import ForeignKeyViolation

__all__ = [
    "SQLITE_BEGIN_STATEMENT",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLite",
    "check_foreign_keys",
    "sqlite_pragma",
    "uses_real_sqlite_transactions",
]

#: How long a SQLite connection waits for another writer before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: ``Connection.info`` key: the statement that opens the connection's next transaction on SQLite
#: (the migration lock sets "BEGIN IMMEDIATE"); absent means a plain deferred "BEGIN".
SQLITE_BEGIN_STATEMENT = "vidpipe.sqlite_begin_statement"
#: Statements that can leave a row pointing nowhere while foreign keys are off: writes to rows,
#: and dropped or renamed tables (a batch rebuild does all of them). Additive DDL cannot.
_ROW_CHANGING = re.compile(
    r"\s*(INSERT|UPDATE|DELETE|REPLACE|DROP\s+TABLE|ALTER\s+TABLE\s+\S+\s+RENAME)", re.I
)


class SQLite(Dialect):
    """SQLite through sqlite3 or aiosqlite."""

    __dialect__ = "sqlite"
    alters_by_rebuilding = True

    def configure_engine(self, engine: sa.Engine) -> None:
        if event.contains(engine, "begin", _on_begin):
            return
        read_only = engine.url.query.get("mode") == "ro"
        event.listen(engine, "connect", _on_read_only_connect if read_only else _on_connect)
        event.listen(engine, "begin", _on_begin)

    @contextmanager
    def migration_lock(self, connection: sa.Connection, wait: LockWait) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the database's write lock at once; busy_timeout is the wait.
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
                with wait.logged(what):
                    transaction = _begin_immediate(connection, raw, wait.timeout)
                    if transaction is None:
                        raise wait.timed_out(what)
        finally:
            del connection.info[SQLITE_BEGIN_STATEMENT]
            sqlite_pragma(raw, f"PRAGMA busy_timeout={previous}")
        with transaction:
            yield

    def migration_options(self, connection: sa.Connection | None) -> dict[str, Any]:
        # SQLite cannot ALTER most things: batch mode rebuilds the table (move and copy).
        options: dict[str, Any] = {"render_as_batch": True}
        if connection is not None:
            # Only an engine that emits a real BEGIN (configure_engine) makes SQLite's DDL
            # transactional; with any other, a failed revision may leave tables behind.
            options["transactional_ddl"] = uses_real_sqlite_transactions(connection.engine)
        return options

    @contextmanager
    def around_run(self, connection: sa.Connection) -> Iterator[None]:
        """Foreign keys off while tables are rebuilt, and back on afterwards.

        Batch mode drops and renames tables; with foreign keys on, that would cascade or fail.
        The pragma is ignored inside a transaction, so it is set on the raw connection before
        the run begins one; a connection handed in mid-transaction keeps its setting.
        """
        if connection.in_transaction():
            yield
            return
        raw = connection.connection.dbapi_connection
        was_on = sqlite_pragma(raw, "PRAGMA foreign_keys") == 1
        if was_on:
            sqlite_pragma(raw, "PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            if was_on:
                sqlite_pragma(raw, "PRAGMA foreign_keys=ON")

    @contextmanager
    def around_revisions(
        self, connection: sa.Connection, bookkeeping: Collection[str]
    ) -> Iterator[None]:
        """With foreign keys off, a rebuild could leave a row pointing nowhere: if the run
        changed rows, :func:`check_foreign_keys` before it commits."""
        with _rows_changed(connection, bookkeeping) as changed:
            yield
        if changed():
            check_foreign_keys(connection)

    def tags_contain(
        self,
        column: sa.ColumnElement[Any],
        tag: sa.BindParameter[str],
        compiler: SQLCompiler,
        **kw: Any,
    ) -> str:
        # json_each decodes each element (\u escapes included); = on TEXT is binary in SQLite.
        each = sa.func.json_each(column).table_valued("value").alias("tag")
        return compiler.process(sa.exists().select_from(each).where(each.c.value == tag), **kw)

    def is_duplicate_key(self, exc: sa.exc.DBAPIError) -> bool:
        return "UNIQUE constraint failed" in str(exc.orig)

    def lost_race(self, exc: sa.exc.DBAPIError) -> str | None:
        # A transaction that read before another one wrote cannot take the write lock (its
        # snapshot may be stale): SQLite refuses at once, whatever the busy timeout.
        if "database is locked" not in str(exc.orig):
            return None
        return (
            "Another connection was writing to the SQLite database while the storyboard of "
            "project {projects} was being saved, and this transaction could not wait for it: "
            "it had read before saving (or waited longer than the busy timeout). Nothing was "
            "saved: roll back and retry, saving before reading in the same transaction or "
            "beginning it with BEGIN IMMEDIATE (README: Storing storyboards)"
        )

    @contextmanager
    def hold_writers_off(
        self, connection: sa.Connection, losing: list[str], every_table: list[str]
    ) -> Iterator[None]:
        # The migration lock is the database's write lock (BEGIN IMMEDIATE), held from before
        # the count to the commit: no writer gets in between.
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


def check_foreign_keys(connection: sa.Connection) -> None:
    """Raise (so the transaction rolls back) if any row points at a missing parent."""
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        shown = "; ".join(
            f"{table} rowid {rowid} -> missing {parent}" for table, rowid, parent, _ in problems[:5]
        )
        raise ForeignKeyViolation(
            f"{len(problems)} row(s) violate foreign keys after the migration ({shown}); "
            "the migration was rolled back. Repair or delete those rows, then upgrade again."
        )


@contextmanager
def _rows_changed(
    connection: sa.Connection, bookkeeping: Collection[str]
) -> Iterator[Callable[[], bool]]:
    """Watch the run: ``PRAGMA foreign_key_check`` reads every row of every table, which on a
    big database costs more than the migration itself, so it runs only when needed."""
    changed = False

    def watch(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal changed
        if changed or any(table in statement for table in bookkeeping):
            return  # vidpipe's own version and record rows point at nothing
        changed = bool(_ROW_CHANGING.match(statement))

    event.listen(connection, "before_cursor_execute", watch)
    try:
        yield lambda: changed
    finally:
        event.remove(connection, "before_cursor_execute", watch)


def uses_real_sqlite_transactions(engine: sa.Engine) -> bool:
    """Whether ``engine`` was configured by :meth:`SQLite.configure_engine` (DDL is
    transactional)."""
    return event.contains(engine, "begin", _on_begin)


def sqlite_pragma(dbapi_connection: Any, statement: str) -> Any:
    """Run a PRAGMA on the raw driver connection (no SQLAlchemy autobegin) and return its value."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        row = cursor.fetchone()
        return row[0] if row else None
    finally:
        cursor.close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    _on_read_only_connect(dbapi_connection, _record)
    # WAL lets readers go on while a writer commits; in-memory databases keep "memory". It is
    # written into the file, so a read-only connection (above) leaves it out.
    sqlite_pragma(dbapi_connection, "PRAGMA journal_mode=WAL")


def _on_read_only_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection settings only: nothing here changes the file."""
    dbapi_connection.isolation_level = None
    sqlite_pragma(dbapi_connection, "PRAGMA foreign_keys=ON")
    sqlite_pragma(dbapi_connection, f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _on_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql(connection.info.get(SQLITE_BEGIN_STATEMENT, "BEGIN"))
