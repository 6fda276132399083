"""Idempotent DDL for revisions: create what is missing, adopt what already exists.

vidpipe databases predate versioned migrations (they were built by ``create_all``), so every
revision must cope with finding its tables already there. Offline (``--sql``) there is nothing
to inspect: the SQL is written for an empty database.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateTable

from vidpipe.db.dialects import Dialect, dialect_for
from vidpipe.db.errors import DuplicateRows
from vidpipe.db.runner.adoption import literal_default, planned_normalisation, refuse_foreign_tables
from vidpipe.db.runner.table_locks import (
    add_foreign_key,
    declared_foreign_keys,
    release_write_locks,
    validate_foreign_keys,
    without_queueing,
)

#: How many repeated keys a refusal names; the count of all of them is given besides.
_DUPLICATES_SHOWN = 20


__all__ = [
    "drop_columns",
    "drop_index",
    "drop_referencing_columns",
    "drop_server_defaults",
    "drop_tables",
    "ensure_columns",
    "ensure_index",
    "ensure_table",
    "ensure_table_columns",
    "ensure_unique_index",
    "table_exists",
]


def _offline() -> bool:
    # The context ``op`` is bound to: the run's, also while vidpipe.db.runner.data_loss plans a
    # downgrade (online, against the live database) or names what a --sql script drops.
    return op.get_context().as_sql


def _dialect() -> Dialect:
    return dialect_for(op.get_context().dialect)


def _bind() -> sa.Connection | None:
    """The run's connection; None offline, where the SQL is written for an empty database."""
    return None if _offline() else op.get_bind()


def _alters_by_rebuilding() -> bool:
    """SQLite: columns change, and foreign keys are added, by rebuilding the table."""
    return _dialect().alters_by_rebuilding


def _inspector() -> sa.Inspector | None:
    return None if _offline() else sa.inspect(op.get_bind())


def table_exists(name: str) -> bool:
    inspector = _inspector()
    return inspector is not None and inspector.has_table(name)


def ensure_table(table: sa.Table) -> None:
    """Create ``table`` and its indexes, or adopt it: add what it lacks, normalise its columns.

    A table with this name that vidpipe did not build is refused before anything changes.
    """
    inspector = _inspector()
    if inspector is None or not inspector.has_table(table.name):
        op.execute(CreateTable(table))
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            # Empty: the plain build, in the run's transaction.
            _dialect().build_index(_bind(), op.execute, index, table.name)
        release_write_locks()  # its foreign keys locked the tables they refer to
        return
    _adopt(table, inspector)


def ensure_table_columns(table: sa.Table, added: tuple[str, ...]) -> None:
    """Bring an existing table to ``table``, the whole shape a revision leaves it in.

    Online, as :func:`ensure_table` adopts: missing columns, indexes and foreign keys are
    added, the others normalised (type, NOT NULL, literal SQL default). Offline (the script
    for a database at the previous revision) the ``added`` columns are added and the other
    columns' literal SQL defaults set; SQLite keeps defaults in the table's definition, so its
    script rebuilds the table from ``table`` as it was before (batch mode with ``copy_from``).
    """
    inspector = _inspector()
    if inspector is not None:
        _adopt(table, inspector)
        return
    defaults = [c for c in table.columns if c.name not in added and literal_default(c)]
    rebuilding = _alters_by_rebuilding()
    new = [c for c in table.columns if c.name in added]
    # SQLite adds a foreign key only by rebuilding: from the first added column that has one,
    # the added columns go into the rebuild (appended in order, as ADD COLUMN would).
    first_fk = len(new)
    if rebuilding:
        first_fk = next((i for i, c in enumerate(new) if c.foreign_keys), len(new))
    for column in new[:first_fk]:
        _add_column(table.name, column)
    rebuilt = new[first_fk:]
    if defaults or rebuilt:
        existing = tuple(c.name for c in rebuilt)
        stripped = {c.name for c in defaults}
        copy_from = _before(table, existing, stripped) if rebuilding else None
        with op.batch_alter_table(table.name, copy_from=copy_from) as alter:
            for column in defaults:
                alter.alter_column(
                    column.name,
                    server_default=column.server_default.arg,  # type: ignore[union-attr]
                    existing_type=column.type,
                    existing_nullable=column.nullable,
                )
            for column in rebuilt:
                alter.add_column(_detached(column))


def _before(table: sa.Table, added: tuple[str, ...], stripped: set[str]) -> sa.Table:
    """``table`` as the rebuild finds it: without ``added`` (yet), ``stripped`` without their
    SQL defaults (the revision gives them)."""
    columns = [
        _detached(column, keep_default=column.name not in stripped)
        for column in table.columns
        if column.name not in added
    ]
    # Named here: batch mode recreates only the indexes it finds on the table, not index=True.
    indexes = [
        sa.Index(index.name, *(c.name for c in index.columns), unique=bool(index.unique))
        for index in table.indexes
        if not {c.name for c in index.columns} & set(added)
    ]
    metadata = sa.MetaData(naming_convention=table.metadata.naming_convention)
    return sa.Table(table.name, metadata, *columns, *indexes)


