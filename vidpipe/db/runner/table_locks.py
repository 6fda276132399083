"""A revision's table locks end with that table's changes, not with the run (PostgreSQL).

Every ``ALTER TABLE`` takes a lock that stops the application's writes to its table:
``ACCESS EXCLUSIVE`` for ``ADD COLUMN``, ``SET DEFAULT`` or a type change, ``SHARE ROW
EXCLUSIVE`` on both tables for a new foreign key (and on the tables a ``CREATE TABLE``'s
foreign keys refer to). On PostgreSQL 11 and later these changes are catalog updates (no
rewrite, no scan: vidpipe's new NOT NULL columns have constant defaults), but the lock lasts
until the transaction ends, and a run is one transaction: a table changed first waited for the
whole rest of its revision, up to the next commit. So the idempotent helpers
(vidpipe.db.idempotent) call :func:`release_write_locks` after each table's changes: if the run
holds such a lock on a table that holds rows, it commits (vidpipe.db.runner.mid_run_commits), and
writers wait for that table's own changes only.

A foreign key added to a table with rows is checked by reading every row, under those locks. On
such a table it is added ``NOT VALID`` (only rows written from then on are checked) and
validated after the commit: ``VALIDATE CONSTRAINT`` reads the rows under ``SHARE UPDATE
EXCLUSIVE``, which lets writes through. A run that dies in between leaves the key ``NOT
VALID`` and its revision unrecorded; the next run finds the key (``pg_constraint.convalidated``)
when it adopts the table and validates it. Only keys the revision declares are validated, so
an unvalidated key somebody else added is left as it is.

Before any of these locks is granted, the ``ALTER`` waits for the transactions writing the
table, and writes that arrive meanwhile queue behind it, for at most ``ddl_lock_timeout``
(vidpipe.db.runner.lock_retry retries the run after that).

MariaDB commits each DDL statement by itself, so no lock outlives its statement there; two of
its statements still stopped the application (issue 17), and :func:`add_foreign_key` and
:func:`without_queueing` are MariaDB's answers:

- A foreign key added with ``foreign_key_checks=1`` makes InnoDB copy the table under
  ``LOCK=SHARED``: no write to it, nor to the table it refers to, for as long as the copy takes
  (15-25 s at 1,000,000 rows). When the key's columns hold only NULL (checked with one read of
  the table, which takes no lock), there is nothing to check, and the key is added with
  ``foreign_key_checks=0`` in place (``ALGORITHM=INPLACE, LOCK=NONE``): writes go on
  throughout. Rows written while that statement runs are not checked against the key; only
  code that knows the new column writes it, and that code runs after the revision.
- A DDL statement waiting for its table's metadata lock queues every later statement on that
  table behind it; and at its commit an ``ALTER`` of a parent table takes InnoDB's lock on each
  child table in turn, so an application transaction that wrote one child and goes on to
  another deadlocks with it, and MariaDB rolls back the application's transaction (error
  1213). So the run's ``ALTER`` statements never queue: each first takes its table and the
  tables that refer to it with ``LOCK TABLES ... WRITE`` (the server's metadata locks only,
  ``innodb_table_locks = 0``: all at once or not at all, and no application transaction holds
  InnoDB locks on a table whose metadata lock it does not hold), under ``lock_wait_timeout =
  0`` and ``innodb_lock_wait_timeout = 0``, and tries again every few milliseconds while one
  is in use, for at most the run's ``lock_wait_timeout`` (``ddl_lock_timeout``); after that
  the ``ALTER`` is tried once alone, and its lock-wait error goes to
  vidpipe.db.runner.lock_retry like any other.

SQLite has one write lock for the whole database: after each table's changes the run commits
there too (vidpipe.db.runner.sqlite_commits). Offline nothing changes (the script is for an
empty database).
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations.ops import CreateForeignKeyOp
from alembic.runtime.migration import MigrationContext

from vidpipe.db.runner.mid_run_commits import (
    can_commit_mid_run,
    commit_mid_run,
    holds_rows,
)
from vidpipe.db.runner.sqlite_commits import commit_mid_run as commit_sqlite_mid_run
from vidpipe.db.runner.sqlite_commits import may_commit_mid_run as may_commit_sqlite_mid_run

__all__ = [
    "add_foreign_key",
    "commits_after_each_table",
    "declared_foreign_keys",
    "release_write_locks",
    "validate_foreign_keys",
    "without_queueing",
]

_log = logging.getLogger(__name__)

#: In ``Connection.info`` while the run may commit after each table (vidpipe.db.runner.environment).
_COMMITS_AFTER_EACH_TABLE = "vidpipe.commits_after_each_table"
#: A foreign key as the revision declares it: its columns and the table it refers to.
ForeignKey = tuple[tuple[str, ...], str]

#: The table locks that make INSERT, UPDATE or DELETE (ROW EXCLUSIVE) wait.
_BLOCKING_WRITES = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
#: The run's own tables (of its schema, not the catalog's) that it holds such a lock on.
_LOCKED_TABLES = sa.text(
    "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted "
    "AND c.relkind IN ('r', 'p') AND c.relnamespace = to_regnamespace(current_schema()) "
    "AND l.mode = ANY(CAST(:modes AS text[]))"
)


@contextmanager
def commits_after_each_table(connection: sa.Connection) -> Iterator[None]:
    """Let the revisions run in the block commit after each table's changes (where
    :func:`release_write_locks` finds it worth it)."""
    connection.info[_COMMITS_AFTER_EACH_TABLE] = True
    try:
        yield
    finally:
        connection.info.pop(_COMMITS_AFTER_EACH_TABLE, None)


def release_write_locks() -> None:
    """Commit the run's transaction if it holds a lock that stops writes to a table with rows
    (on SQLite, the database's write lock: vidpipe.db.runner.sqlite_commits)."""
    context = op.get_context()
    if not _commits_after_each_table(context):
        return
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        commit_sqlite_mid_run(bind)
        return
    modes = {"modes": list(_BLOCKING_WRITES)}
    locked = bind.execute(_LOCKED_TABLES, modes).scalars().all()
    # The version table is the run's own: created by it on a new database, never written by the
    # application.
    if any(holds_rows(bind, name) for name in locked if name != context.version_table):
        commit_mid_run(bind)


def _commits_after_each_table(context: MigrationContext) -> bool:
    if context.as_sql:
        return False
    bind = context.bind
    return (
        bind is not None
        and _COMMITS_AFTER_EACH_TABLE in bind.info
        and (can_commit_mid_run(bind) or may_commit_sqlite_mid_run(bind))
    )


def add_foreign_key(
    name: str | None,
    table_name: str,
    referred_table: str,
    columns: list[str],
    referred_columns: list[str],
) -> None:
    """``op.create_foreign_key`` on an existing table; on PostgreSQL ``NOT VALID`` if it holds
    rows and the run can commit before validating it (:func:`validate_foreign_keys`); on MariaDB
    in place if its columns hold only NULL."""
    context = op.get_context()
    if _mariadb(context) and _only_nulls(table_name, columns):
        _add_mariadb_foreign_key_in_place(
            name, table_name, referred_table, columns, referred_columns
        )
        return
    not_valid = _commits_after_each_table(context) and holds_rows(op.get_bind(), table_name)
    op.create_foreign_key(
        name,
        table_name,
        referred_table,
        columns,
        referred_columns,
        postgresql_not_valid=not_valid,
    )


def declared_foreign_keys(columns: Iterable[sa.Column]) -> set[ForeignKey]:  # type: ignore[type-arg]
    """The foreign keys the given columns declare, as :func:`validate_foreign_keys` takes them."""
    return {
        ((column.name,), fk.target_fullname.rsplit(".", 1)[0])
        for column in columns
        for fk in column.foreign_keys
    }


def validate_foreign_keys(table_name: str, declared: set[ForeignKey]) -> None:
    """Validate the ``NOT VALID`` foreign keys of ``table_name`` that are ``declared``: this
    run's, or a run's that died before validating them."""
    context = op.get_context()
    if context.as_sql or context.dialect.name != "postgresql" or not declared:
        return
    bind = op.get_bind()
    unvalidated = set(
        bind.execute(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:table) "
                "AND contype = 'f' AND NOT convalidated"
            ),
            {"table": table_name},
        ).scalars()
    )
    if not unvalidated:
        return
    quote = bind.dialect.identifier_preparer.quote
    for fk in sa.inspect(bind).get_foreign_keys(table_name):
        name, key = fk["name"], (tuple(fk["constrained_columns"]), fk["referred_table"])
        if name in unvalidated and key in declared:
            op.execute(f"ALTER TABLE {quote(table_name)} VALIDATE CONSTRAINT {quote(str(name))}")


