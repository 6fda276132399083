"""Index builds that do not stop the application's writes.

A plain ``CREATE INDEX`` holds a SHARE lock on its table until the migration commits: every
INSERT, UPDATE and DELETE on the table waits for the whole build and the rest of the run. So on
PostgreSQL an index on a table that holds rows is built with ``CREATE INDEX CONCURRENTLY``,
which lets writes through. It cannot run inside a transaction block, so the run's transaction
commits before it (the revisions finished so far are recorded, as with Alembic's
``autocommit_block``) and a new one begins after it, with the migration lock still held
(vidpipe.db.runner.mid_run_commits).

Decisions:

- An empty table keeps the plain build inside the run's transaction: instant, and the run stays
  all-or-nothing. Rows the application inserts between the check and the commit wait that long.
- A connection handed in already inside a transaction (its caller owns the commit) gets the
  plain build: vidpipe cannot commit the caller's work.
- A concurrent build that failed or was cancelled leaves an index marked invalid
  (``pg_index.indisvalid``) that PostgreSQL keeps maintaining but never uses; the next run finds
  it, drops it (``DROP INDEX CONCURRENTLY``) and builds it again.
- The concurrent build runs under the session's own ``statement_timeout`` and ``lock_timeout``
  (the run's are ``SET LOCAL`` and end with its transaction): its waits are for older
  transactions to finish, which delay the build but block no writer.
- Offline (``--sql``) the script is for an empty database: the plain build, preceded by a
  ``squawk-ignore`` comment for ``require-concurrent-index-creation`` that says why, so the
  linter keeps that rule for every other ``CREATE INDEX`` a revision might write.

MariaDB: InnoDB builds a secondary index in place while writes continue (``ALGORITHM=INPLACE,
LOCK=NONE`` is its default for ``CREATE INDEX``, unique ones included); only the brief metadata
locks at the start and the end wait for running transactions. The plain statement is kept.
SQLite: a writing transaction excludes every other writer anyway; the plain build is kept.
"""

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.compiler import DDLCompiler

from vidpipe.db.runner.mid_run_commits import may_commit_for, outside_the_run_transaction

__all__ = ["SQUAWK_IGNORE_PLAIN_BUILD", "build_index", "drop_invalid_index"]

#: What the offline script puts before each plain index build (tests/test_squawk.py).
SQUAWK_IGNORE_PLAIN_BUILD = (
    "-- Written for an empty table; online, vidpipe builds CONCURRENTLY on a table with rows.\n"
    # squawk applies an ignore comment to the statement right below it.
    "-- squawk-ignore require-concurrent-index-creation\n"
)


def build_index(
    index: sa.Index, table_name: str, *, check: Callable[[], None] | None = None
) -> None:
    """Create ``index`` on ``table_name`` without blocking writes to rows the table holds.

    ``check`` (if given) runs just before the build, online only: after the commit when the
    build is concurrent, so a slow check (a scan for duplicate keys) does not keep the locks
    of the revisions before it, a column added to the same table say, while it reads.
    """
    context = op.get_context()
    if context.as_sql:
        op.execute(_PlainBuildForAnEmptyTable(index))
        return
    if not _builds_concurrently(table_name):
        if check is not None:
            check()
        op.execute(CreateIndex(index))
        return
    with outside_the_run_transaction(op.get_bind()):
        if check is not None:
            check()
        index.dialect_options["postgresql"]["concurrently"] = True
        try:
            op.execute(CreateIndex(index))
        finally:
            index.dialect_options["postgresql"]["concurrently"] = False


class _PlainBuildForAnEmptyTable(CreateIndex):
    """The offline script's ``CREATE INDEX``: a construct, not a string, so that what reads a
    revision's statements (vidpipe.db.runner.revision_kinds) sees an index build."""

    inherit_cache = False


@compiles(_PlainBuildForAnEmptyTable, "postgresql")
def _with_squawk_ignore(
    element: _PlainBuildForAnEmptyTable, compiler: DDLCompiler, **kw: Any
) -> str:
    plain: str = compiler.visit_create_index(element, **kw)  # type: ignore[no-untyped-call]
    return SQUAWK_IGNORE_PLAIN_BUILD + plain


def drop_invalid_index(name: str, table_name: str) -> bool:
    """Drop the index ``name`` if a failed concurrent build left it invalid; True if dropped."""
    context = op.get_context()
    if context.as_sql or context.dialect.name != "postgresql":
        return False
    valid = (
        op.get_bind()
        .execute(
            sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": name},
        )
        .scalar()
    )
    if valid is None or valid:
        return False
    quoted = context.dialect.identifier_preparer.quote(name)
    if _builds_concurrently(table_name):
        with outside_the_run_transaction(op.get_bind()):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")
    else:
        op.execute(f"DROP INDEX IF EXISTS {quoted}")
    return True


def _builds_concurrently(table_name: str) -> bool:
    """PostgreSQL, a run whose lock outlives its commits, and a table with rows."""
    return may_commit_for(op.get_bind(), table_name)
