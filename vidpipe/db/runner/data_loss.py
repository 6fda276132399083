"""Downgrades never drop data silently, not even data committed while they run.

Before a downgrade runs, every step it will take is planned against the live database and the
tables and columns it destroys are counted there. If any holds data the whole downgrade is
refused before its first statement: MariaDB commits each DDL statement on its own, so checking
revision by revision could drop one revision's tables and only then refuse at the next.

How the plan is made: each downgrade step's function runs once with ``alembic.op`` bound to a
planner, an :class:`~alembic.operations.Operations` whose ``invoke`` (the point every
directive goes through, ``op.*`` and a batch's alike) records the operation object instead of
running it, and whose ``batch_alter_table`` records its directives without ever rebuilding the
table. The revision still sees the live connection, so idempotent helpers inspect the real
schema and SQLite's batch operations need no offline rendering (which cannot reflect). What
destroys data is read from the operation objects: ``DropTableOp``, ``DropColumnOp`` (plain or in
a batch), ``AlterColumnOp`` with a new type (a conversion can rewrite values: SQLite's batch
copy CASTs them), and ``op.execute`` of a literal ``DROP TABLE``, ``ALTER TABLE ... DROP`` or
``TRUNCATE``. Other raw SQL (a ``DELETE`` of rows the upgrade inserted, say) is the revision's
own business and is not second-guessed. Nothing may be written while planning: a revision that
writes through ``op.get_bind()`` itself is refused, since its plan cannot be known without
running it.

Which steps are downgrades: Alembic hands each command's work function to the migration
context (``fn``; ``MigrationContext.run_migrations`` documents it as what yields the version
steps of ``upgrade`` and ``downgrade``). For a run that moves to a destination (upgrade,
downgrade, stamp: pure computations over the script directory) the guard asks it for the steps
from the current heads and keeps those whose ``MigrationInfo`` (what ``on_version_apply``
receives) is a migration that is not an upgrade. So ``upgrade <an older revision>``, which
Alembic runs as a no-op, plans nothing, and no command is recognised by name.
``on_version_apply`` itself fires after each step, too late on MariaDB.

A count is only worth something if nobody can add a row between the count and the DROP, so the
application's writers are held off first, and until the downgrade is over (each dialect's
``hold_writers_off``, vidpipe.db.dialects):

PostgreSQL locks the tables that lose data in the migration's transaction, MariaDB/MySQL locks
every vidpipe table with ``LOCK TABLES`` (it outlives the DDL's implicit commits), and on SQLite
the migration's own write lock already keeps every writer out.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import BatchOperations, MigrateOperation, Operations, ops
from alembic.operations.batch import BatchOperationsImpl
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import DataLossRefused
from vidpipe.db.runner.table_locks import in_one_transaction

__all__ = ["Drops", "guard_downgrade", "offline_notice", "planned_drops", "refuse_data_loss"]

logger = logging.getLogger(__name__)

# Literal SQL a revision executes itself (op.execute): the statements that destroy data whole.
_DROP_TABLE = re.compile(
    r"^\s*(?:DROP|TRUNCATE)\s+TABLE\s+(?:IF\s+EXISTS\s+)?([^\s;(,]+)", re.I | re.M
)
_DROP_COLUMN = re.compile(
    r"^\s*ALTER\s+TABLE\s+([^\s;]+)\s+DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?([^\s;,]+)",
    re.I | re.M,
)
# What reflection and the idempotent helpers' look-ups send; anything else would be a write.
_READ_ONLY = re.compile(r"\s*(SELECT|WITH|SHOW|DESCRIBE|EXPLAIN|PRAGMA\s+[\w.]+\s*(\(|;|$))", re.I)


@dataclass
class Drops:
    """What a downgrade would destroy: tables, (table, column) pairs it drops, and (table,
    column) pairs whose type it changes, each in the order the downgrade reaches them."""

    tables: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)
    retyped: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns or self.retyped)

    def touched_tables(self) -> list[str]:
        """Every table that loses a column, a column's type or itself, each once, in order."""
        changed = [table for table, _ in [*self.columns, *self.retyped]]
        return list(dict.fromkeys([*self.tables, *changed]))

    def record(self, operation: MigrateOperation, dialect: sa.Dialect) -> None:
        """Note what ``operation`` destroys, if anything."""
        if isinstance(operation, ops.DropTableOp):
            self.tables.append(operation.table_name)
        elif isinstance(operation, ops.DropColumnOp):
            self.columns.append((operation.table_name, operation.column_name))
        elif isinstance(operation, ops.AlterColumnOp) and operation.modify_type is not None:
            self.retyped.append((operation.table_name, operation.column_name))
        elif isinstance(operation, ops.ExecuteSQLOp):
            sql = operation.sqltext
            text = (
                str(sql.compile(dialect=dialect)) if isinstance(sql, sa.ClauseElement) else str(sql)
            )
            self.tables += [_unquote(name) for name in _DROP_TABLE.findall(text)]
            self.columns += [(_unquote(t), _unquote(c)) for t, c in _DROP_COLUMN.findall(text)]


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
    destination = _destination(context)
    inspector = sa.inspect(connection)
    losing = [table for table in drops.touched_tables() if inspector.has_table(table)]
    if losing:
        logger.info("Holding writers off %s until the downgrade is done", ", ".join(losing))
    with (
        dialect_for(connection.dialect).hold_writers_off(connection, losing, vidpipe_tables),
        in_one_transaction(connection),
    ):
        refuse_data_loss(connection, drops, destination)
        yield