def _detached(
    column: sa.Column[Any], *, keep_default: bool = True, foreign_keys: bool = True
) -> sa.Column[Any]:
    """A copy of ``column`` belonging to no table, with its foreign keys (``_copy()`` drops
    them) and without its index (declared on the table instead)."""
    keys = column.foreign_keys if foreign_keys else set()
    return sa.Column(
        column.name,
        column.type,
        *(sa.ForeignKey(fk.target_fullname) for fk in keys),
        primary_key=column.primary_key,
        nullable=column.nullable,
        default=column.default,
        server_default=column.server_default if keep_default else None,
    )


def _adopt(table: sa.Table, inspector: sa.Inspector) -> None:
    refuse_foreign_tables(op.get_bind(), [table])
    present = {column["name"] for column in inspector.get_columns(table.name)}
    adding = [column for column in table.columns if column.name not in present]
    # Read before the first change, so the table's lock lasts for the changes only.
    normalisation = planned_normalisation(table, adding=[column.name for column in adding])
    for column in adding:
        _add_column(table.name, column)
    normalisation.apply()
    release_write_locks()
    # After the types are normalised: a GIN index needs jsonb, not the json a table had.
    for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
        ensure_index(index)
    validate_foreign_keys(table.name, declared_foreign_keys(table.columns))


def ensure_columns(table_name: str, *columns: sa.Column[Any]) -> None:
    """Add to an existing table the ``columns`` it lacks (offline: all of them).

    For nullable columns without a server default: a plain ADD COLUMN that every dialect does
    without rewriting or scanning the table, however many rows it holds.
    """
    present = _column_names(table_name) or set()
    for column in columns:
        if column.name not in present:
            _add_column(table_name, column)
    release_write_locks()
    validate_foreign_keys(table_name, declared_foreign_keys(columns))


def drop_columns(table_name: str, *names: str) -> None:
    """Drop the named columns that exist, with a plain ALTER TABLE ... DROP COLUMN.

    Only for columns no constraint or index refers to: SQLite (3.35 and later) drops those in
    place, and the statement renders offline too. Columns under a constraint need a batch
    rebuild instead.
    """
    present = _column_names(table_name)
    for name in names:
        if present is None or name in present:
            op.drop_column(table_name, name)


def drop_referencing_columns(table_name: str, *names: str) -> None:
    """Drop the named columns that exist although a foreign key hangs on them.

    SQLite cannot drop such a column in place: the table is rebuilt without it (batch mode).
    MariaDB refuses while the key exists, so the key goes first. Offline the plain DROP
    COLUMN is written (a --sql script is for a database at the previous revision).
    """
    inspector = _inspector()
    if inspector is None:
        for name in names:
            op.drop_column(table_name, name)
        return
    dropping = [name for name in names if name in _column_names(table_name)]  # type: ignore[operator]
    if not dropping:
        return
    if _alters_by_rebuilding():
        with op.batch_alter_table(table_name) as batch:
            for name in dropping:
                batch.drop_column(name)
        return
    for fk in inspector.get_foreign_keys(table_name):
        if fk["name"] and set(fk["constrained_columns"]) & set(dropping):
            op.drop_constraint(fk["name"], table_name, type_="foreignkey")
    for name in dropping:
        op.drop_column(table_name, name)


def drop_server_defaults(table: sa.Table, *names: str) -> None:
    """Remove the SQL defaults of the named columns of ``table`` (as the revision spells them).

    SQLite keeps a column's default in the table's definition, so there the table is rebuilt
    (batch mode); offline that cannot be written without the whole table, so the SQLite
    script leaves the defaults, which change no row and no query.
    """
    inspector = _inspector()
    if inspector is None:
        names = () if _alters_by_rebuilding() else names
    else:
        defaulted = {c["name"] for c in inspector.get_columns(table.name) if c.get("default")}
        names = tuple(name for name in names if name in defaulted)
    if not names:
        return
    with op.batch_alter_table(table.name) as batch:  # plain ALTERs outside SQLite
        for name in names:
            column = table.c[name]
            batch.alter_column(
                name,
                server_default=None,
                existing_type=column.type,
                existing_nullable=column.nullable,
                existing_server_default=column.server_default.arg,  # type: ignore[union-attr]
            )


def _column_names(table_name: str) -> set[str] | None:
    """The table's column names, or None offline (where nothing can be inspected)."""
    inspector = _inspector()
    return None if inspector is None else {c["name"] for c in inspector.get_columns(table_name)}


def _index_names(table_name: str) -> set[str | None] | None:
    """The table's index names, or None offline."""
    inspector = _inspector()
    return None if inspector is None else {ix["name"] for ix in inspector.get_indexes(table_name)}


def _table_of(index: sa.Index) -> sa.Table:
    if index.table is None:
        raise ValueError(f"index {index.name} belongs to no table: nothing to create it on")
    return index.table


