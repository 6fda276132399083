"""Expand or contract: what a revision does to code that does not know it, derived from its DDL.

During a rolling deploy the previous release keeps serving while the new one's revisions run,
and a replica of it may restart on the newer schema. An *expand* revision only adds what older
code never touches (tables, columns that need no value from it, indexes, keys on new columns):
older code runs on it. A *contract* revision removes or changes something older code may use,
or makes the database refuse rows older code writes: older code must not start on it.

The kind is never taken on a revision's word. The revision's ``upgrade()`` runs offline (as
``alembic upgrade --sql`` would, so the idempotent helpers write the script for a database at
the previous revision) against :class:`_RecordingImpl`, Alembic's default implementation with
its one exit, ``_exec``, replaced: every statement the revision would send (``op.add_column``,
``op.execute(CreateTable(...))``, a batch's ``alter_column``, a raw string) arrives there as a
DDL construct before it is compiled, and is judged by :func:`_judge`. The default
implementation (not SQLite's) keeps batch operations as plain ALTERs, so a SQLite table rebuild
is judged by the changes it makes, not by its drop-and-rename. The revision runs on the dialect
of the database it is recorded in: a revision may do different things per dialect (0003 does
nothing outside PostgreSQL).

The rules, and why (a statement on a table or column the same revision created is always
expand: older code never uses it):

- ``CREATE TABLE``, ``CREATE INDEX`` (not unique), comments: expand.
- ``ADD COLUMN``: expand if the column is nullable or has a SQL default (older code's INSERTs do
  not name it), unless it is unique with a default (every older INSERT would write that value).
- A unique index or constraint: expand only on new columns without a SQL default (older code
  leaves them NULL, which never collides). On existing columns it is contract: rows an older
  release writes may repeat the key and be refused (vidpipe_0005 exists because 0.1.0's store
  could write such rows).
- A foreign key: expand on new columns only (older code leaves them NULL); on existing columns
  rows older code writes may point nowhere and be refused. Check and primary key constraints on
  existing tables: contract, for the same reason.
- A SQL default given to an existing NOT NULL column that had none (as the revision states it,
  ``existing_server_default``): expand, because older code must already name the column in
  every INSERT. Any other change of a default, of nullability, of a type or a name, every DROP
  and RENAME, and writes to rows of existing tables: contract.
- Anything else (a raw SQL string, a construct these rules do not know): the kind cannot be
  derived. CI refuses such a revision (tests/migrations/test_revision_kinds.py); at upgrade time
  it is recorded as contract, the safe side. A revision whose raw SQL is meant may say
  ``CONTRACT_BECAUSE = "why"``: a revision's word can make it contract, never expand.
"""

import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from alembic.ddl import base as alembic_ddl
from alembic.ddl.impl import DefaultImpl
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ddl, dml

__all__ = ["CONTRACT", "EXPAND", "Kind", "RevisionKind", "expand_only_destination", "kind_of"]

_log = logging.getLogger(__name__)

EXPAND: Literal["expand"] = "expand"
CONTRACT: Literal["contract"] = "contract"
Kind = Literal["expand", "contract"]

#: The module attribute by which a revision declares itself contract (never expand).
DECLARED_CONTRACT = "CONTRACT_BECAUSE"


@dataclass(frozen=True)
class RevisionKind:
    """A revision's kind on one dialect, with why.

    ``reason`` names the first statement that makes it contract (what older code trips on), or
    says what it adds. ``underived`` lists the statements no rule knows; non-empty means the
    kind was not derived and is contract only to be safe.
    """

    revision: str
    down_revisions: tuple[str, ...]
    kind: Kind
    reason: str
    underived: tuple[str, ...] = ()


#: Kinds already derived in this process, by (file, its mtime and size, dialect name): every
#: run that moves a database derives the kinds of all revisions, 50-100 ms for six of them.
_derived: dict[tuple[str, int, int, str], RevisionKind] = {}