def planned_drops(context: EnvironmentContext) -> Drops:
    """What the current run's downgrade steps destroy (nothing for any other run).

    Online the steps are planned against the live database, read-only; offline (``--sql``)
    the revisions see an offline context and plan for the database the script is written for.
    """
    migration_context = context.get_context()
    planner = _Planner(migration_context)
    # Offline the "connection" is a mock that writes SQL text out: nothing to protect.
    connection = None if migration_context.as_sql else migration_context.connection
    with planner.installed():
        for step in _downgrade_steps(migration_context):
            with _reads_only(connection, step, _destination(context)):
                step.migration_fn()
    return planner.drops


def refuse_data_loss(connection: sa.Connection, drops: Drops, destination: str) -> None:
    """Raise :class:`DataLossRefused` if any table or column in ``drops`` holds data."""
    inspector = sa.inspect(connection)
    holding: dict[str, int] = {}
    dropped: list[str] = []
    retyped: list[str] = []
    for table in drops.tables:
        if inspector.has_table(table):
            rows = _count(connection, table)
            if rows:
                holding[table] = rows
                dropped.append(f"{table} ({_plural(rows)})")
    for changes, described in ((drops.columns, dropped), (drops.retyped, retyped)):
        for table, column in changes:
            if inspector.has_table(table) and f"{table}.{column}" not in holding:
                values = _count(connection, table, column)
                if values:
                    holding[f"{table}.{column}"] = values
                    described.append(f"{table}.{column} ({_plural(values, 'value')})")
    if holding:
        what = " and ".join(
            part
            for part in (
                f"drop {', '.join(dropped)} and the data in them" if dropped else "",
                f"change the type of {', '.join(retyped)}, which may rewrite them"
                if retyped
                else "",
            )
            if part
        )
        raise DataLossRefused(
            f"Downgrade to {destination} refused: it would {what}. Nothing was changed. Back the "
            "data up first; to go ahead anyway, run again with -x allow_data_loss=true "
            "(alembic), --allow-data-loss (vidpipe-db) or allow_data_loss=True "
            "(vidpipe.db.downgrade).",
            drops=holding,
            destination=destination,
        )


def offline_notice(drops: Drops) -> str:
    """The SQL comment an offline (``--sql``) downgrade script starts with."""
    dropped = [f"table {t}" for t in drops.tables] + [f"column {t}.{c}" for t, c in drops.columns]
    retyped = [f"column {t}.{c}" for t, c in drops.retyped]
    lines = []
    if dropped:
        lines.append(f"this downgrade drops {', '.join(dropped)} and every row in them.")
    if retyped:
        lines.append(
            f"this downgrade changes the type of {', '.join(retyped)} (values may change)."
        )
    return "\n".join(
        [
            *(f"-- vidpipe: WARNING, {line}" for line in lines),
            "-- vidpipe: offline, nothing could be counted; "
            "back up what they hold before running it.",
        ]
    )


