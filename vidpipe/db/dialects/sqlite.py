"""SQLite, the embedded default: what vidpipe does differently there, and why.

- Every connection of an engine vidpipe makes, or of one given to
  :func:`vidpipe.db.engine.configure_sqlite`, gets ``foreign_keys=ON`` (SQLite's default is
  off), WAL (readers go on while a writer commits), a 30 s ``busy_timeout`` (pysqlite's own
  is 5 s) and a real ``BEGIN``: the driver's transaction handling never begins before DDL, so
  without it a failed migration would leave half its tables behind. A read-only URL
  (``mode=ro``) gets the per-connection settings only, since WAL is written into the file.
- The migration lock is an exclusive ``flock`` on ``<database>-vidpipe-migration.lock``
  (released by the kernel when the process dies; the run removes the file at its end), then
  the database's own write lock: each of the run's transactions opens with ``BEGIN
  IMMEDIATE``, which takes it at once, and ``busy_timeout`` is the wait. The file lock keeps
  other runs out while the run commits between tables and after each index build, so that the
  application's writers get the write lock meanwhile (vidpipe.db.dialects.sqlite_commits, which
  says why a file lock); without ``flock`` (Windows), the write lock alone, held for the whole
  run. A connection handed in inside a transaction, or an engine whose BEGIN vidpipe does not
  control, leaves transaction and locking to the caller.
- Index builds keep the plain ``CREATE INDEX``, inside the run's transaction (committed after
  it). A unique index is built without the scan for repeated keys first: the build fails on
  them, and only then the scan names them; before every build it held the write lock for
  seconds, as long as the build again.
- The run's connection gets a 256 MiB page cache (:data:`RUN_CACHE_KIB`): a batch rebuild
  copies a table into a new one whose primary key index fills in random order.
- SQLite cannot ALTER most things, so revisions run in batch mode (``render_as_batch``: the
  table is rebuilt, moved and copied). Batch mode drops and renames tables, which with foreign
  keys on would cascade or fail, so a run turns them off (on the raw connection, before its
  transaction: the pragma is ignored inside one) and, if it changed any row, runs ``PRAGMA
  foreign_key_check`` before it commits (it reads every row, so only then): a row left
  pointing nowhere rolls the run back with :class:`~vidpipe.db.errors.ForeignKeyViolation`.
  The same holds for the idempotent helpers and the adoption of an older database
  (``alters_by_rebuilding``): a table's changes, and the foreign key of a column they add, go
  into one rebuild, which keeps every stored value as it is.
- Except where nothing stored changes: a table that only gets column defaults and foreign
  keys has its ``CREATE TABLE`` text edited in ``sqlite_schema`` instead, as SQLite documents
  for those changes (vidpipe.db.dialects.sqlite_schema_edit): no copy, so the application's
  writers do not wait for one (issue 17).
- A tag look-up (vidpipe.db.store.lookups) reads each element with ``json_each``, which decodes
  ``\\u`` escapes; ``=`` on TEXT is binary here, so the match is exact.
- One writer at a time: a save whose transaction read before it wrote cannot wait for the
  write lock ("database is locked" at once), and is told so, with the way out (save first, or
  ``BEGIN IMMEDIATE``), by vidpipe.db.store.explain. The store's own save writes first
  (``save_writes_first``: the projects' UPDATE, then the look-up).
- The read-only commands (``check``, ``current``) open the file with ``mode=ro``
  (:meth:`SQLite.read_only_url`): they work on a read-only file, change no file (not even to
  WAL), and refuse a path where there is no file instead of creating an empty database. A file
  SQLite cannot open ("unable to open database file") is named with its path and the likely
  reason (:meth:`SQLite.explain_open_error`).
- A downgrade that drops data is counted first (vidpipe.db.runner.data_loss); no writer can
  add a row before the DROP: the migration holds the database's write lock from the count on,
  until the transaction commits (as PostgreSQL's table lock, which ends there too).
"""

import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.compiler import SQLCompiler

from vidpipe.db.dialects import sqlite_commits, sqlite_schema_edit
from vidpipe.db.dialects.base import Dialect, Execute, LockWait
from vidpipe.db.errors import DatabaseFileError, VidpipeDatabaseError

__all__ = [
    "RUN_CACHE_KIB",
    "SQLITE_BEGIN_STATEMENT",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLite",
    "sqlite_path",
    "sqlite_pragma",
    "uses_real_sqlite_transactions",
]

