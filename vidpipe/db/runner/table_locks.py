"""A revision's table locks end with that table's changes, not with the run (PostgreSQL).

Every ``ALTER TABLE`` takes a lock that stops the application's writes to its table:
``ACCESS EXCLUSIVE`` for ``ADD COLUMN``, ``SET DEFAULT`` or a type change, ``SHARE ROW
EXCLUSIVE`` on both tables for a new foreign key (and on the tables a ``CREATE TABLE``'s
foreign keys refer to). On PostgreSQL 11 and later these changes are catalog updates (no
rewrite, no scan: vidpipe's new NOT NULL columns have constant defaults), but the lock lasts
until the transaction ends, and a run is one transaction: a table changed first waited for the
whole rest of its revision, up to the next commit. So the idempotent helpers
(vidpipe.db.idempotent) call :func:`release_write_locks` after each table's changes: if the run
holds such a lock on a table that holds rows, it commits (vidpipe.db.dialects.postgresql), and
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

Which locks stop writes, and how a ``NOT VALID`` key is validated, the dialect says
(``tables_blocking_writes``, ``validate_foreign_keys``: vidpipe.db.dialects.postgresql).

MariaDB commits each DDL statement by itself, so no lock outlives its statement there; two of
its statements still stopped the application (issue 17), and the dialect answers both
(vidpipe.db.dialects.mariadb): :func:`add_foreign_key` adds a key whose columns hold only NULL
in place (``add_foreign_key_in_place``), and :func:`without_queueing` makes an ``ALTER`` that
never waits in a lock queue ahead of the application's statements (``alter_without_queueing``).

SQLite has one write lock for the whole database: after each table's changes, and after each
index build, the run commits there too (vidpipe.db.dialects.sqlite_commits). Offline nothing
changes (the script is for an empty database).
"""

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations.ops import CreateForeignKeyOp
from alembic.runtime.migration import MigrationContext

from vidpipe.db.dialects import dialect_for
from vidpipe.db.dialects.base import ForeignKey, holds_rows

__all__ = [
    "add_foreign_key",
    "commits_after_each_table",
    "declared_foreign_keys",
    "release_write_locks",
    "validate_foreign_keys",
    "without_queueing",
]

#: In ``Connection.info`` while the run may commit after each table (vidpipe.db.runner.environment).
_COMMITS_AFTER_EACH_TABLE = "vidpipe.commits_after_each_table"


@contextmanager
def commits_after_each_table(connection: sa.Connection) -> Iterator[None]:
    """Let the revisions run in the block commit after each table's changes (where
    :func:`release_write_locks` finds it worth it)."""
    connection.info[_COMMITS_AFTER_EACH_TABLE] = True
    try:
        yield
    finally:
        connection.info.pop(_COMMITS_AFTER_EACH_TABLE, None)


@contextmanager
def in_one_transaction(connection: sa.Connection) -> Iterator[None]:
    """Keep the revisions the block runs in the run's transaction: no commit after a table.

    The data-loss guard needs it: its count and its hold on the application's writers
    (vidpipe.db.runner.data_loss) last only as long as that transaction, so a commit between the
    count and the DROP would let a writer add rows that are then dropped unseen.
    """
    allowed = connection.info.pop(_COMMITS_AFTER_EACH_TABLE, None)
    try:
        yield
    finally:
        if allowed is not None:
            connection.info[_COMMITS_AFTER_EACH_TABLE] = allowed


def release_write_locks() -> None:
    """Commit the run's transaction if it holds a lock that stops writes to a table with rows
    (on SQLite, the database's write lock: vidpipe.db.dialects.sqlite_commits)."""
    context = op.get_context()
    if not _commits_after_each_table(context):
        return
    bind = op.get_bind()
    dialect = dialect_for(bind.dialect)
    # The version table is the run's own: created by it on a new database, never written by the
    # application.
    if dialect.commits_mid_run_now(bind, (context.version_table,)):
        dialect.commit_mid_run(bind)


def _commits_after_each_table(context: MigrationContext) -> bool:
    if context.as_sql:
        return False
    bind = context.bind
    return (
        bind is not None
        and _COMMITS_AFTER_EACH_TABLE in bind.info
        and dialect_for(bind.dialect).can_commit_mid_run(bind)
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
    if not context.as_sql:
        operation = CreateForeignKeyOp(name, table_name, referred_table, columns, referred_columns)
        constraint = operation.to_constraint(context)  # named by the naming convention if None
        if dialect_for(context.dialect).add_foreign_key_in_place(
            op.get_bind(), op.execute, constraint
        ):
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
    """Validate the foreign keys of ``table_name`` that are ``declared`` and were added without
    checking rows (``NOT VALID`` on PostgreSQL): this run's, or a run's that died before
    validating them."""
    context = op.get_context()
    if context.as_sql or not declared:
        return
    dialect_for(context.dialect).validate_foreign_keys(
        op.get_bind(), op.execute, table_name, declared
    )


def without_queueing(table_name: str, alter: Callable[[], None]) -> None:
    """Run ``alter`` (one ``ALTER TABLE`` of ``table_name``) without it ever waiting in a lock
    queue ahead of the application's statements (MariaDB: vidpipe.db.dialects.mariadb);
    elsewhere, and offline, ``alter()``."""
    context = op.get_context()
    if context.as_sql:
        alter()
        return
    dialect_for(context.dialect).alter_without_queueing(op.get_bind(), table_name, alter)