def kind_of(revision: Script, dialect: Dialect) -> RevisionKind:
    """Derive ``revision``'s kind on ``dialect`` from the statements its upgrade sends.

    Must not run while Alembic's ``op`` serves a migration of its own: the revision is run
    against a context of its own, bound to ``op`` for the time it runs.
    """
    stat = os.stat(revision.path)
    key = (revision.path, stat.st_mtime_ns, stat.st_size, dialect.name)
    if key not in _derived:
        _derived[key] = _derive(revision, dialect)
    return _derived[key]


def _derive(revision: Script, dialect: Dialect) -> RevisionKind:
    judged = _Judgement()
    declared = getattr(revision.module, DECLARED_CONTRACT, None)
    try:
        with _recording(dialect, judged):
            revision.module.upgrade()
    except Exception as exc:  # the kind of a revision that cannot run offline is unknown
        judged.underived.append(f"its upgrade() fails offline: {type(exc).__name__}: {exc}")
    down = _down_revisions(revision)
    if declared:
        return RevisionKind(revision.revision, down, CONTRACT, _shortened(f"declared: {declared}"))
    if judged.underived:
        return RevisionKind(
            revision.revision,
            down,
            CONTRACT,
            _shortened(f"its kind cannot be derived from {judged.underived[0]}"),
            tuple(judged.underived),
        )
    if judged.contract:
        return RevisionKind(revision.revision, down, CONTRACT, _shortened(judged.contract[0]))
    added = "; ".join(judged.expand) if judged.expand else "changes nothing on this dialect"
    return RevisionKind(revision.revision, down, EXPAND, _shortened(added))


def expand_only_destination(
    script: ScriptDirectory, current: tuple[str, ...], destination: str, dialect: Dialect
) -> str | None:
    """Where an expand-only upgrade from ``current`` towards ``destination`` stops: before the
    first contract revision on the way (logged, with why), or at ``destination``; None if the
    first revision to apply is already contract.

    This is the step of a rolling deploy that runs while the previous release still serves;
    the contract revisions wait until every replica runs the new release. A database at a
    revision this code does not know is left to the version check (``destination`` as given).
    """
    known = {revision.revision for revision in script.walk_revisions()}
    if not set(current) <= known:
        return destination
    pending = [r for r in script.iterate_revisions(destination, current or "base") if r]
    for revision in reversed(pending):  # oldest first
        kind = kind_of(revision, dialect)
        if kind.kind == EXPAND:
            continue
        held_back = [r.revision for r in pending[: pending.index(revision) + 1]][::-1]
        _log.warning(
            "Expand-only upgrade: held back %s, contract revision(s) from %s on (%s). Upgrade "
            "without --expand-only (expand_only=False) once every replica runs this release.",
            ", ".join(held_back),
            revision.revision,
            kind.reason,
        )
        down = _down_revisions(revision)
        return down[0] if len(down) == 1 and down[0] not in current else None
    return destination


@dataclass
class _Judgement:
    """What one revision's statements were found to do, and what it created (its own)."""

    expand: list[str] = field(default_factory=list)
    contract: list[str] = field(default_factory=list)
    underived: list[str] = field(default_factory=list)
    new_tables: set[str] = field(default_factory=set)
    #: (table, column) -> whether the column has a SQL default.
    new_columns: dict[tuple[str, str], bool] = field(default_factory=dict)

    def owns(self, table: str, columns: list[str] | None = None) -> bool:
        """Whether older code cannot be using this table (or these columns): they are new."""
        if table in self.new_tables:
            return True
        return bool(columns) and all((table, c) in self.new_columns for c in columns or ())

    def unique_is_expand(self, table: str, columns: list[str]) -> bool:
        """A unique key older code cannot collide on: a new table, or new columns older code
        leaves NULL (a SQL default would give every older row the same value)."""
        if table in self.new_tables:
            return True
        return self.owns(table, columns) and not any(self.new_columns[(table, c)] for c in columns)