#: How long a SQLite connection waits for another writer before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: ``Connection.info`` key: the statement that opens the connection's next transaction on SQLite
#: (the migration lock sets "BEGIN IMMEDIATE"); absent means a plain deferred "BEGIN".
SQLITE_BEGIN_STATEMENT = "vidpipe.sqlite_begin_statement"
#: SQLite's page cache during a run, in KiB (the default is 2,000 KiB): a batch rebuild copies
#: a table into a new one whose primary key index fills in random order. Measured on
#: vidpipe_0006 at 500,000 rows per table: the copies of ``scene_manifests`` and
#: ``scene_audio_manifests`` took 28 s each with the default cache, 12 s with 256 MiB.
RUN_CACHE_KIB = 262_144


class SQLite(Dialect):
    """SQLite through sqlite3 or aiosqlite."""

    __dialect__ = "sqlite"
    alters_by_rebuilding = True
    # A transaction that has read cannot wait for the write lock (SQLITE_BUSY at once, whatever
    # the busy timeout): a save takes it with its first statement, the projects' UPDATE.
    save_writes_first = True

    def configure_engine(self, engine: sa.Engine) -> None:
        if event.contains(engine, "begin", _on_begin):
            return
        read_only = engine.url.query.get("mode") == "ro"
        event.listen(engine, "connect", _on_read_only_connect if read_only else _on_connect)
        event.listen(engine, "begin", _on_begin)

    def read_only_url(self, url: URL) -> URL | None:
        # A read-only command must work on a read-only file and leave any file as it was
        # (configure_engine then skips the switch to WAL). In-memory SQLite stays as it is.
        database = url.database
        if database is None or _in_memory(url):
            return url
        if database.startswith("file:"):
            return url.update_query_dict({"mode": "ro", "uri": "true"})
        path = Path(database)
        if not path.is_file():
            return None
        return url.set(database=f"file:{quote(str(path.resolve()))}").update_query_dict(
            {"mode": "ro", "uri": "true"}
        )

    def explain_open_error(
        self, url: URL, exc: sa.exc.OperationalError
    ) -> VidpipeDatabaseError | None:
        # SQLite says only "unable to open database file", without the path or the reason.
        if _in_memory(url) or "unable to open database file" not in str(exc.orig):
            return None
        path = sqlite_path(url)
        if not path.parent.is_dir():
            reason = f"its directory {path.parent} does not exist. Create it, or fix the path"
        elif not path.exists() and not os.access(path.parent, os.W_OK):
            reason = f"the file does not exist and its directory {path.parent} is not writable"
        else:
            reason = "check that it is a readable and writable file (and its directory writable)"
        return DatabaseFileError(f"SQLite cannot open the database file {path}: {reason}.")

    @contextmanager
    def migration_lock(self, connection: sa.Connection, wait: LockWait) -> Iterator[None]:
        # The lock file keeps other runs out (across the run's commits mid-way, where it has
        # one); BEGIN IMMEDIATE takes the database's write lock at once; busy_timeout is the wait.
        if connection.in_transaction() or not uses_real_sqlite_transactions(connection.engine):
            # The caller's transaction, or an engine whose BEGIN vidpipe does not control: the
            # caller owns transaction and locking (see README, "Safety").
            yield
            return
        with sqlite_commits.holding_lock_file(connection, wait) as may_commit:
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
                        with wait.logged(what):
                            transaction = _begin_immediate(connection, raw, wait.timeout)
                            if transaction is None:
                                raise wait.timed_out(what)
                finally:
                    if not may_commit:
                        del connection.info[SQLITE_BEGIN_STATEMENT]
                    sqlite_pragma(raw, f"PRAGMA busy_timeout={previous}")
                try:
                    # Committed mid-run (vidpipe.db.dialects.sqlite_commits), the run's last
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

    def can_commit_mid_run(self, bind: sa.Connection) -> bool:
        # Only while the lock file keeps other runs out: the write lock alone cannot.
        return sqlite_commits.may_commit_mid_run(bind)

    def commits_mid_run_now(self, bind: sa.Connection, own_tables: Collection[str]) -> bool:
        # The run's transaction holds the one write lock of the whole database.
        return True

    def commit_mid_run(self, bind: sa.Connection) -> None:
        sqlite_commits.commit_mid_run(bind)

    def build_index(
        self,
        bind: sa.Connection | None,
        execute: Execute,
        index: sa.Index,
        table_name: str,
        check: Callable[[], None] | None = None,
    ) -> None:
        """The build itself finds repeated keys (it fails), so ``check`` (the scan that names
        them) runs only then, not before every build: a scan of a table with rows holds the
        database's one write lock for seconds, as long as the build again."""
        if bind is None or check is None:
            execute(CreateIndex(index))
            return
        try:
            with bind.begin_nested():
                execute(CreateIndex(index))
        except sa.exc.IntegrityError:
            check()
            raise

    def alter_in_place(
        self,
        bind: sa.Connection,
        table: sa.Table,
        changes: dict[str, dict[str, Any]],
        foreign_keys: list[sa.ForeignKeyConstraint],
    ) -> bool:
        """Defaults and foreign keys by editing the table's definition, when they are all the
        change (vidpipe.db.dialects.sqlite_schema_edit); a type or NULL change is a rebuild.

        The edit goes through the raw connection, past Alembic: only upgrades' adoption asks
        (vidpipe.db.runner.adoption), never a downgrade, whose steps run once to be planned
        (vidpipe.db.runner.data_loss) with nothing written."""
        changed = {key for change in changes.values() for key in change}
        if any(key != "server_default" and not key.startswith("existing_") for key in changed):
            return False
        compiler = bind.dialect.ddl_compiler(bind.dialect, CreateTable(table))
        defaults = {
            name: compiler.get_column_default_string(
                sa.Column(name, table.c[name].type, server_default=change["server_default"])
            )
            for name, change in changes.items()
        }
        constraints = [compiler.process(fk) for fk in foreign_keys]
        raw: Any = bind.connection.dbapi_connection
        cursor = raw.cursor()
        try:
            done = sqlite_schema_edit.rewrite_in_place(cursor, table.name, defaults, constraints)
        finally:
            cursor.close()
        if done:
            # As after a rebuild, the table's rows are checked against its foreign keys (the
            # ones added too) before the run commits.
            sqlite_commits.changed_in_place(bind, table.name)
        return done

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
            with _run_cache(raw):
                yield
        finally:
            if was_on:
                sqlite_pragma(raw, "PRAGMA foreign_keys=ON")

    def name_failure(
        self, connection: sa.Connection, exc: sa.exc.DBAPIError
    ) -> VidpipeDatabaseError | None:
        # SQLite rolls the whole transaction back on a ``disk I/O error`` or a full disk; a
        # batch rebuild then fails to drop its ``_alembic_tmp_*`` table, and Alembic's clean-up
        # error ("no such table: _alembic_tmp_assets") replaces the real one, which Python
        # keeps only in the exception's chain.
        cause = _write_failure(exc)
        if cause is None:
            return None
        path = sqlite_path(connection.engine.url)
        error = DatabaseFileError(
            f"SQLite could not write the database file {path}: {cause.orig}; most often the "
            "file could not grow (the disk is full, or a file-size limit was reached). SQLite "
            "rolled the migration's transaction back, so the database is at the revision it "
            "was at. Free space (or raise the limit), then run again."
        )
        error.__cause__ = cause
        return error

    @contextmanager
    def around_revisions(
        self, connection: sa.Connection, bookkeeping: Collection[str]
    ) -> Iterator[None]:
        """With foreign keys off, a rebuild could leave a row pointing nowhere: the foreign
        keys of the tables changed since the last commit mid-run are checked before the run's
        last commit (vidpipe.db.dialects.sqlite_commits checked the others before theirs)."""
        with sqlite_commits.watching_changed_tables(connection, bookkeeping) as changed:
            yield
            sqlite_commits.check_foreign_keys(connection, changed())

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
            "beginning it with BEGIN IMMEDIATE (docs/store.md)"
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