#: MariaDB's error for a lock not granted in ``lock_wait_timeout`` (0: not granted at once).
_MARIADB_LOCK_WAIT_TIMEOUT = 1205
#: How long a MariaDB ``ALTER`` that found its table's metadata lock taken waits before it is
#: sent again: a few of the application's short transactions.
_MARIADB_RETRY_EVERY = 0.01


def _mariadb(context: MigrationContext) -> bool:
    return not context.as_sql and context.dialect.name in ("mysql", "mariadb")


def without_queueing(table_name: str, change: Callable[[], None]) -> None:
    """Make ``change`` (one ``ALTER TABLE`` of ``table_name``) on MariaDB without ever waiting
    in a lock queue: with the table and the tables that refer to it locked first (``LOCK
    TABLES ... WRITE``), all at once or not at all, under ``lock_wait_timeout = 0`` and
    ``innodb_lock_wait_timeout = 0``; tried again every few milliseconds while a lock is
    taken, for at most the run's ``lock_wait_timeout``. Elsewhere, ``change()``.

    The ``LOCK TABLES`` is what keeps the application's transactions from deadlocking: at its
    commit, an ``ALTER`` of a parent table takes InnoDB's table lock on each child table in
    turn, and one it took while an application transaction that holds another child waits for
    it is a deadlock, which InnoDB resolves by rolling back the application's transaction."""
    context = op.get_context()
    if not _mariadb(context):
        change()
        return
    bind = op.get_bind()
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
    # innodb_table_locks = 0: LOCK TABLES takes the server's metadata locks only, all at once;
    # InnoDB's own table locks, taken one table after another, are what deadlocks.
    bind.exec_driver_sql(
        "SET SESSION lock_wait_timeout = 0, innodb_lock_wait_timeout = 0, innodb_table_locks = 0"
    )
    try:
        while True:
            try:
                bind.exec_driver_sql(lock_tables)
                try:
                    change()
                finally:
                    bind.exec_driver_sql("UNLOCK TABLES")
                return
            except sa.exc.OperationalError as exc:
                args = getattr(exc.orig, "args", ())
                if not args or args[0] != _MARIADB_LOCK_WAIT_TIMEOUT:
                    raise
                if time.monotonic() >= deadline:
                    # Given up: the error to report is the ALTER's own (its statement names
                    # the table for vidpipe.db.runner.lock_retry), from one last try alone.
                    change()
                    return
                if not refused:
                    _log.info(
                        "%s: a lock it needs is held by another transaction; "
                        "sent again every %.0f ms for at most %d s",
                        " ".join(str(exc.statement).split())[:80],
                        _MARIADB_RETRY_EVERY * 1000,
                        budget,
                    )
                refused = True
            time.sleep(_MARIADB_RETRY_EVERY)
    finally:
        bind.exec_driver_sql(
            f"SET SESSION lock_wait_timeout = {int(budget)}, "
            f"innodb_lock_wait_timeout = {int(innodb_budget)}, "
            f"innodb_table_locks = {int(table_locks)}"
        )