class _RecordingImpl(DefaultImpl):
    """Alembic's default implementation, judging each statement instead of sending it.

    No ``__dialect__`` of its own: a subclass that named one would replace that dialect's
    implementation in Alembic's registry for every migration in the process.
    """

    judged: _Judgement

    def _exec(self, construct: Any, *args: Any, **kwargs: Any) -> None:
        _judge(construct, self.judged)

    def static_output(self, text: str) -> None:
        """Comments for the offline script (a squawk hint): nothing to judge."""


@contextmanager
def _recording(dialect: Dialect, judged: _Judgement) -> Iterator[None]:
    # Its "Context impl ..." lines would read as if a migration were starting.
    migration_log = logging.getLogger("alembic.runtime.migration")
    level = migration_log.level
    migration_log.setLevel(logging.WARNING)
    try:
        context = MigrationContext.configure(
            dialect=dialect, opts={"as_sql": True, "output_buffer": io.StringIO()}
        )
    finally:
        migration_log.setLevel(level)
    impl = _RecordingImpl(dialect, None, True, None, io.StringIO(), context.opts)
    impl.judged = judged
    context.impl = impl
    with Operations.context(context):
        yield


def _judge(construct: Any, judged: _Judgement) -> None:
    """Sort one statement into expand, contract or underived (the rules: the module's doc)."""
    if isinstance(construct, ddl.CreateTable):
        judged.new_tables.add(construct.element.name)
        judged.expand.append(f"creates table {construct.element.name}")
    elif isinstance(construct, ddl.CreateIndex):
        _judge_index(construct.element, judged)
    elif isinstance(construct, alembic_ddl.AddColumn):
        _judge_added_column(construct.table_name, construct.column, judged)
    elif isinstance(construct, ddl.AddConstraint):
        _judge_constraint(construct.element, judged)
    elif isinstance(construct, alembic_ddl.ColumnDefault):
        _judge_default(construct, judged)
    elif isinstance(
        construct,
        ddl.SetTableComment
        | ddl.DropTableComment
        | ddl.SetColumnComment
        | alembic_ddl.ColumnComment,
    ):
        judged.expand.append("changes a comment")
    elif isinstance(construct, alembic_ddl.AlterColumn):  # nullability, type, name
        where = f"{construct.table_name}.{construct.column_name}"
        if judged.owns(construct.table_name, [construct.column_name]):
            judged.expand.append(f"alters its new column {where}")
        else:
            judged.contract.append(f"{_ALTERATIONS[type(construct)]} {where}")
    elif isinstance(construct, alembic_ddl.DropColumn):
        _judge_removal(
            construct.table_name,
            f"drops column {construct.table_name}.{construct.column.name}",
            judged,
            [construct.column.name],
        )
    elif isinstance(construct, alembic_ddl.RenameTable):
        _judge_removal(
            construct.table_name,
            f"renames table {construct.table_name} to {construct.new_table_name}",
            judged,
        )
    elif isinstance(construct, ddl.DropTable):
        _judge_removal(construct.element.name, f"drops table {construct.element.name}", judged)
    elif isinstance(construct, ddl.DropIndex):
        table = construct.element.table
        _judge_removal(
            table.name if table is not None else "",
            f"drops index {construct.element.name}",
            judged,
        )
    elif isinstance(construct, ddl.DropConstraint):
        table = construct.element.table
        _judge_removal(
            table.name if table is not None else "",
            f"drops constraint {construct.element.name}",
            judged,
        )
    elif isinstance(construct, dml.Insert | dml.Update | dml.Delete):
        written = str(getattr(construct.table, "name", construct.table))
        verb = type(construct).__name__.lower()
        if written in judged.new_tables:
            judged.expand.append(f"{verb}s rows of its new table {written}")
        else:
            judged.contract.append(f"{verb}s rows of {written}, which older code reads")
    else:
        judged.underived.append(_shortened(f"{type(construct).__name__}: {construct}", 200))