@contextmanager
def _run_cache(raw: Any) -> Iterator[None]:
    """Give the run's connection a page cache big enough for its table rebuilds
    (:data:`RUN_CACHE_KIB`), and its own back afterwards (the memory is only taken as pages
    are read)."""
    previous = sqlite_pragma(raw, "PRAGMA cache_size")
    sqlite_pragma(raw, f"PRAGMA cache_size=-{RUN_CACHE_KIB}")
    try:
        yield
    finally:
        sqlite_pragma(raw, f"PRAGMA cache_size={previous}")


def sqlite_path(url: URL) -> Path:
    """The absolute path of a SQLite URL's file (``sqlite:///x.db``, ``file:x.db?mode=ro``)."""
    database = url.database or ""
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database).resolve()


def _in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


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


#: SQLite's primary result codes for a file that could not be written: SQLITE_IOERR (its
#: extended codes share the low byte) and SQLITE_FULL.
_WRITE_FAILURES = (10, 13)


def _write_failure(exc: BaseException) -> sa.exc.DBAPIError | None:
    """The write failure in ``exc``'s chain of causes and contexts, if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa.exc.DBAPIError):
            code = getattr(seen.orig, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in _WRITE_FAILURES:
                return seen
        seen = seen.__cause__ or seen.__context__
    return None
