"""What every database is asked, and the answer for one vidpipe has no module for.

vidpipe runs the same revisions and the same store on SQLite, PostgreSQL and MariaDB/MySQL,
but each database locks, times out, reports a lock wait and alters a table its own way. Those
differences live in one class per dialect, in the shape of Alembic's ``DefaultImpl`` and its
``PostgresqlImpl``: a subclass names the SQLAlchemy dialect it serves in ``__dialect__`` and is
registered under that name; :func:`vidpipe.db.dialects.dialect_for` finds it. Everywhere else
vidpipe asks the class (``dialect_for(connection.dialect).is_lock_wait(exc)``) instead of
branching on the dialect's name, so "what happens on MariaDB?" is answered by
``vidpipe/db/dialects/mariadb.py`` alone, and MySQL is one small subclass of it.

A difference that is only a value (the UUID type SQLAlchemy renders, ``JSONB`` on PostgreSQL)
stays with the models and types; what lives here is behaviour.

The base class is what a dialect without a module of its own gets: no connect-time settings,
no lock-wait diagnosis, plain index builds, and a clear ``NotImplementedError`` where vidpipe
cannot guess: no migration lock it could take, no way to hold writers off a table, no tag
look-up.

Importing this package reads nothing, connects to nothing and leaves Alembic's runtime
unloaded: the store uses it for the tag look-up and the engine factory for connect options.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.compiler import SQLCompiler

from vidpipe.db.errors import MigrationLockTimeout, VidpipeDatabaseError

__all__ = [
    "ANOTHER_SAVE_WON",
    "Blocker",
    "Dialect",
    "Execute",
    "ForeignKey",
    "LockWait",
    "holds_rows",
    "pause",
    "registered",
]

#: Alembic's ``op.execute``: runs a statement online, writes it into the script offline.
Execute = Callable[[sa.Executable | str], None]

#: A foreign key as a revision declares it: its columns and the table it refers to.
ForeignKey = tuple[tuple[str, ...], str]

#: A session holding a lock another one waits for: ``(pid, state, query)``.
Blocker = tuple[int, str, str]

#: What a save that lost to another one is told (``{projects}``: the projects it saved), where
#: the database says no more than that another transaction wrote first.
ANOTHER_SAVE_WON = (
    "Another save of project {projects} won: it committed a storyboard after this transaction "
    "began. Nothing was saved: roll back, and retry to replace it"
)

#: Every dialect class that names its SQLAlchemy dialect, by that name (filled on import).
_REGISTRY: dict[str, type["Dialect"]] = {}


class LockWait:
    """How a run waits for the migration lock that another process holds: at most ``timeout``
    seconds, said on ``logger`` when the wait starts, every ``report_every`` seconds while it
    lasts, and when it ends (vidpipe.db.runner.locking makes one for each run)."""

    def __init__(self, timeout: float, report_every: float, logger: logging.Logger) -> None:
        self.timeout = timeout
        self.report_every = report_every
        self.logger = logger

    def timed_out(self, what: str) -> MigrationLockTimeout:
        """The error of a run that waited ``timeout`` seconds for the lock ``what``."""
        return MigrationLockTimeout(
            f"Another process has held vidpipe's migration lock ({what}) for more than "
            f"{self.timeout:g} s; it is probably migrating this database right now. Nothing was "
            "changed. Wait for it and run again, or give a longer timeout (-x "
            "lock_timeout=SECONDS on the alembic command line, lock_timeout=... in the Python "
            "API)."
        )

    @contextmanager
    def logged(self, what: str) -> Iterator[None]:
        """Log the wait for the lock ``what`` that the block does: its start, progress and end."""
        self.logger.info(
            "Waiting up to %g s for vidpipe's migration lock (%s): another process holds it, "
            "probably migrating this database",
            self.timeout,
            what,
        )
        started = time.monotonic()
        try:
            with self._progress_reports(what, started):
                yield
        except MigrationLockTimeout:
            self.logger.warning(
                "Gave up waiting for vidpipe's migration lock (%s) after %.1f s",
                what,
                time.monotonic() - started,
            )
            raise
        self.logger.info(
            "Got vidpipe's migration lock (%s) after waiting %.1f s",
            what,
            time.monotonic() - started,
        )

    @contextmanager
    def _progress_reports(self, what: str, started: float) -> Iterator[None]:
        """Log "still waiting" every ``report_every`` seconds until the block ends.

        From a thread: the wait itself blocks inside the database driver. The thread is joined
        before the block's outcome is logged, so no progress line follows it.
        """
        stop = threading.Event()

        def report() -> None:
            while not stop.wait(self.report_every):
                self.logger.info(
                    "Still waiting for vidpipe's migration lock (%s): %.1f s of at most %g s",
                    what,
                    time.monotonic() - started,
                    self.timeout,
                )

        reporter = threading.Thread(target=report, name="vidpipe-lock-wait-reports", daemon=True)
        reporter.start()
        try:
            yield
        finally:
            stop.set()
            reporter.join()


def pause(connection: sa.Connection, seconds: float) -> None:
    """Sleep; under an asyncio driver without blocking the host's event loop."""
    if connection.dialect.is_async:
        # The run is inside AsyncConnection.run_sync, on a greenlet of the event loop.
        sa.util.await_(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)



