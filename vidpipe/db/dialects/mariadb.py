"""MariaDB (and MySQL): what vidpipe does differently there, and why.

- The migration lock is ``GET_LOCK`` on a name derived from the database (:data:`LOCK_PREFIX`
  and the database's name, hashed if longer than the 64 characters a name may have: the names
  are server-wide), with its own timeout. It belongs to the session, not to a transaction, so
  it outlives the commits of the run's DDL; the server drops it if the session dies.
- Index builds keep the plain ``CREATE INDEX``: InnoDB builds a secondary index in place while
  writes continue (``ALGORITHM=INPLACE, LOCK=NONE`` is its default, unique ones included); only
  the brief metadata locks at the start and the end wait for running transactions.
- No connect-time settings: PyMySQL, aiomysql and asyncmy need none for vidpipe.
- DDL commits itself, so no run is one transaction: each revision is recorded as soon as it
  is done (``transaction_per_migration``), and a run that dies resumes from the last finished
  revision; the revisions' idempotency covers the statements of the one it was in.
- A DDL statement waits for its table's metadata lock up to the session's ``lock_wait_timeout``,
  a day by default, while every later query on the table queues behind it. A run sets it to
  ``ddl_lock_timeout`` rounded up to whole seconds (the server knows no finer) and gives the
  session its own value back afterwards. Error 1205 (that timeout; InnoDB row locks give it
  too) and 1213 (deadlock) are lock waits: vidpipe.db.runner.lock_retry tries the run again.
  Who holds the table is not looked up (no ``pg_locks`` here): the error says "another
  transaction".
- Two of a run's statements stopped the application's writes (issue 17), each answered here:

  - A foreign key added with ``foreign_key_checks=1`` makes InnoDB copy the table under
    ``LOCK=SHARED``: no write to it, nor to the table it refers to, for as long as the copy
    takes (15-25 s at 1,000,000 rows). When the key's columns hold only NULL (checked with one
    read of the table, which takes no lock), there is nothing to check, and the key is added
    with ``foreign_key_checks=0`` in place (``ALGORITHM=INPLACE, LOCK=NONE``:
    ``add_foreign_key_in_place``): writes go on throughout. Rows written while that statement
    runs are not checked against the key; only code that knows the new column writes it, and
    that code runs after the revision.
  - A DDL statement waiting for its table's metadata lock queues every later statement on that
    table behind it; and at its commit an ``ALTER`` of a parent table takes InnoDB's lock on
    each child table in turn, so an application transaction that wrote one child and goes on
    to another deadlocks with it, and MariaDB rolls back the application's transaction (error
    1213). So the run's ``ALTER`` statements never queue (``alter_without_queueing``): each
    first takes its table and the tables that refer to it with ``LOCK TABLES ... WRITE`` (the
    server's metadata locks only, ``innodb_table_locks = 0``: all at once or not at all, and no
    application transaction holds InnoDB locks on a table whose metadata lock it does not
    hold), under ``lock_wait_timeout = 0`` and ``innodb_lock_wait_timeout = 0``, and tries
    again every 10 ms while one is in use, for at most the run's ``lock_wait_timeout``
    (``ddl_lock_timeout``, set by ``session_lock_wait``); after that the ``ALTER`` is tried
    once alone, and its lock-wait error goes to vidpipe.db.runner.lock_retry like any other.

- A downgrade that drops data is counted first (vidpipe.db.runner.data_loss), with the
  application's writers held off by ``LOCK TABLES ... WRITE`` on every vidpipe table and the
  version table: DDL commits at once, so no transaction can hold a lock across it, while
  ``LOCK TABLES`` outlives COMMIT and DDL. It needs the ``LOCK TABLES`` privilege. Renaming
  each table aside and counting the copy was considered: the revisions drop tables by name.
- A tag look-up (vidpipe.db.store.lookups) uses ``JSON_CONTAINS``, which compares the stored
  text (exact, but blind to the ``\\u`` escapes SQLAlchemy stores non-ASCII characters as), and
  for documents holding a backslash ``JSON_TABLE``, comparing bytes: the text collations fold
  case and ignore trailing spaces.
- Concurrent saves that replace stored storyboards can deadlock in InnoDB's gap locks; InnoDB
  then rolls the victim's whole transaction back (the caller's earlier work included), and the
  save says so (vidpipe.db.store.explain).
- A storyboard can reach two limits here, so a save checks its rows before sending anything
  (vidpipe.db.store.limits): a ``TEXT`` column holds 65,535 bytes (strict mode raises a raw
  ``DataError``, otherwise the server cuts the value silently), and a statement larger than
  ``max_allowed_packet`` makes the server drop the connection, the caller's transaction with it.

MySQL gets all of this through :class:`MySQL`, a subclass registered under SQLAlchemy's
``mysql`` name, untested against a MySQL server; what differs there is a value, not behaviour
(no native UUID: SQLAlchemy renders ``CHAR(32)``).
"""

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from vidpipe.db.dialects.base import Dialect, Execute, LockWait

