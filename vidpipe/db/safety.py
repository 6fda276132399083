"""The safety net around every migration run: what it may do and the checks before it starts.

One place reads the run's settings (``config.attributes`` from code, ``-x`` from the command
line) and runs, in order, after the migration lock is taken and before Alembic writes anything:
the version table check (a database ahead of the code, contradictory rows) and the data-loss
guard of downgrades. Each check lives in its own module; this one only wires them.
"""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext

from vidpipe.db.data_loss import offline_notice, planned_drops, refuse_data_loss
from vidpipe.db.errors import VidpipeDatabaseError
from vidpipe.db.version_state import check_version_rows

#: How long a run waits for another process's migration before giving up. Generous: a replica
#: that waits for a long data migration elsewhere costs nothing, one that gives up fails to start.
DEFAULT_LOCK_TIMEOUT = 300.0
#: Setting names, the same in ``config.attributes`` and in ``-x name=value``.
LOCK_TIMEOUT = "lock_timeout"
ALLOW_DATA_LOSS = "allow_data_loss"

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class RunSettings:
    """What this run may do; code sets ``config.attributes``, the CLI sets ``-x``."""

    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    allow_data_loss: bool = False


def run_settings(context: EnvironmentContext) -> RunSettings:
    """Settings from ``config.attributes``, else ``-x``, else the defaults."""
    given: dict[str, Any] = dict(context.get_x_argument(as_dictionary=True))
    given.update(
        {k: v for k, v in context.config.attributes.items() if k in (LOCK_TIMEOUT, ALLOW_DATA_LOSS)}
    )
    return RunSettings(
        lock_timeout=_seconds(given.get(LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT)),
        allow_data_loss=_flag(given.get(ALLOW_DATA_LOSS, False)),
    )


def check_before_run(context: EnvironmentContext, connection: sa.Connection) -> None:
    """Refuse the run, before it writes anything, if it cannot be done safely."""
    migration_context = context.get_context()
    environment = migration_context.environment_context  # env.py's ``context`` is a proxy
    if environment is None:
        raise RuntimeError("check_before_run runs inside env.py, after context.configure()")
    if migration_context.opts.get("dont_mutate") or environment.context_opts.get("purge"):
        # Read-only ``current``, and ``stamp --purge``, the documented repair for bad rows.
        return
    check_version_rows(
        environment.script, migration_context.get_current_heads(), migration_context.version_table
    )
    if run_settings(context).allow_data_loss:
        return
    drops = planned_drops(context)
    if drops:
        refuse_data_loss(connection, drops, str(context.get_revision_argument() or "base"))


def write_offline_notice(context: EnvironmentContext) -> None:
    """Start a ``--sql`` downgrade script with a comment naming what it drops."""
    drops = planned_drops(context)
    if drops:
        context.get_context().impl.static_output(offline_notice(drops))


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise VidpipeDatabaseError(
            f"{LOCK_TIMEOUT} must be a positive number of seconds, got {value!r}"
        )
    return seconds


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise VidpipeDatabaseError(f"{ALLOW_DATA_LOSS} must be true or false, got {value!r}")