class _Planner(Operations):
    """What ``alembic.op`` is while a downgrade is planned: it records each operation's data
    loss (``drops``) and runs none. ``op.get_bind()`` is still the live connection."""

    def __init__(self, migration_context: MigrationContext) -> None:
        super().__init__(migration_context)
        self.drops = Drops()

    def invoke(self, operation: MigrateOperation) -> Any:
        self.drops.record(operation, self.migration_context.dialect)
        if isinstance(operation, ops.CreateTableOp):
            # op.create_table returns its Table, which a revision may go on to use (bulk_insert).
            return operation.to_table(self.migration_context)
        return None

    @contextmanager
    def batch_alter_table(
        self, table_name: str, schema: str | None = None, *_args: Any, **_options: Any
    ) -> Iterator[BatchOperations]:
        """A batch whose directives are recorded like any other; the table is never
        reflected nor rebuilt, so its options (``recreate``, ``copy_from``...) do not matter."""
        yield _BatchPlanner(self, table_name, schema)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Bind ``alembic.op``, what revisions call, to this planner for the block.

        ``Operations.context()`` does so for a plain Operations it builds itself; Alembic keeps
        that module binding per class, and this class shares Operations' (below the class).
        """
        self._install_proxy()
        try:
            yield
        finally:
            self._remove_proxy()


# alembic.op is set up for Operations; the planner is bound through that same set-up.
_Planner._setups[_Planner] = Operations._setups[Operations]


class _BatchPlanner(BatchOperations):
    """A ``batch_alter_table`` block while planning: its directives go to the planner."""

    def __init__(self, planner: _Planner, table_name: str, schema: str | None) -> None:
        # Alembic's own batch state, for the table and schema each directive names; it is
        # never flushed, which is where a real batch would reflect and rebuild the table.
        target = BatchOperationsImpl(  # type: ignore[no-untyped-call]
            planner, table_name, schema, "auto", None, (), {}, (), {}, None, None
        )
        super().__init__(planner.migration_context, impl=target)
        self.planner = planner

    def invoke(self, operation: MigrateOperation) -> Any:
        return self.planner.invoke(operation)


def _downgrade_steps(migration_context: MigrationContext) -> list[RevisionStep]:
    """The downgrade steps of this run, in order: none unless it is a downgrade."""
    work = migration_context.opts.get("fn")
    # Only runs that move to a destination (upgrade, downgrade, stamp) have steps to compute;
    # the work functions of the others (autogenerate, check) do their work when called.
    if work is None or migration_context.opts.get("destination_rev") is None:
        return []
    steps = work(migration_context.get_current_heads(), migration_context)
    return [step for step in steps if isinstance(step, RevisionStep) and not step.info.is_upgrade]


@contextmanager
def _reads_only(
    connection: sa.Connection | None, step: RevisionStep, destination: str
) -> Iterator[None]:
    """Refuse the downgrade if ``step``'s function writes through the connection while planned
    (``op.get_bind().execute(...)``): it would run twice, and what it destroys is unknown."""
    if connection is None:
        yield
        return

    def refuse_writes(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not _READ_ONLY.match(statement):
            raise DataLossRefused(
                f"Downgrade to {destination} refused: the downgrade of revision "
                f"{step.info.up_revision_id} writes to the database itself "
                f"({statement.strip()[:80]!r}), "
                "so the data-loss guard cannot see what it drops without running it. Nothing was "
                "changed. Write it with op.* directives (op.execute included), or back the data "
                "up and run again with -x allow_data_loss=true (alembic), --allow-data-loss "
                "(vidpipe-db) or allow_data_loss=True (vidpipe.db.downgrade).",
                destination=destination,
            )

    sa.event.listen(connection, "before_cursor_execute", refuse_writes)
    try:
        yield
    finally:
        sa.event.remove(connection, "before_cursor_execute", refuse_writes)


def _destination(context: EnvironmentContext) -> str:
    return str(context.get_revision_argument() or "base")


def _count(connection: sa.Connection, table: str, column: str | None = None) -> int:
    """The rows of ``table``, or its non-NULL values of ``column``."""
    quote = connection.dialect.identifier_preparer.quote
    where = f" WHERE {quote(column)} IS NOT NULL" if column else ""
    return int(
        connection.execute(sa.text(f"SELECT count(*) FROM {quote(table)}{where}")).scalar_one()
    )


def _plural(count: int, noun: str = "row") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _unquote(name: str) -> str:
    return name.strip('"`[]')
