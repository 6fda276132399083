"""What ``migrations/env.py`` does with a connection: vidpipe's migration environment.

Kept in the package (not in env.py) so the CLI, the programmatic API and the wheel all run the
very same code, and so it can be tested and imported without Alembic's runtime context.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import VidpipeDatabaseError
from vidpipe.db.models import ONLY_ON_DIALECT, Base
from vidpipe.db.runner import safety
from vidpipe.db.runner.adoption import refuse_foreign_tables
from vidpipe.db.runner.faults import injected_fault
from vidpipe.db.runner.lock_retry import retrying_lock_waits
from vidpipe.db.runner.locking import migration_lock
from vidpipe.db.runner.revision_record import RECORD_TABLE, RevisionRecorder
from vidpipe.db.runner.table_locks import commits_after_each_table

__all__ = [
    "BOOKKEEPING_TABLES",
    "BRANCH_LABEL",
    "VERSION_TABLE",
    "command_line_errors",
    "configure_options",
    "include_name",
    "include_object_on",
    "run_migrations",
    "set_run_timeouts",
]

#: vidpipe's own version table, so it never collides with a host application's alembic_version.
VERSION_TABLE = "vidpipe_alembic_version"
#: vidpipe's own tables beside the models': what its runs record, never a model's data.
BOOKKEEPING_TABLES = (VERSION_TABLE, RECORD_TABLE)
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


def configure_options(
    dialect_name: str, connection: sa.Connection | None = None
) -> dict[str, Any]:
    """The ``context.configure`` options vidpipe's revisions are written for, on the dialect
    (its own: vidpipe.db.dialects); ``connection`` is the run's, None offline."""
    return {
        "target_metadata": Base.metadata,
        "version_table": VERSION_TABLE,
        "include_name": include_name,
        "include_object": include_object_on(dialect_name),
        "compare_type": True,
        **dialect_for(dialect_name).migration_options(connection),
    }


def run_migrations(context: EnvironmentContext, connection: sa.Connection) -> None:
    """Run the revisions the command asked for over ``connection``, in one transaction (on
    PostgreSQL committed mid-way where a table that holds rows would otherwise stay locked for
    the rest of the run: vidpipe.db.dialects.postgresql).

    The run holds the migration lock throughout and is refused before it writes anything if
    the version table or a downgrade's data loss says so (vidpipe.db.runner.safety). A run whose
    statement times out behind an application's lock is tried again (vidpipe.db.runner.lock_retry).
    """
    with _failures_named(connection):
        retrying_lock_waits(
            connection, safety.run_settings(context), lambda: _run_once(context, connection)
        )


@contextmanager
def command_line_errors(config: Config) -> Iterator[None]:
    """Around env.py: on the ``alembic`` command line, vidpipe's errors become Alembic's
    ``CommandError``, which it prints as one ``FAILED: ...`` line instead of a traceback.

    Only there (``config.cmd_opts`` is set by ``alembic.config.CommandLine``): code that runs
    the revisions gets vidpipe's own classes, with their attributes.
    """
    try:
        yield
    except VidpipeDatabaseError as exc:
        if config.cmd_opts is None:
            raise
        raise CommandError(str(exc)) from exc


@contextmanager
def _failures_named(connection: sa.Connection) -> Iterator[None]:
    """Let the dialect name what a failed run's driver error hides (a SQLite file that could
    not grow, whose error Alembic's batch clean-up replaced: vidpipe.db.dialects.sqlite)."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        named = dialect_for(connection.dialect).name_failure(connection, exc)
        if named is None:
            raise
        raise named from named.__cause__


def _run_once(context: EnvironmentContext, connection: sa.Connection) -> None:
    dialect = dialect_for(connection.dialect)
    options = configure_options(connection.dialect.name, connection)
    lock_timeout = safety.run_settings(context).lock_timeout
    vidpipe_tables = [*Base.metadata.tables, *BOOKKEEPING_TABLES]
    with (
        dialect.around_run(connection),
        # Taken before Alembic reads the version table, so a run that waited sees the revision
        # the previous holder left (vidpipe.db.runner.locking).
        migration_lock(connection, lock_timeout),
    ):
        recorder = RevisionRecorder()
        context.configure(
            connection=connection, on_version_apply=recorder.on_version_apply, **options
        )
        if safety.check_version_table(context):
            return  # ahead by expand revisions only: this upgrade has nothing to do (warned)
        recorder.prepare(context)
        adopting = _adopting(context)
        with (
            injected_fault(connection, context.config.attributes),
            context.begin_transaction(),
            # Adopting, the run stays one transaction (but for concurrent index builds): a
            # refusal half-way, of a table or a value, then leaves the database as it was.
            nullcontext() if adopting else commits_after_each_table(connection),
        ):
            set_run_timeouts(context)
            # After the timeouts: on PostgreSQL the guard's table locks wait under them.
            with safety.data_loss_guard(context, connection, vidpipe_tables):
                if adopting:
                    # Before any DDL, the version table's included: on MariaDB DDL commits itself.
                    refuse_foreign_tables(connection, Base.metadata.sorted_tables)
                with dialect.around_revisions(connection, BOOKKEEPING_TABLES):
                    context.run_migrations()


def set_run_timeouts(context: EnvironmentContext) -> None:
    """Give the migration's transaction its lock and statement timeouts, where the dialect's
    transaction carries them (PostgreSQL's ``SET LOCAL``); offline, into the script."""
    settings = safety.run_settings(context)  # each value checked to be a plain duration
    dialect = dialect_for(context.get_context().dialect)
    for statement in dialect.run_timeouts(settings.ddl_lock_timeout, settings.statement_timeout):
        context.execute(statement)


def _adopting(context: EnvironmentContext) -> bool:
    """Whether this run moves a database that has no vidpipe revision yet (``check`` does not)."""
    migration_context = context.get_context()
    moving = migration_context.opts.get("destination_rev") is not None
    return moving and not migration_context.get_current_heads()
