"""What ``migrations/env.py`` does with a connection: vidpipe's migration environment.

Kept in the package (not in env.py) so the CLI, the programmatic API and the wheel all run the
very same code, and so it can be tested and imported without Alembic's runtime context.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext

from vidpipe.db.engine import sqlite_pragma, uses_real_sqlite_transactions
from vidpipe.db.models import ONLY_ON_DIALECT, Base
from vidpipe.db.runner import safety
from vidpipe.db.runner.adoption import refuse_foreign_tables
from vidpipe.db.runner.faults import injected_fault
from vidpipe.db.runner.lock_retry import RetrySettings, retrying_lock_waits
from vidpipe.db.runner.locking import migration_lock
from vidpipe.db.runner.sqlite_commits import check_foreign_keys, watching_changed_tables
from vidpipe.db.runner.table_locks import commits_after_each_table

__all__ = [
    "BRANCH_LABEL",
    "VERSION_TABLE",
    "configure_options",
    "include_name",
    "include_object_on",
    "run_migrations",
    "set_postgresql_timeouts",
]

#: vidpipe's own version table, so it never collides with a host application's alembic_version.
VERSION_TABLE = "vidpipe_alembic_version"
#: The branch label carried by the base revision, for hosts that fold vidpipe into their history.
BRANCH_LABEL = "vidpipe"


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """Let autogenerate see only vidpipe's tables, never a host application's."""
    if type_ == "table":
        return name in Base.metadata.tables
    return True


def include_object_on(dialect_name: str) -> Callable[..., bool]:
    """An ``include_object`` hook hiding model indexes that exist on other dialects only.

    The GIN tag indexes are declared on the models but live only on PostgreSQL; without this,
    autogenerate and ``alembic check`` would ask for them on SQLite and MariaDB.
    """

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ != "index" or reflected:
            return True
        return bool(obj.info.get(ONLY_ON_DIALECT, dialect_name) == dialect_name)

    return include_object


def configure_options(dialect_name: str) -> dict[str, Any]:
    """The ``context.configure`` options vidpipe's revisions are written for, per dialect."""
    options: dict[str, Any] = {
        "target_metadata": Base.metadata,
        "version_table": VERSION_TABLE,
        "include_name": include_name,
        "include_object": include_object_on(dialect_name),
        "compare_type": True,
    }
    if dialect_name == "sqlite":
        # SQLite cannot ALTER most things: batch mode rebuilds the table (move and copy).
        options["render_as_batch"] = True
    elif dialect_name in ("mysql", "mariadb"):
        # DDL commits implicitly here, so record each revision as soon as it is done: a crash
        # then resumes from the last finished revision, and idempotency covers the rest.
        options["transaction_per_migration"] = True
    return options


def run_migrations(context: EnvironmentContext, connection: sa.Connection) -> None:
    """Run the revisions the command asked for over ``connection``, in one transaction (on
    PostgreSQL committed mid-way where a table that holds rows would otherwise stay locked for
    the rest of the run: vidpipe.db.runner.mid_run_commits).

    The run holds the migration lock throughout and is refused before it writes anything if
    the version table or a downgrade's data loss says so (vidpipe.db.runner.safety). A run whose
    statement times out behind an application's lock is tried again (vidpipe.db.runner.lock_retry).
    """
    retrying_lock_waits(
        connection, RetrySettings.from_context(context), lambda: _run_once(context, connection)
    )


def _run_once(context: EnvironmentContext, connection: sa.Connection) -> None:
    options = configure_options(connection.dialect.name)
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Only an engine that emits a real BEGIN (vidpipe.db.engine.configure_sqlite) makes
        # SQLite's DDL transactional; with any other, a failed revision may leave tables behind.
        options["transactional_ddl"] = uses_real_sqlite_transactions(connection.engine)
    lock_timeout = safety.run_settings(context).lock_timeout
    vidpipe_tables = [*Base.metadata.tables, VERSION_TABLE]
    with (
        _sqlite_foreign_keys_off(connection) if sqlite else _nothing(),
        _sqlite_rebuild_cache(connection) if sqlite else _nothing(),
        # Taken before Alembic reads the version table, so a run that waited sees the revision
        # the previous holder left (vidpipe.db.runner.locking).
        migration_lock(connection, lock_timeout),
    ):
        context.configure(connection=connection, **options)
        safety.check_version_table(context)
        adopting = _adopting(context)
        with (
            injected_fault(connection, context.config.attributes),
            context.begin_transaction(),
            # Adopting, the run stays one transaction (but for concurrent index builds): a
            # refusal half-way, of a table or a value, then leaves the database as it was.
            _nothing() if adopting else commits_after_each_table(connection),
        ):
            set_postgresql_timeouts(context)
            # After the timeouts: on PostgreSQL the guard's table locks wait under them.
            with safety.data_loss_guard(context, connection, vidpipe_tables):
                if adopting:
                    # Before any DDL, the version table's included: on MariaDB DDL commits itself.
                    refuse_foreign_tables(connection, Base.metadata.sorted_tables)
                with watching_changed_tables(connection) if sqlite else _nothing() as changed:
                    context.run_migrations()
                    if sqlite:
                        # Those changed since the last commit mid-run (vidpipe.db.runner.
                        # sqlite_commits checked the others before committing).
                        check_foreign_keys(connection, changed())


def set_postgresql_timeouts(context: EnvironmentContext) -> None:
    """``SET LOCAL`` the migration's lock and statement timeouts (PostgreSQL only).

    Local to the migration transaction, so a host's connection keeps its own settings.
    """
    if context.get_context().dialect.name != "postgresql":
        return
    settings = safety.run_settings(context)  # each value checked to be a plain duration
    context.execute(f"SET LOCAL lock_timeout = '{settings.ddl_lock_timeout}'")
    context.execute(f"SET LOCAL statement_timeout = '{settings.statement_timeout}'")


def _adopting(context: EnvironmentContext) -> bool:
    """Whether this run moves a database that has no vidpipe revision yet (``check`` does not)."""
    migration_context = context.get_context()
    moving = migration_context.opts.get("destination_rev") is not None
    return moving and not migration_context.get_current_heads()


#: SQLite's page cache during a run, in KiB (the default is 2,000 KiB): a batch rebuild copies
#: a table into a new one whose primary key index fills in random order. Measured on
#: vidpipe_0006 at 500,000 rows per table: the copies of ``scene_manifests`` and
#: ``scene_audio_manifests`` took 28 s each with the default cache, 12 s with 256 MiB.
SQLITE_RUN_CACHE_KIB = 262_144


@contextmanager
def _sqlite_rebuild_cache(connection: sa.Connection) -> Iterator[None]:
    """Give the run's connection a page cache big enough for its table rebuilds, and its own
    back afterwards (the memory is only taken as pages are read)."""
    raw = connection.connection.dbapi_connection
    previous = sqlite_pragma(raw, "PRAGMA cache_size")
    sqlite_pragma(raw, f"PRAGMA cache_size=-{SQLITE_RUN_CACHE_KIB}")
    try:
        yield
    finally:
        sqlite_pragma(raw, f"PRAGMA cache_size={previous}")


@contextmanager
def _sqlite_foreign_keys_off(connection: sa.Connection) -> Iterator[None]:
    """Turn foreign keys off while tables are rebuilt, and back on afterwards.

    Batch mode drops and renames tables; with foreign keys on, that would cascade or fail.
    The pragma is ignored inside a transaction, so it is set on the raw connection before
    Alembic begins one; a connection handed in mid-transaction keeps its setting.
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
def _nothing() -> Iterator[Callable[[], set[str]]]:
    yield set
