"""The safety net around every migration run: the checks before it writes anything.

After the migration lock is taken, in order: the version table check (a database ahead of the
code, contradictory or junk rows), then, inside the migration's transaction, the data-loss
guard of downgrades, which holds the application's writers off until the run is over. Each check
lives in its own module; this one only wires them to the run's settings
(vidpipe.db.runner.settings).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext

from vidpipe.db.runner.data_loss import guard_downgrade, planned_drops
from vidpipe.db.runner.data_loss import offline_notice as _offline_notice
from vidpipe.db.runner.revision_record import read_record
from vidpipe.db.runner.settings import RunSettings
from vidpipe.db.runner.version_state import check_version_rows

__all__ = ["check_version_table", "data_loss_guard", "run_settings", "write_offline_notice"]


def run_settings(context: EnvironmentContext) -> RunSettings:
    """This run's settings: ``config.attributes``, else ``-x``, else the defaults."""
    return RunSettings.from_config(context.config, context.get_x_argument(as_dictionary=True))


def check_version_table(context: EnvironmentContext) -> tuple[str, ...]:
    """Refuse the run, before it writes anything, if the version table cannot be trusted.

    Returns the revisions a newer release applied, if this run is an upgrade that may start on
    them (expand revisions only, vidpipe.db.runner.version_state): the run then has nothing to
    do and must not be started.
    """
    if _read_only_or_repair(context):
        return ()
    migration_context = context.get_context()
    connection = migration_context.connection
    return check_version_rows(
        _environment(context).script,
        migration_context.get_current_heads(),
        migration_context.version_table,
        record=lambda: read_record(connection) if connection is not None else {},
        upgrading=_upgrading(context),
    )


@contextmanager
def data_loss_guard(
    context: EnvironmentContext, connection: sa.Connection, vidpipe_tables: list[str]
) -> Iterator[None]:
    """Around the migration: a downgrade that would drop data is refused, race-free."""
    if _read_only_or_repair(context) or run_settings(context).allow_data_loss:
        yield
        return
    with guard_downgrade(context, connection, vidpipe_tables):
        yield


def write_offline_notice(context: EnvironmentContext) -> None:
    """Start a ``--sql`` downgrade script with a comment naming what it drops."""
    drops = planned_drops(context)
    if drops:
        context.get_context().impl.static_output(_offline_notice(drops))


def _upgrading(context: EnvironmentContext) -> bool:
    """Whether the command is ``upgrade``: env.py is not told, and Alembic's upgrade command
    hands the environment a step function of that name (the same undocumented fact
    vidpipe.db.runner.data_loss relies on for downgrades, guarded by the same version pin and
    command-line tests)."""
    command = _environment(context).context_opts.get("fn")
    return command is not None and command.__name__ == "upgrade"


def _read_only_or_repair(context: EnvironmentContext) -> bool:
    """``current`` (read-only), and ``stamp --purge``, the documented repair for bad rows."""
    migration_context = context.get_context()
    purge = _environment(context).context_opts.get("purge")
    return bool(migration_context.opts.get("dont_mutate") or purge)


def _environment(context: EnvironmentContext) -> EnvironmentContext:
    """The running EnvironmentContext (env.py's ``context`` is a module standing in for it)."""
    environment = context.get_context().environment_context
    if environment is None:
        raise RuntimeError("vidpipe's safety checks run inside env.py, after context.configure()")
    return environment
