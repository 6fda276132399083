"""Index builds that do not stop the application's writes.

A plain ``CREATE INDEX`` holds a SHARE lock on its table until the migration commits: every
INSERT, UPDATE and DELETE on the table waits for the whole build and the rest of the run. So on
PostgreSQL an index on a table that holds rows is built with ``CREATE INDEX CONCURRENTLY``,
which lets writes through. It cannot run inside a transaction block, so the run's transaction
commits before it (the revisions finished so far are recorded, as with Alembic's
``autocommit_block``) and a new one begins after it, with the migration lock still held
(vidpipe.db.dialects.postgresql).

Decisions:

- An empty table keeps the plain build inside the run's transaction: instant, and the run stays
  all-or-nothing. Rows the application inserts between the check and the commit wait that long.
- A connection handed in already inside a transaction (its caller owns the commit) gets the
  plain build: vidpipe cannot commit the caller's work.
- A concurrent build that failed or was cancelled leaves an index marked invalid
  (``pg_index.indisvalid``) that PostgreSQL keeps maintaining but never uses; the next run finds
  it, drops it (``DROP INDEX CONCURRENTLY``) and builds it again.
- An invalid index may also be one whose build is still running: a run that lost the migration
  lock during the build (its handover connection died) goes on with that one statement and
  stops after it (vidpipe.db.runner.locking), while the next run has already started. Dropping
  it then would fail one of the two runs (``tuple concurrently updated``) or throw the build
  away; so a run that finds another server process building the index
  (``pg_stat_progress_create_index``, which shows it to the same role, a superuser or
  ``pg_read_all_stats``) waits for the build, outside its own transaction so that the build
  does not wait for its snapshot, and drops the index only if it is still invalid then.
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

import logging
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex

from vidpipe.db.dialects import dialect_for
from vidpipe.db.dialects.base import holds_rows, pause
from vidpipe.db.dialects.postgresql import WAIT_SLICE, confirm_lock_held

__all__ = ["SQUAWK_IGNORE_PLAIN_BUILD", "build_index", "drop_invalid_index"]

logger = logging.getLogger(__name__)

#: The server process (other than this one) building the index named ``:name``, if any.
_BUILDER = sa.text(
    "SELECT pid FROM pg_stat_progress_create_index "
    "WHERE index_relid = to_regclass(:name) AND pid <> pg_backend_pid()"
)

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
        if context.dialect.name == "postgresql":
            compiled = CreateIndex(index).compile(dialect=context.dialect)
            op.execute(SQUAWK_IGNORE_PLAIN_BUILD + str(compiled))
        else:
            op.execute(CreateIndex(index))
        return
    if not _builds_concurrently(table_name):
        if check is not None:
            check()
        op.execute(CreateIndex(index))
        return
    bind = op.get_bind()
    with dialect_for(bind.dialect).outside_the_run_transaction(bind):
        if check is not None:
            check()
            confirm_lock_held(bind)  # the check may have read for long
        index.dialect_options["postgresql"]["concurrently"] = True
        try:
            op.execute(CreateIndex(index))
        finally:
            index.dialect_options["postgresql"]["concurrently"] = False


def drop_invalid_index(name: str, table_name: str) -> bool:
    """Drop the index ``name`` if a failed concurrent build left it invalid; True if dropped.

    A build of it still running elsewhere is waited for first; if it succeeds, nothing is
    dropped.
    """
    context = op.get_context()
    if context.as_sql or context.dialect.name != "postgresql":
        return False
    bind = op.get_bind()
    if not _invalid(bind, name):
        return False
    quoted = context.dialect.identifier_preparer.quote(name)
    if _builds_concurrently(table_name):
        with dialect_for(bind.dialect).outside_the_run_transaction(bind):
            _wait_for_a_build_elsewhere(bind, name)
            if not _invalid(bind, name):
                return False
            confirm_lock_held(bind)
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")
    else:
        _wait_for_a_build_elsewhere(bind, name)
        if not _invalid(bind, name):
            return False
        op.execute(f"DROP INDEX IF EXISTS {quoted}")
    return True


def _invalid(bind: sa.Connection, name: str) -> bool:
    """Whether the index ``name`` exists and is marked invalid."""
    valid = bind.execute(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
        {"name": name},
    ).scalar()
    return valid is False


def _wait_for_a_build_elsewhere(bind: sa.Connection, name: str) -> None:
    """Return once no other server process is building the index ``name``."""
    builder = bind.execute(_BUILDER, {"name": name}).scalar()
    if builder is None:
        return
    logger.info(
        "Waiting for the build of index %s by another server process (%d) to end: an earlier "
        "run, which lost vidpipe's migration lock, is still running it",
        name,
        builder,
    )
    while bind.execute(_BUILDER, {"name": name}).scalar() is not None:
        pause(bind, WAIT_SLICE)
    logger.info("The build of index %s by server process %d ended", name, builder)


def _builds_concurrently(table_name: str) -> bool:
    """PostgreSQL, a run whose lock outlives its commits, and a table with rows."""
    bind = op.get_bind()
    return dialect_for(bind.dialect).can_commit_mid_run(bind) and holds_rows(bind, table_name)