def _only_nulls(table_name: str, columns: list[str]) -> bool:
    """Whether ``columns`` of ``table_name`` hold only NULL (a plain read: no lock on rows)."""
    bind = op.get_bind()
    quote = bind.dialect.identifier_preparer.quote
    set_anywhere = " OR ".join(f"{quote(column)} IS NOT NULL" for column in columns)
    return not bind.exec_driver_sql(
        f"SELECT EXISTS (SELECT 1 FROM {quote(table_name)} WHERE {set_anywhere})"
    ).scalar()


def _add_mariadb_foreign_key_in_place(
    name: str | None,
    table_name: str,
    referred_table: str,
    columns: list[str],
    referred_columns: list[str],
) -> None:
    """The foreign key, added without copying the table (its columns hold only NULL: nothing to
    check), with writes going on (``foreign_key_checks=0``, ``ALGORITHM=INPLACE, LOCK=NONE``)."""
    context = op.get_context()
    bind = op.get_bind()
    operation = CreateForeignKeyOp(name, table_name, referred_table, columns, referred_columns)
    constraint = operation.to_constraint(context)  # named by the naming convention if None
    statement = str(sa.schema.AddConstraint(constraint).compile(dialect=bind.dialect))
    checks = int(bind.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar_one())
    bind.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        op.execute(f"{statement}, ALGORITHM=INPLACE, LOCK=NONE")
    finally:
        bind.exec_driver_sql(f"SET SESSION foreign_key_checks = {checks}")
