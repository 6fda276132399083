"""Adopting tables that a vidpipe from before Alembic built: refuse strangers, normalise the rest.

Those backends ran ``create_all`` and then hand-written ``ALTER TABLE ... ADD COLUMN`` whose
declarations were looser than a fresh table's (``TEXT`` for UUID references, ``REAL``,
``INTEGER DEFAULT 0`` for booleans, nullable counters); PostgreSQL databases built that way hold
``JSON`` where vidpipe now keeps ``JSONB``. Alembic's own comparison (what ``alembic check``
runs) finds those differences, and exactly those are normalised, so a later check finds nothing.
A table that needs nothing is never rewritten.

Anything else with vidpipe's table names is not a vidpipe table: it is refused, before any DDL,
because on MariaDB a DDL statement commits itself and could not be taken back.
"""

import logging
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import DatabaseAheadError, NotAVidpipeDatabase
from vidpipe.db.models import Base
from vidpipe.db.runner.table_locks import add_foreign_key, release_write_locks, without_queueing

__all__ = [
    "Normalisation",
    "literal_default",
    "planned_normalisation",
    "refuse_foreign_tables",
]

_log = logging.getLogger(__name__)

#: For each kind of column vidpipe declares, the reflected types an older vidpipe may have left
#: there. The first kind the declared type is an instance of decides.
_COMPATIBLE: tuple[
    tuple[type[sa.types.TypeEngine[Any]], tuple[type[sa.types.TypeEngine[Any]], ...]], ...
] = (
    (sa.Boolean, (sa.Boolean, sa.Integer)),  # INTEGER DEFAULT 0, TINYINT(1)
    (sa.Uuid, (sa.Uuid, sa.String)),  # CHAR(32) or TEXT hex on SQLite
    (sa.JSON, (sa.JSON, sa.String)),  # TEXT on SQLite; MariaDB reflects JSON as LONGTEXT
    (sa.Integer, (sa.Integer,)),
    (sa.Float, (sa.Float, sa.Numeric)),  # REAL, DOUBLE PRECISION
    (sa.DateTime, (sa.DateTime,)),
    (sa.LargeBinary, (sa.LargeBinary,)),
    (sa.String, (sa.String,)),
)


def refuse_foreign_tables(connection: sa.Connection, tables: Iterable[sa.Table]) -> None:
    """Raise if any existing table of ``tables`` is not one this vidpipe can adopt.

    Ours means: every column it has is one vidpipe declares, with a type an older vidpipe
    could have given it, and every column it lacks can be added (nullable or with a default).
    Tables that fit except for columns this version never declared were written by a newer
    vidpipe backend (:class:`DatabaseAheadError`); anything else is somebody else's
    (:class:`NotAVidpipeDatabase`). Only names and types are read, never a row.
    """
    inspector = sa.inspect(connection)
    found = [
        (table.name, _problems(table, inspector.get_columns(table.name)))
        for table in tables
        if inspector.has_table(table.name)
    ]  # every table is looked at, so the message lists all there is to fix at once
    problems = [(name, problem) for name, problem in found if problem.any]
    if not problems:
        return
    if all(problem.only_unknown_columns for _name, problem in problems):
        unknown = "; ".join(f"{name} ({', '.join(p.strangers)})" for name, p in problems)
        raise DatabaseAheadError(
            f"{_where(connection)} was written by a newer version of vidpipe than this package "
            f"knows: its tables have columns this version never declared: {unknown}. Nothing "
            "was changed. Upgrade vidpipe-data to a release that knows them."
        )
    described = ", ".join(f"{name} ({problem.describe()})" for name, problem in problems)
    raise NotAVidpipeDatabase(
        f"{_where(connection)} holds tables with vidpipe's names that vidpipe did not "
        f"create: {described}. Nothing was changed. Point vidpipe at a database "
        "(or schema) of its own, or rename those tables if they belong to something else."
    )