__all__ = ["LOCK_PREFIX", "MariaDB", "MySQL"]

_log = logging.getLogger(__name__)

#: GET_LOCK names are server-wide (and at most 64 characters): the database name is part of it.
LOCK_PREFIX = "vidpipe_migrations:"
_LOCK_NAME_LIMIT = 64
#: ER_LOCK_WAIT_TIMEOUT and ER_LOCK_DEADLOCK.
_LOCK_WAITS = (1205, 1213)
_DEADLOCK = 1213
_DUPLICATE_KEY = 1062
_LOCK_WAIT_TIMEOUT = 1205
#: How long an ``ALTER`` that found a lock it needs taken waits before it is sent again: a few
#: of the application's short transactions.
_ALTER_RETRY_EVERY = 0.01
#: ``Connection.info`` key of the session's max_allowed_packet, read once per connection.
_PACKET_KEY = "vidpipe.max_allowed_packet"


class MariaDB(Dialect):
    """MariaDB through PyMySQL, aiomysql or asyncmy (tested on 10.11)."""

    __dialect__ = "mariadb"
    #: What an unsized ``sa.Text`` becomes here.
    text_column_bytes = 2**16 - 1

    @contextmanager
    def migration_lock(self, connection: sa.Connection, wait: LockWait) -> Iterator[None]:
        # GET_LOCK, on a name derived from the database, with its own timeout.
        external = connection.in_transaction()
        database = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
        lock_name = LOCK_PREFIX + database
        if len(lock_name) > _LOCK_NAME_LIMIT:
            lock_name = LOCK_PREFIX + hashlib.sha1(database.encode()).hexdigest()
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
            with wait.logged(what):
                if not get_lock(wait.timeout):
                    raise wait.timed_out(what)
        with _releasing(connection, "SELECT RELEASE_LOCK(:name)", {"name": lock_name}):
            yield

    def migration_options(self, connection: sa.Connection | None) -> dict[str, Any]:
        # DDL commits implicitly here, so record each revision as soon as it is done: a crash
        # then resumes from the last finished revision, and idempotency covers the rest.
        return {"transaction_per_migration": True}

    @contextmanager
    def session_lock_wait(self, connection: sa.Connection, seconds: int | None) -> Iterator[None]:
        # DDL waits for a metadata lock up to lock_wait_timeout, a day by default, during which
        # every later query on its table queues behind it.
        if seconds is None:
            yield
            return
        previous = int(
            connection.exec_driver_sql("SELECT @@SESSION.lock_wait_timeout").scalar_one()
        )
        connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {seconds}")
        connection.commit()  # the lock and the run expect no open transaction
        try:
            yield
        finally:
            # A connection that died in the run keeps nothing to restore; its error is the one
            # raised.
            with suppress(sa.exc.DBAPIError):
                if connection.in_transaction():
                    connection.rollback()
                connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {previous}")
                connection.commit()

    def add_foreign_key_in_place(
        self, bind: sa.Connection, execute: Execute, constraint: sa.ForeignKeyConstraint
    ) -> bool:
        # Columns holding only NULL: nothing to check, so no table copy under LOCK=SHARED.
        table_name = constraint.table.name
        if not _only_nulls(bind, table_name, list(constraint.column_keys)):
            return False
        statement = str(sa.schema.AddConstraint(constraint).compile(dialect=bind.dialect))
        checks = int(bind.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar_one())
        bind.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        try:
            execute(f"{statement}, ALGORITHM=INPLACE, LOCK=NONE")
        finally:
            bind.exec_driver_sql(f"SET SESSION foreign_key_checks = {checks}")
        return True

    def alter_without_queueing(
        self, bind: sa.Connection, table_name: str, alter: Callable[[], None]
    ) -> None:
        # LOCK TABLES first is what keeps the application's transactions from deadlocking: at
        # its commit, an ALTER of a parent table takes InnoDB's table lock on each child table
        # in turn, and one it took while an application transaction that holds another child
        # waits for it is a deadlock, which InnoDB resolves by rolling back the application.
        quote = bind.dialect.identifier_preparer.quote
        children = bind.execute(
            sa.text(
                "SELECT DISTINCT table_name FROM information_schema.referential_constraints "
                "WHERE constraint_schema = DATABASE() AND referenced_table_name = :table "
                "AND table_name <> :table"
            ),
            {"table": table_name},
        ).scalars()
        lock_tables = "LOCK TABLES " + ", ".join(
            f"{quote(name)} WRITE" for name in [table_name, *sorted(children)]
        )
        budget, innodb_budget, table_locks = bind.exec_driver_sql(
            "SELECT @@SESSION.lock_wait_timeout, @@SESSION.innodb_lock_wait_timeout, "
            "@@SESSION.innodb_table_locks"
        ).one()
        deadline, refused = time.monotonic() + int(budget), False
        # innodb_table_locks = 0: LOCK TABLES takes the server's metadata locks only, all at
        # once; InnoDB's own table locks, taken one table after another, are what deadlocks.
        bind.exec_driver_sql(
            "SET SESSION lock_wait_timeout = 0, innodb_lock_wait_timeout = 0, "
            "innodb_table_locks = 0"
        )
        try:
            while True:
                try:
                    bind.exec_driver_sql(lock_tables)
                    try:
                        alter()
                    finally:
                        bind.exec_driver_sql("UNLOCK TABLES")
                    return
                except sa.exc.OperationalError as exc:
                    if _errno(exc.orig) != _LOCK_WAIT_TIMEOUT:
                        raise
                    if time.monotonic() >= deadline:
                        # Given up: the error to report is the ALTER's own (its statement
                        # names the table for vidpipe.db.runner.lock_retry), from one last try
                        # alone.
                        alter()
                        return
                    if not refused:
                        _log.info(
                            "%s: a lock it needs is held by another transaction; "
                            "sent again every %.0f ms for at most %d s",
                            " ".join(str(exc.statement).split())[:80],
                            _ALTER_RETRY_EVERY * 1000,
                            budget,
                        )
                    refused = True
                time.sleep(_ALTER_RETRY_EVERY)
        finally:
            bind.exec_driver_sql(
                f"SET SESSION lock_wait_timeout = {int(budget)}, "
                f"innodb_lock_wait_timeout = {int(innodb_budget)}, "
                f"innodb_table_locks = {int(table_locks)}"
            )

    def is_lock_wait(self, exc: sa.exc.DBAPIError) -> bool:
        # 1205 comes from a metadata lock after lock_wait_timeout, and from InnoDB row locks
        # after innodb_lock_wait_timeout.
        return _errno(exc.orig) in _LOCK_WAITS

    def tags_contain(
        self,
        column: sa.ColumnElement[Any],
        tag: sa.BindParameter[str],
        compiler: SQLCompiler,
        **kw: Any,
    ) -> str:
        # JSON_CONTAINS compares the stored text of a string, not its value: exact (no case
        # folding, no padding) and never a false match, but blind to a value stored escaped, as
        # SQLAlchemy stores every non-ASCII character (\u00c9 for É). Only a document holding a
        # backslash can hold an escape, so only those rows pay for JSON_TABLE, which decodes
        # each element, compared as bytes (the text collations fold case and ignore trailing
        # spaces). All-ASCII tags, the common case, keep JSON_CONTAINS's speed (about 4x
        # JSON_TABLE's). CHAR(92) is the backslash, spelled so that NO_BACKSLASH_ESCAPES cannot
        # change it.
        column_sql = compiler.process(column, **kw)
        tag_sql = compiler.process(tag, **kw)
        return (
            f"(JSON_CONTAINS({column_sql}, JSON_QUOTE({tag_sql})) = 1 OR "
            f"(INSTR({column_sql}, CHAR(92)) > 0 AND EXISTS (SELECT 1 FROM JSON_TABLE("
            f"{column_sql}, '$[*]' COLUMNS (tag LONGTEXT CHARACTER SET utf8mb4 PATH '$')) AS tags "
            f"WHERE CAST(tags.tag AS BINARY) = CAST(CONVERT({tag_sql} USING utf8mb4) AS BINARY))))"
        )

    def max_statement_bytes(self, connection: sa.Connection) -> int | None:
        # A larger statement makes the server drop the connection, and the caller's transaction
        # with it. Fixed for the session, so read once per DBAPI connection.
        info = connection.info
        if _PACKET_KEY not in info:
            packet = connection.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one()
            info[_PACKET_KEY] = int(packet)
        packet_size: int = info[_PACKET_KEY]
        return packet_size

    def is_duplicate_key(self, exc: sa.exc.DBAPIError) -> bool:
        return _errno(exc.orig) == _DUPLICATE_KEY

    def lost_race(self, exc: sa.exc.DBAPIError) -> str | None:
        # InnoDB rolls the deadlock victim's whole transaction back, SAVEPOINT and all, so the
        # save's savepoint rollback fails next (1305): the deadlock is found in the chain.
        seen: BaseException | None = exc
        while seen is not None:
            if _errno(getattr(seen, "orig", seen)) == _DEADLOCK:
                return (
                    "MariaDB/MySQL found a deadlock between the save of project {projects} and "
                    "another transaction (InnoDB's gap locks: concurrent saves that replace "
                    "stored storyboards can meet in them) and rolled back this whole "
                    "transaction, including the caller's earlier work. Nothing was saved: roll "
                    "back the session and retry the transaction"
                )
            seen = seen.__context__
        return None

    @contextmanager
    def hold_writers_off(
        self, connection: sa.Connection, losing: list[str], every_table: list[str]
    ) -> Iterator[None]:
        # DDL commits at once, so no transaction can hold a lock across it; LOCK TABLES can (it
        # outlives COMMIT and DDL, until UNLOCK TABLES or the session's end). A session under
        # it may touch only the tables it locked: hence every one of vidpipe's.
        inspector = sa.inspect(connection)
        tables = dict.fromkeys([*every_table, *losing])
        present = [table for table in tables if inspector.has_table(table)]
        quote = connection.dialect.identifier_preparer.quote
        # LOCK TABLES commits what the connection has open; the migration lock left none open.
        connection.exec_driver_sql(
            f"LOCK TABLES {', '.join(f'{quote(table)} WRITE' for table in present)}"
        )
        try:
            yield
        except BaseException:
            # UNLOCK TABLES commits what is open: roll a failed run back first. A dead
            # connection has lost its locks with its session, and the original error is the
            # one to report.
            with suppress(sa.exc.DBAPIError):
                connection.rollback()
                connection.exec_driver_sql("UNLOCK TABLES")
            raise
        connection.exec_driver_sql("UNLOCK TABLES")


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


def _only_nulls(bind: sa.Connection, table_name: str, columns: list[str]) -> bool:
    """Whether ``columns`` of ``table_name`` hold only NULL (a plain read: no lock on rows)."""
    quote = bind.dialect.identifier_preparer.quote
    set_anywhere = " OR ".join(f"{quote(column)} IS NOT NULL" for column in columns)
    return not bind.exec_driver_sql(
        f"SELECT EXISTS (SELECT 1 FROM {quote(table_name)} WHERE {set_anywhere})"
    ).scalar()


def _errno(error: object) -> object:
    """The MariaDB/MySQL error number of a driver error (its first argument)."""
    args: tuple[Any, ...] = getattr(error, "args", None) or (None,)
    return args[0]


class MySQL(MariaDB):
    """MySQL: what vidpipe does on MariaDB, untested on MySQL itself. SQLAlchemy names the
    dialect after the URL, so a ``mysql+pymysql://`` URL to a MariaDB server lands here too."""

    __dialect__ = "mysql"
