"""Idempotent DDL for revisions: create what is missing, adopt what already exists.

vidpipe databases predate versioned migrations (they were built by ``create_all``), so every
revision must cope with finding its tables already there. Offline (``--sql``) there is nothing
to inspect: the SQL is written for an empty database.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable


def _offline() -> bool:
    # The context ``op`` is bound to, not env.py's: vidpipe.db.data_loss renders downgrades
    # offline inside an online run to see what they would drop.
    return op.get_context().as_sql


def _inspector() -> sa.Inspector | None:
    return None if _offline() else sa.inspect(op.get_bind())


def table_exists(name: str) -> bool:
    inspector = _inspector()
    return inspector is not None and inspector.has_table(name)


def ensure_table(table: sa.Table) -> None:
    """Create ``table`` and its indexes, or add the columns and indexes it lacks."""
    inspector = _inspector()
    if inspector is None or not inspector.has_table(table.name):
        op.execute(CreateTable(table))
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            op.execute(CreateIndex(index))
        return
    present = {column["name"] for column in inspector.get_columns(table.name)}
    for column in table.columns:
        if column.name not in present:
            op.add_column(table.name, _column_to_add(column))
    indexed = {index["name"] for index in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexed:
            op.execute(CreateIndex(index))


def drop_tables(*names: str) -> None:
    """Drop the named tables that exist, in the order given (children before parents)."""
    for name in names:
        if _offline() or table_exists(name):
            op.drop_table(name)


def _column_to_add(column: sa.Column) -> sa.Column:
    """A copy of ``column`` that can be added to a table that already holds rows.

    A NOT NULL column needs a value for the existing rows: the model's scalar default.
    """
    copy = column._copy()
    default = column.default
    if not column.nullable and column.server_default is None:
        if default is None or not default.is_scalar:
            raise RuntimeError(
                f"Cannot add NOT NULL column {column.table.name}.{column.name} to existing rows: "
                "it has no scalar default"
            )
        copy.server_default = sa.DefaultClause(str(_sql_literal(default.arg)))
    return copy


def _sql_literal(value: object) -> object:
    return int(value) if isinstance(value, bool) else value