def planned_normalisation(table: sa.Table, adding: Collection[str] = ()) -> "Normalisation":
    """What to give the columns of existing ``table`` for them to be as the revision declares.

    That is their types and NOT NULLs, the literal SQL defaults the revision declares (never
    removing one it does not) and the foreign keys of its columns (an ``ADD COLUMN`` that
    predates them left some out). Only the differences Alembic's comparison reports are
    touched; on SQLite they are applied in one batch (move and copy), which keeps every stored
    value as it is, or, where they are only defaults and foreign keys, by an edit of the
    table's definition that copies nothing (vidpipe.db.dialects.sqlite_schema_edit).

    Everything is read here, before the table changes: the comparison reflects the table, and
    values a conversion would refuse are named first. The caller then adds the ``adding``
    columns with their foreign keys (SQLite: without, the batch adds those) and applies the
    rest, so the table's lock lasts for the changes only (vidpipe.db.runner.table_locks).
    """
    changes, foreign_keys = _differences(table)
    bind = op.get_bind()
    dialect = dialect_for(bind.dialect)
    if not dialect.alters_by_rebuilding:
        foreign_keys = [fk for fk in foreign_keys if not set(_fk_columns(fk)[0]) & set(adding)]
    for name, change in changes.items():
        if "type_" in change:
            dialect.check_conversion(bind, table, name, change["type_"])
    return Normalisation(table, changes, foreign_keys)


@dataclass(frozen=True)
class Normalisation:
    """The changes :func:`planned_normalisation` found for ``table``: ``alter_column``
    arguments per column and the foreign keys to add."""

    table: sa.Table
    changes: dict[str, dict[str, Any]]
    foreign_keys: list[sa.ForeignKeyConstraint]

    def apply(self) -> None:
        """Make the changes, then log them with the table's row count and the time taken."""
        table, changes, foreign_keys = self.table, self.changes, self.foreign_keys
        if not changes and not foreign_keys:
            return
        started = time.monotonic()
        bind = op.get_bind()
        for name, change in changes.items():
            if change.get("nullable") is False:
                _fill_nulls(table.c[name])
        dialect = dialect_for(bind.dialect)
        if dialect.alter_in_place(bind, table, changes, foreign_keys):
            pass  # SQLite: defaults and foreign keys only, no row to copy
        elif dialect.alters_by_rebuilding:
            with op.batch_alter_table(table.name) as batch:
                for name, change in changes.items():
                    batch.alter_column(name, **change)
                for fk in foreign_keys:
                    batch.create_foreign_key(_name(fk), fk.referred_table.name, *_fk_columns(fk))
        else:
            for name, change in changes.items():
                if "type_" in change:
                    change.update(dialect.type_change_options(bind, table.c[name]))
                without_queueing(table.name, partial(op.alter_column, table.name, name, **change))
            for fk in foreign_keys:
                add_foreign_key(_name(fk), table.name, fk.referred_table.name, *_fk_columns(fk))
        release_write_locks()  # before the count below, which reads every row
        rows = _row_count(table.name)
        # An empty table (every table of a fresh database) only took the revision's DDL: at
        # INFO that would read as a repair of something the user has.
        _log.log(
            logging.INFO if rows else logging.DEBUG,
            "normalised %s (%s%s): %d rows in %.2f s",
            table.name,
            ", ".join(changes),
            "".join(f", foreign key on {', '.join(_fk_columns(fk)[0])}" for fk in foreign_keys),
            rows,
            time.monotonic() - started,
        )


@dataclass(frozen=True)
class _Problems:
    """What keeps one existing table from being adopted."""

    strangers: list[str]
    mismatched: list[str]
    lacking: list[str]

    @property
    def any(self) -> bool:
        return bool(self.strangers or self.mismatched or self.lacking)

    @property
    def only_unknown_columns(self) -> bool:
        return bool(self.strangers) and not (self.mismatched or self.lacking)

    def describe(self) -> str:
        strangers = ", ".join(self.strangers)
        parts = [f"columns vidpipe never had ({strangers})"] if strangers else []
        parts += self.mismatched
        parts += [f"no {', '.join(self.lacking)}"] if self.lacking else []
        return "; ".join(parts)


def _problems(table: sa.Table, reflected: list[Any]) -> _Problems:
    found = {column["name"]: column["type"] for column in reflected}
    # A revision's frozen table lacks the columns later revisions add; the models have them.
    head = Base.metadata.tables.get(table.name)
    known = set(table.columns.keys()) | (set(head.columns.keys()) if head is not None else set())
    return _Problems(
        strangers=sorted(set(found) - known),
        mismatched=[
            f"{column.name} is {found[column.name]}, not {type(column.type).__name__}"
            for column in table.columns
            if column.name in found and not _compatible(column.type, found[column.name])
        ],
        lacking=[c.name for c in table.columns if c.name not in found and not _can_be_added(c)],
    )