_ALTERATIONS: dict[type, str] = {
    alembic_ddl.ColumnNullable: "changes whether NULL is allowed in",
    alembic_ddl.ColumnType: "changes the type of",
    alembic_ddl.ColumnName: "renames column",
    alembic_ddl.ComputedColumnDefault: "changes the computed value of",
    alembic_ddl.IdentityColumnDefault: "changes the identity of",
}


def _judge_index(index: sa.Index, judged: _Judgement) -> None:
    table = index.table.name if index.table is not None else ""
    columns = [column.name for column in index.columns]
    described = f"index {index.name} on {table}({', '.join(columns) or 'an expression'})"
    if not index.unique:
        judged.expand.append(f"creates {described}")
    elif judged.unique_is_expand(table, columns):
        judged.expand.append(f"creates unique {described} on new columns")
    else:
        judged.contract.append(
            f"creates unique {described}: rows an older release writes may repeat its key"
        )


def _judge_added_column(table: str, column: sa.Column[Any], judged: _Judgement) -> None:
    where = f"{table}.{column.name}"
    has_default = column.server_default is not None
    judged.new_columns[(table, column.name)] = has_default
    if table in judged.new_tables:
        judged.expand.append(f"adds column {where} to its new table")
    elif not column.nullable and not has_default:
        judged.contract.append(
            f"adds NOT NULL column {where} without a SQL default: older code's INSERTs fail"
        )
    elif column.unique and has_default:
        judged.contract.append(
            f"adds unique column {where} with a SQL default: older code's INSERTs collide"
        )
    else:
        judged.expand.append(f"adds column {where}")


def _judge_constraint(constraint: Any, judged: _Judgement) -> None:
    table = constraint.table.name if constraint.table is not None else ""
    columns = [column.name for column in constraint.columns]
    named = f"{constraint.name} " if isinstance(constraint.name, str) else ""
    described = f"{named}on {table}({', '.join(columns)})"
    if isinstance(constraint, sa.ForeignKeyConstraint):
        if judged.owns(table, columns):
            judged.expand.append(f"adds foreign key {described} on new columns")
        else:
            judged.contract.append(
                f"adds foreign key {described}: rows older code writes may point nowhere"
            )
    elif isinstance(constraint, sa.UniqueConstraint):
        if judged.unique_is_expand(table, columns):
            judged.expand.append(f"adds unique constraint {described} on new columns")
        else:
            judged.contract.append(
                f"adds unique constraint {described}: rows an older release writes may repeat "
                "its key"
            )
    elif table in judged.new_tables:
        judged.expand.append(f"adds {described} to its new table")
    else:
        judged.contract.append(
            f"adds {type(constraint).__name__} {described}: rows older code writes may break it"
        )


def _judge_default(change: alembic_ddl.ColumnDefault, judged: _Judgement) -> None:
    where = f"{change.table_name}.{change.column_name}"
    had_none = change.existing_server_default in (None, False)
    if judged.owns(change.table_name, [change.column_name]):
        judged.expand.append(f"sets the SQL default of its new column {where}")
    elif change.default is not None and had_none and change.existing_nullable is False:
        judged.expand.append(f"gives NOT NULL column {where} a SQL default")
    elif change.default is None:
        judged.contract.append(f"removes the SQL default of {where}: older INSERTs rely on it")
    else:
        judged.contract.append(
            f"changes the SQL default of {where}: rows older code inserts get another value"
        )


def _judge_removal(
    table: str, described: str, judged: _Judgement, columns: list[str] | None = None
) -> None:
    if judged.owns(table, columns):
        judged.expand.append(f"{described} (its own)")
    else:
        judged.contract.append(f"{described}, which older code may use")


def _down_revisions(revision: Script) -> tuple[str, ...]:
    down = revision.down_revision
    if down is None:
        return ()
    return (down,) if isinstance(down, str) else tuple(down)


def _shortened(text: str, limit: int = 500) -> str:
    """One line, at most ``limit`` characters: what the record's ``reason`` column holds."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