def holds_rows(bind: sa.Connection, table_name: str) -> bool:
    """Whether ``table_name`` holds a row (one index or heap page read, not a count)."""
    quoted = bind.dialect.identifier_preparer.quote(table_name)
    return bool(bind.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {quoted})").scalar())


def registered(name: str) -> type["Dialect"] | None:
    """The class registered for the SQLAlchemy dialect ``name``, if any."""
    return _REGISTRY.get(name)


class Dialect:
    """vidpipe's behaviour on one database; one instance per SQLAlchemy dialect name."""

    #: The SQLAlchemy dialect name (``sa.Dialect.name``) this class serves; subclasses that set
    #: it are registered under it, as Alembic's impls are.
    __dialect__: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("__dialect__")
        if name is not None:
            _REGISTRY[name] = cls

    def __init__(self, name: str) -> None:
        #: The SQLAlchemy dialect name this instance was looked up by.
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self.name!r}>"

    # Engines ---------------------------------------------------------------------------------

    def configure_engine(self, engine: sa.Engine) -> None:
        """Give every connection of ``engine`` the settings vidpipe relies on; safe twice."""

    def connect_args(self, url: URL) -> dict[str, Any]:
        """Driver arguments that keep ``url``'s driver correct behind a transaction-mode
        pooler (vidpipe.db.runner.pooler)."""
        return {}

    def without_prepared_statements(
        self, connection: sa.Connection
    ) -> AbstractContextManager[None]:
        """Run the block with the driver's automatic server-side prepared statements off."""
        return nullcontext()

    def read_only_url(self, url: URL) -> URL | None:
        """``url`` made to open the database for reading only, where the URL decides that
        (None: it names a database file that does not exist); elsewhere ``url`` itself."""
        return url

    def explain_open_error(
        self, url: URL, exc: sa.exc.OperationalError
    ) -> VidpipeDatabaseError | None:
        """Why connecting to ``url`` failed with ``exc``, where the driver's message leaves out
        what to fix; None elsewhere."""
        return None

    # The migration lock (vidpipe.db.runner.locking) ----------------------------------------

    def migration_lock(
        self, connection: sa.Connection, wait: LockWait
    ) -> AbstractContextManager[None]:
        """Hold vidpipe's migration lock on ``connection``'s database while the block runs,
        taken before Alembic reads the version table; if another process holds it, wait as
        ``wait`` says, then raise ``wait.timed_out(...)``."""
        raise NotImplementedError(f"no migration lock for dialect {self.name!r}")

    # Commits in the middle of a run (vidpipe.db.runner.table_locks, index builds) ----------

    def can_commit_mid_run(self, bind: sa.Connection) -> bool:
        """Whether the run on ``bind`` may commit mid-way with its migration lock kept (only
        worth it where a commit ends locks that stop the application's writes)."""
        return False

    def commit_mid_run(self, bind: sa.Connection) -> None:
        """Commit the run's transaction, keeping the migration lock; the next statement begins
        the next one, as the run's (after :meth:`can_commit_mid_run`)."""
        raise NotImplementedError(f"a run on {self.name} cannot commit mid-way")

    def outside_the_run_transaction(self, bind: sa.Connection) -> AbstractContextManager[None]:
        """Commit the run's transaction, run the block in autocommit, then begin the next one,
        keeping the migration lock throughout (after :meth:`can_commit_mid_run`)."""
        raise NotImplementedError(f"a run on {self.name} cannot commit mid-way")

    def commits_mid_run_now(self, bind: sa.Connection, own_tables: Collection[str]) -> bool:
        """Whether the run's transaction holds a lock that stops the application's writes to a
        table with rows, but ``own_tables`` (the run's version table), so that
        vidpipe.db.runner.table_locks commits it (after :meth:`can_commit_mid_run`)."""
        locked = self.tables_blocking_writes(bind)
        return any(holds_rows(bind, name) for name in locked if name not in own_tables)

    def tables_blocking_writes(self, bind: sa.Connection) -> list[str]:
        """The tables of the run's schema on which its transaction holds a lock that stops the
        application's writes (vidpipe.db.runner.table_locks commits then, if they hold rows)."""
        return []

    def validate_foreign_keys(
        self, bind: sa.Connection, execute: Execute, table_name: str, declared: set[ForeignKey]
    ) -> None:
        """Check the rows against the ``declared`` foreign keys of ``table_name`` that were
        added without checking them (vidpipe.db.runner.table_locks); online only."""

    def add_foreign_key_in_place(
        self, bind: sa.Connection, execute: Execute, constraint: sa.ForeignKeyConstraint
    ) -> bool:
        """Add ``constraint`` to its existing table without stopping the application's writes,
        where the database can and the rows allow it; False where it did not (the caller then
        adds it the ordinary way). Online only."""
        return False

    def alter_without_queueing(
        self, bind: sa.Connection, table_name: str, alter: Callable[[], None]
    ) -> None:
        """Run ``alter`` (one ``ALTER TABLE`` of ``table_name``) so that it never waits in a
        lock queue ahead of the application's statements, where the database queues them
        behind it; online only."""
        alter()

    # Index builds (vidpipe.db.idempotent) -------------------------------------------------

    def build_index(
        self,
        bind: sa.Connection | None,
        execute: Execute,
        index: sa.Index,
        table_name: str,
        check: Callable[[], None] | None = None,
    ) -> None:
        """Create ``index`` on ``table_name`` without stopping writes to the rows it holds,
        where the database needs telling; ``bind`` is None offline (the script is for an empty
        database). ``check`` (if given) runs just before the build, online only."""
        if bind is not None and check is not None:
            check()
        execute(CreateIndex(index))

    def drop_invalid_index(
        self, bind: sa.Connection | None, execute: Execute, name: str, table_name: str
    ) -> bool:
        """Drop the index ``name`` if a failed build left it unusable; True if dropped (it is
        then built again)."""
        return False

    # Migration runs (vidpipe.db.runner.environment) ----------------------------------------

    #: Whether ALTER TABLE cannot change a column's type, NOT NULL or default, nor add a
    #: foreign key, so that the table is rebuilt instead (Alembic's batch mode: move and copy).
    alters_by_rebuilding: ClassVar[bool] = False

    def alter_in_place(
        self,
        bind: sa.Connection,
        table: sa.Table,
        changes: dict[str, dict[str, Any]],
        foreign_keys: list[sa.ForeignKeyConstraint],
    ) -> bool:
        """Make ``changes`` (``alter_column`` arguments per column of ``table``) and add
        ``foreign_keys`` without the rebuild a dialect that :attr:`alters_by_rebuilding` would
        make, where they change no stored value; False where it did not (the caller then
        alters, or rebuilds, the ordinary way). Online only."""
        return False

    def migration_options(self, connection: sa.Connection | None) -> dict[str, Any]:
        """The ``context.configure`` options vidpipe's revisions need here, beyond those of
        every dialect; ``connection`` is None offline (``--sql``)."""
        return {}

    @contextmanager
    def around_run(self, connection: sa.Connection) -> Iterator[None]:
        """Prepare ``connection`` for a whole run, outside its transaction (entered before the
        migration lock, left after the run committed or rolled back)."""
        yield

    def name_failure(
        self, connection: sa.Connection, exc: sa.exc.DBAPIError
    ) -> VidpipeDatabaseError | None:
        """A vidpipe error that names what really made the run on ``connection`` fail, with
        the real driver error as its ``__cause__``, where ``exc`` hides it; None elsewhere."""
        return None

    @contextmanager
    def around_revisions(
        self, connection: sa.Connection, bookkeeping: Collection[str]
    ) -> Iterator[None]:
        """Run the block (the revisions) inside the run's transaction, checking what the
        dialect cannot check statement by statement; raising rolls the run back."""
        yield

    def check_conversion(
        self, connection: sa.Connection, table: sa.Table, column: str, new_type: Any
    ) -> None:
        """Raise before anything changes if a value of ``table.column`` cannot take
        ``new_type`` (vidpipe.db.runner.adoption normalises an older vidpipe's types)."""

    def type_change_options(
        self, connection: sa.Connection, column: sa.Column[Any]
    ) -> dict[str, Any]:
        """Extra ``alter_column`` arguments that change ``column`` to its declared type in
        place, keeping every stored value."""
        return {}

    def run_timeouts(self, lock_timeout: str, statement_timeout: str) -> list[str]:
        """The statements that give the run's transaction its timeouts (each a checked
        duration such as ``5s``); none where the transaction cannot carry them."""
        return []

    # Lock waits of a run (vidpipe.db.runner.lock_retry) ------------------------------------

    @contextmanager
    def session_lock_wait(self, connection: sa.Connection, seconds: int | None) -> Iterator[None]:
        """Run the block (a whole run, its retries included) with the session's wait for a
        table's lock limited to ``seconds`` (None: the server's own limit), where the limit is
        a session setting rather than the transaction's."""
        yield

    def is_lock_wait(self, exc: sa.exc.DBAPIError) -> bool:
        """Whether ``exc`` says a statement gave up waiting for a lock (or lost a deadlock):
        the run is then tried again."""
        return False

    def blockers(
        self, connection: sa.Connection, tables: list[str]
    ) -> tuple[str | None, list[Blocker]]:
        """Which of ``tables`` (those a statement that waited named) another session holds a
        lock on now, and those sessions; where the database cannot tell, the first table and
        no sessions. Called outside the failed attempt's transaction."""
        return (tables[0] if tables else None), []

    # The data-loss guard (vidpipe.db.runner.data_loss) -------------------------------------

    def hold_writers_off(
        self, connection: sa.Connection, losing: list[str], every_table: list[str]
    ) -> AbstractContextManager[None]:
        """Keep the application's writers off ``losing`` (the existing tables a downgrade drops
        or drops columns of) from now until the downgrade is done, so that a count made in the
        block is still true when the DROP runs. ``every_table`` is every table the downgrade
        may touch, the version table included. Entered inside the migration's transaction,
        after its timeouts are set."""
        raise NotImplementedError(
            f"vidpipe cannot keep writers off a table on {self.name}: no downgrade that drops "
            "data can be checked there"
        )

    # The store (vidpipe.db.store) ----------------------------------------------------------

    def tags_contain(
        self,
        column: sa.ColumnElement[Any],
        tag: sa.BindParameter[str],
        compiler: SQLCompiler,
        **kw: Any,
    ) -> str:
        """SQL for "the JSON array of strings in ``column`` holds ``tag`` as one element",
        whole, exact and case-sensitive whatever its characters (vidpipe.db.store.lookups)."""
        raise NotImplementedError(f"No tag look-up for the {self.name} dialect")

    #: Whether a save can wait for the database's lock only in a write, so that it writes (the
    #: projects' UPDATE) before it reads which tables hold their rows; elsewhere it locks the
    #: projects with ``SELECT ... FOR UPDATE`` first (vidpipe.db.store.writes).
    save_writes_first: ClassVar[bool] = False

    def statements_together(self, connection: sa.Connection) -> AbstractContextManager[None]:
        """Send the block's statements, whose results nobody reads, in one round trip where the
        driver can; a database error is raised as SQLAlchemy raises a statement's."""
        return nullcontext()

    #: The bytes an unsized TEXT column holds, where a storyboard's text can exceed them (None:
    #: no limit a storyboard reaches before it exhausts memory).
    text_column_bytes: ClassVar[int | None] = None

    def max_statement_bytes(self, connection: sa.Connection) -> int | None:
        """The largest statement the server takes on ``connection`` (None: none a storyboard
        reaches); vidpipe.db.store.limits refuses a save that would need a larger one."""
        return None

    def is_duplicate_key(self, exc: sa.exc.DBAPIError) -> bool:
        """Whether ``exc`` is a unique constraint's refusal (vidpipe.db.store.explain: another
        save of the same project inserted the same scene first)."""
        return False

    def lost_race(self, exc: sa.exc.DBAPIError) -> str | None:
        """Why the database refused a save because another transaction wrote first, as a
        message with a ``{projects}`` slot; None if ``exc`` says something else."""
        return None