def ensure_index(index: sa.Index) -> None:
    """Create ``index`` unless a valid index of that name already exists on its table.

    On a table that holds rows the build lets the application's writes through, and an index
    a failed build left invalid is built again (each dialect's ``build_index``).
    """
    table = _table_of(index).name
    present = _index_names(table)
    if present is None or index.name not in present or _dropped_invalid(index, table):
        _dialect().build_index(_bind(), op.execute, index, table)
        release_write_locks()  # SQLite: the build held the database's write lock


def ensure_unique_index(index: sa.Index) -> None:
    """Create the unique ``index`` unless it exists; refuse if the rows already repeat its key.

    Built like :func:`ensure_index`. Rows a writer adds between the check and a concurrent
    build can still repeat a key: the build then fails, leaves the index invalid, and the next
    run drops it and names the repeated keys.

    Rows that break the new uniqueness are not the revision's to choose between (each may have
    keyframes, clips or a user's edits), so it raises :class:`DuplicateRows` naming every
    repeated key before any DDL (on SQLite after the build failed on them, rolled back: the
    scan that names them ran before every build, holding the database's write lock), and the
    user decides which rows stay.
    """
    table = _table_of(index).name
    present = _index_names(table)
    if present is not None and index.name in present and not _dropped_invalid(index, table):
        return
    _dialect().build_index(_bind(), op.execute, index, table, lambda: _refuse_duplicates(index))
    release_write_locks()  # SQLite: the build held the database's write lock


def _dropped_invalid(index: sa.Index, table: str) -> bool:
    return index.name is not None and _dialect().drop_invalid_index(
        _bind(), op.execute, str(index.name), table
    )


def _refuse_duplicates(index: sa.Index) -> None:
    columns = list(index.columns)
    repeated = (
        sa.select(*columns, sa.func.count().label("copies"))
        .group_by(*columns)
        .having(sa.func.count() > 1)
        .order_by(*columns)
    )
    found = op.get_bind().execute(repeated).all()
    if not found:
        return
    table = _table_of(index).name
    names = [column.name for column in columns]
    keys = [tuple(row[: len(columns)]) for row in found]
    shown = "; ".join(
        ", ".join(f"{name} {value}" for name, value in zip(names, key, strict=True))
        + f" ({row.copies} rows)"
        for key, row in zip(keys[:_DUPLICATES_SHOWN], found, strict=False)
    )
    more = f" and {len(keys) - _DUPLICATES_SHOWN} more" if len(keys) > _DUPLICATES_SHOWN else ""
    raise DuplicateRows(
        f"{table} holds rows that repeat ({', '.join(names)}), which the unique index "
        f"{index.name} forbids: {shown}{more}. Nothing was changed by this revision: keep one "
        f"row per ({', '.join(names)}) (rows of other tables may refer to the ones you delete), "
        "then upgrade again.",
        table=table,
        columns=tuple(names),
        duplicates=keys,
    )


def drop_index(table_name: str, name: str) -> None:
    """Drop the named index if it exists."""
    present = _index_names(table_name)
    if present is None or name in present:
        op.drop_index(name, table_name=table_name)


def drop_tables(*names: str) -> None:
    """Drop the named tables that exist, in the order given (children before parents)."""
    for name in names:
        if _offline() or table_exists(name):
            op.drop_table(name)


def _add_column(table_name: str, column: sa.Column[Any]) -> None:
    """ADD COLUMN, then its foreign key where the dialect can add one to a table (on a table
    with rows without reading them: vidpipe.db.runner.table_locks).

    SQLite cannot: the column goes in without it, and the table's normalisation adds the key
    (named like every other) in the batch rebuild it makes for it.
    """
    without_queueing(
        table_name, lambda: op.add_column(table_name, _column_to_add(column, foreign_keys=False))
    )
    if _alters_by_rebuilding():
        return
    for fk in sorted(column.foreign_keys, key=lambda fk: fk.target_fullname):
        referred_table, referred_column = fk.target_fullname.rsplit(".", 1)
        name = fk.constraint.name if fk.constraint is not None else None
        add_foreign_key(
            name if isinstance(name, str) else None,  # None: the naming convention's
            table_name,
            referred_table,
            [column.name],
            [referred_column],
        )


def _column_to_add(column: sa.Column[Any], *, foreign_keys: bool = True) -> sa.Column[Any]:
    """A copy of ``column`` that can be added to a table that already holds rows.

    A NOT NULL column needs a value for the existing rows: the model's scalar default.
    """
    copy = _detached(column, foreign_keys=foreign_keys)
    default = column.default
    if not column.nullable and column.server_default is None:
        if not (isinstance(default, sa.ColumnDefault) and default.is_scalar):
            raise RuntimeError(
                f"Cannot add NOT NULL column {column.table.name}.{column.name} to existing rows: "
                "it has no scalar default"
            )
        copy.server_default = sa.DefaultClause(str(_sql_literal(default.arg)))
    return copy


def _sql_literal(value: object) -> object:
    return int(value) if isinstance(value, bool) else value
