"""Downgrades never drop data silently, not even data committed while they run.

Before a downgrade runs, every step it will take is rendered as SQL without touching the
database (Alembic's offline mode), and the tables and columns that SQL drops are counted in the
live database. If any holds data the whole downgrade is refused before its first statement:
MariaDB commits each DDL statement on its own, so checking revision by revision could drop one
revision's tables and only then refuse at the next.

A count is only worth something if nobody can add a row between the count and the DROP, so the
application's writers are held off first, and until the downgrade is over (each dialect's
``hold_writers_off``, vidpipe.db.dialects):

PostgreSQL locks the tables that lose data in the migration's transaction, MariaDB/MySQL locks
every vidpipe table with ``LOCK TABLES`` (it outlives the DDL's implicit commits), and on SQLite
the migration's own write lock already keeps every writer out.

Where Alembic's command is found: env.py is not told which command runs. Alembic hands the
command's step function to the environment (``EnvironmentContext(fn=...)``); the downgrade
command's is named ``downgrade``. That is not a documented hook, and Alembic has none that says
"this run is a downgrade" before the first step (``on_version_apply`` fires after each step,
too late on MariaDB). Telling a downgrade from the direction of the destination alone fails for
``upgrade <an older revision>``, which Alembic runs as a no-op. The version pin in
pyproject.toml and the command-line tests in tests/test_data_loss.py (a real ``alembic
downgrade`` that must be refused) guard it.
"""

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import DataLossRefused

__all__ = ["Drops", "guard_downgrade", "offline_notice", "planned_drops", "refuse_data_loss"]

logger = logging.getLogger(__name__)

_DROP_TABLE = re.compile(r"^\s*DROP TABLE (?:IF EXISTS )?([^\s;(]+)", re.I | re.M)
_DROP_COLUMN = re.compile(r"^\s*ALTER TABLE ([^\s;]+) DROP (?:COLUMN )?([^\s;,]+)", re.I | re.M)


@dataclass
class Drops:
    """What a downgrade would drop: table names and (table, column) pairs, in order."""

    tables: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns)

    def describe(self) -> str:
        parts = [f"table {t}" for t in self.tables] + [f"column {t}.{c}" for t, c in self.columns]
        return ", ".join(parts)

    def touched_tables(self) -> list[str]:
        """Every table that loses a column or itself, each once, in order."""
        return list(dict.fromkeys([*self.tables, *(table for table, _ in self.columns)]))


@contextmanager
def guard_downgrade(
    context: EnvironmentContext, connection: sa.Connection, vidpipe_tables: list[str]
) -> Iterator[None]:
    """Run the block (the migration) only if the downgrade drops no data, with writers held off.

    ``vidpipe_tables`` are every table vidpipe's revisions may touch (the version table
    included): on MariaDB all of them are locked, since a session under ``LOCK TABLES`` can use
    no other. Call inside the migration's transaction, after its ``lock_timeout`` is set.
    """
    drops = planned_drops(context)
    if not drops:
        yield
        return
    destination = str(context.get_revision_argument() or "base")
    inspector = sa.inspect(connection)
    losing = [table for table in drops.touched_tables() if inspector.has_table(table)]
    if losing:
        logger.info("Holding writers off %s until the downgrade is done", ", ".join(losing))
    with dialect_for(connection.dialect).hold_writers_off(connection, losing, vidpipe_tables):
        refuse_data_loss(connection, drops, destination)
        yield


def planned_drops(context: EnvironmentContext) -> Drops:
    """The tables and columns the current command's downgrade steps drop (none for others)."""
    migration_context = context.get_context()
    environment = migration_context.environment_context
    command = environment.context_opts.get("fn") if environment else None
    # env.py is not told which command runs; Alembic's downgrade command passes a function of
    # this name, and only downgrades drop what upgrades built.
    if command is None or command.__name__ != "downgrade":
        return Drops()
    steps = [
        step
        for step in command(migration_context.get_current_heads(), migration_context)
        if isinstance(step, RevisionStep) and step.is_downgrade
    ]
    buffer = io.StringIO()
    # Its "Context impl ..." lines would read as if a second migration were starting.
    with _quiet(logging.getLogger("alembic.runtime.migration")):
        recorder = MigrationContext.configure(
            dialect=migration_context.dialect, opts={"as_sql": True, "output_buffer": buffer}
        )
    with Operations.context(recorder):
        for step in steps:
            step.migration_fn()
    sql = buffer.getvalue()
    return Drops(
        tables=[_unquote(name) for name in _DROP_TABLE.findall(sql)],
        columns=[(_unquote(t), _unquote(c)) for t, c in _DROP_COLUMN.findall(sql)],
    )


def refuse_data_loss(connection: sa.Connection, drops: Drops, destination: str) -> None:
    """Raise :class:`DataLossRefused` if any table or column in ``drops`` holds data."""
    inspector = sa.inspect(connection)
    preparer = connection.dialect.identifier_preparer
    holding: dict[str, int] = {}
    described: list[str] = []
    for table in drops.tables:
        if inspector.has_table(table):
            rows = connection.execute(
                sa.text(f"SELECT count(*) FROM {preparer.quote(table)}")
            ).scalar_one()
            if rows:
                holding[table] = rows
                described.append(f"{table} ({_rows(rows)})")
    for table, column in drops.columns:
        if inspector.has_table(table):
            rows = connection.execute(
                sa.text(
                    f"SELECT count(*) FROM {preparer.quote(table)} "
                    f"WHERE {preparer.quote(column)} IS NOT NULL"
                )
            ).scalar_one()
            if rows:
                holding[f"{table}.{column}"] = rows
                described.append(f"{table}.{column} ({_rows(rows, 'value')})")
    if holding:
        raise DataLossRefused(
            f"Downgrade to {destination} refused: it would drop {', '.join(described)} and the "
            "data in them. Nothing was changed. Back the data up first; to drop it anyway, run "
            "again with -x allow_data_loss=true (alembic), --allow-data-loss (vidpipe-db) or "
            "allow_data_loss=True (vidpipe.db.downgrade).",
            drops=holding,
            destination=destination,
        )


def offline_notice(drops: Drops) -> str:
    """The SQL comment an offline (``--sql``) downgrade script starts with."""
    return (
        f"-- vidpipe: WARNING, this downgrade drops {drops.describe()} and every row in them.\n"
        "-- vidpipe: offline, nothing could be counted; back up what they hold before running it."
    )


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


def _rows(count: int, noun: str = "row") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _unquote(name: str) -> str:
    return name.strip('"`[]')
