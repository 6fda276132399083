"""Commits in the middle of a PostgreSQL migration run, with the migration lock still held.

A run on PostgreSQL is one transaction that holds the migration lock (vidpipe.db.runner.locking),
and every lock its DDL takes lasts until that transaction ends. Two things must not wait that long
on a table that holds rows: a ``CREATE INDEX CONCURRENTLY``, which cannot run inside a transaction
block at all (vidpipe.db.runner.index_builds), and the lock an ``ALTER TABLE`` takes on a table the
application writes (vidpipe.db.runner.table_locks). So there the run commits mid-way: the migration
lock passes to a second connection first (``hold_across_commits``), the revisions finished so far
are recorded with the commit, and the next transaction begins by confirming that the run still
holds its lock and taking the main lock again (``resume_after_commit``: a run whose handover
connection died stops there with ``MigrationLockLost``), with the run's timeouts set again
(they are ``SET LOCAL`` and end with the commit). An autocommit stretch confirms the lock
before it starts (and index builds before each statement: vidpipe.db.runner.index_builds).

Decisions:

- Only for a table that holds rows. A new database keeps its whole run in one transaction:
  nobody writes to it yet, and a failure then leaves nothing behind.
- Only a run whose lock outlives its commits commits: not a connection handed in already
  inside a transaction (its caller owns the commit). MariaDB commits each DDL statement by
  itself anyway; SQLite lets no one else write while a migration is open.
- A run that dies between two of its commits leaves the revision it was in unrecorded, with
  part of that revision's work committed. The next run runs that revision again from its start,
  and revisions are idempotent: it adds what is missing and adopts what is there.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from vidpipe.db.dialects.postgresql import (
    MAY_COMMIT_MID_RUN,
    confirm_lock_held,
    hold_across_commits,
    resume_after_commit,
)

__all__ = [
    "can_commit_mid_run",
    "commit_mid_run",
    "holds_rows",
    "may_commit_for",
    "outside_the_run_transaction",
]

#: The run's timeouts, set again after a commit (vidpipe.db.runner.environment sets them).
_RUN_SETTINGS = ("lock_timeout", "statement_timeout")


def can_commit_mid_run(bind: sa.Connection) -> bool:
    """PostgreSQL, and a run whose migration lock outlives its commits."""
    return bind.dialect.name == "postgresql" and MAY_COMMIT_MID_RUN in bind.info


def may_commit_for(bind: sa.Connection, table_name: str) -> bool:
    """Whether a commit mid-run is possible and worth it for ``table_name``: the run can commit
    mid-way and the table holds rows."""
    return can_commit_mid_run(bind) and holds_rows(bind, table_name)


def holds_rows(bind: sa.Connection, table_name: str) -> bool:
    """Whether ``table_name`` holds a row (one index or heap page read, not a count)."""
    quoted = bind.dialect.identifier_preparer.quote(table_name)
    return bool(bind.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {quoted})").scalar())


def commit_mid_run(bind: sa.Connection) -> None:
    """Commit the run's transaction, keeping the migration lock, and begin the next one with
    the lock confirmed and the run's timeouts."""
    settings = _run_settings(bind)
    hold_across_commits(bind)
    bind.commit()
    _resume(bind, settings)


@contextmanager
def outside_the_run_transaction(bind: sa.Connection) -> Iterator[None]:
    """Commit the run's transaction, run the block in autocommit, then begin a new one with
    the lock confirmed and the run's timeouts set again.

    Alembic's ``autocommit_block`` does the same for a transaction Alembic began; the run's
    transaction is begun by the migration lock (vidpipe.db.runner.locking), so this commits it
    itself.
    """
    settings = _run_settings(bind)
    hold_across_commits(bind)
    bind.commit()
    level = bind.get_isolation_level()
    bind.execution_options(isolation_level="AUTOCOMMIT")
    try:
        # SQLAlchemy keeps its own transaction bookkeeping in AUTOCOMMIT; this block ends it.
        with bind.begin():
            # The holder may have died during the transaction just committed.
            confirm_lock_held(bind)
            yield
    finally:
        bind.execution_options(isolation_level=level)
    _resume(bind, settings)


def _run_settings(bind: sa.Connection) -> dict[str, str | None]:
    return {
        name: bind.exec_driver_sql(f"SELECT current_setting('{name}')").scalar()
        for name in _RUN_SETTINGS
    }


def _resume(bind: sa.Connection, settings: dict[str, str | None]) -> None:
    resume_after_commit(bind)
    for name, value in settings.items():
        bind.execute(
            sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
        )