def _can_be_added(column: sa.Column[Any]) -> bool:
    default = column.default
    return (
        column.nullable or column.server_default is not None or bool(default and default.is_scalar)
    )


def _compatible(declared: sa.types.TypeEngine[Any], found: sa.types.TypeEngine[Any]) -> bool:
    for kind, accepted in _COMPATIBLE:
        if isinstance(declared, kind):
            return isinstance(found, accepted)
    return isinstance(found, type(declared))


def _differences(
    table: sa.Table,
) -> tuple[dict[str, dict[str, Any]], list[sa.ForeignKeyConstraint]]:
    """``alter_column`` arguments per column and the foreign keys to add, from what Alembic's
    comparison reports for ``table``."""

    def only_this_table(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
        return type_ != "table" or name == table.name

    def only_this_declared_table(_object: Any, name: str | None, type_: str, *_: Any) -> bool:
        return only_this_table(name, type_, {})

    # Alembic logs its set-up, and every column the revision leaves out as "removed".
    with _quiet("alembic.runtime"), _quiet("alembic.autogenerate"):
        context = MigrationContext.configure(
            connection=op.get_bind(),
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": only_this_table,  # what is reflected
                # ...and what is declared: the revision's other tables would each be compared as
                # missing, at most of an upgrade's cost.
                "include_object": only_this_declared_table,
            },
        )
        diffs = list(_flatten(compare_metadata(context, table.metadata)))
    changes: dict[str, dict[str, Any]] = {}
    foreign_keys = []
    for diff in diffs:
        if diff[0] == "add_fk":
            foreign_keys.append(diff[1])
            continue
        if diff[0] not in ("modify_type", "modify_nullable", "modify_default"):
            continue  # missing columns and indexes are ensure_table's; the rest is left alone
        kind, _schema, _table, name, existing, old, new = diff
        if kind == "modify_default" and not literal_default(table.c[name]):
            continue  # timestamps' now() is spelled differently per dialect; never removed
        change = changes.setdefault(name, {})
        change.update(existing)
        if kind == "modify_type":
            change.update(type_=new, existing_type=old)
        elif kind == "modify_nullable":
            change.update(nullable=new, existing_nullable=old)
        else:
            change.update(server_default=new.arg, existing_server_default=old)
    return changes, foreign_keys


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def literal_default(column: sa.Column[Any]) -> bool:
    """Whether ``column``'s SQL default is a constant (not a function such as ``now()``)."""
    default = column.server_default
    return isinstance(default, sa.DefaultClause) and not isinstance(
        default.arg, sa.sql.functions.FunctionElement
    )


def _name(constraint: sa.Constraint) -> str | None:
    """The constraint's name (its naming convention's, for the models' and revisions' own)."""
    return constraint.name if isinstance(constraint.name, str) else None


def _fk_columns(fk: sa.ForeignKeyConstraint) -> tuple[list[str], list[str]]:
    return [c.name for c in fk.columns], [e.column.name for e in fk.elements]


def _row_count(table_name: str) -> int:
    quoted = op.get_bind().dialect.identifier_preparer.quote(table_name)
    return int(op.get_bind().exec_driver_sql(f"SELECT count(*) FROM {quoted}").scalar_one())


def _flatten(diffs: list[Any]) -> Iterable[tuple[Any, ...]]:
    for diff in diffs:
        yield from diff if isinstance(diff, list) else [diff]


def _fill_nulls(column: sa.Column[Any]) -> None:
    """Give rows that hold NULL the model's default, so the column can become NOT NULL."""
    default = column.default
    if isinstance(default, sa.ColumnDefault) and default.is_scalar:
        op.execute(
            sa.update(column.table).where(column.is_(None)).values({column.name: default.arg})
        )


def _where(connection: sa.Connection) -> str:
    url = connection.engine.url
    return f"The database {url.render_as_string(hide_password=True)!r}"
