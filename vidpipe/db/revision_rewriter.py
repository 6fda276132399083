"""What ``alembic revision --autogenerate`` writes: vidpipe's idiom instead of Alembic's raw ops.

Every vidpipe revision is idempotent (it creates what is missing and adopts what exists), so
the operations autogenerate finds are rewritten into the helpers of :mod:`vidpipe.db.idempotent`
(Alembic's documented ``autogenerate.rewriter.Rewriter`` and custom renderers), the revision is
numbered ``vidpipe_NNNN`` after the newest one, and ``alembic.ini``'s ``post_write_hooks`` run
ruff over the file. An operation no helper covers stays as autogenerate wrote it, under a
comment that starts with :data:`NOT_IDEMPOTENT`; ``tests/migrations/test_idempotency.py`` names
it until a maintainer has made it idempotent and removed the comment.

Only ``migrations/env.py`` imports this module, and only for ``revision --autogenerate``: an
upgrade, a downgrade or ``--sql`` never loads it.
"""

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import render, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.rewriter import Rewriter
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = [
    "NOT_IDEMPOTENT",
    "next_revision_id",
    "operations_left_as_written",
    "write_in_vidpipe_idiom",
]

#: The comment above an operation the rewriter left as autogenerate wrote it.
NOT_IDEMPOTENT = "# NOT IDEMPOTENT"
#: vidpipe's revision ids: the project's name and a four-digit sequence number.
REVISION_ID = re.compile(r"vidpipe_(\d{4})")
#: Alembic's own random ids (``uuid4().hex[-12:]``), which the rewriter replaces.
_RANDOM_ID = re.compile(r"[0-9a-f]{12}")
_HELPERS = "vidpipe.db.idempotent"


def next_revision_id(script: ScriptDirectory) -> str:
    """``vidpipe_NNNN`` one past the highest number in the history (``vidpipe_0001`` if none)."""
    numbers = [
        int(match.group(1))
        for revision in script.walk_revisions()
        if (match := REVISION_ID.fullmatch(revision.revision))
    ]
    return f"vidpipe_{max(numbers, default=0) + 1:04d}"


def operations_left_as_written(versions: Path) -> list[str]:
    """``<file>:<line>: <operations>`` for each :data:`NOT_IDEMPOTENT` comment in the revision
    files under ``versions``: what a maintainer still has to make idempotent."""
    found = []
    for path in sorted(versions.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            comment = line.strip()
            if comment.startswith(NOT_IDEMPOTENT):
                what = comment.removeprefix(NOT_IDEMPOTENT).lstrip(": ").split(", as ")[0]
                found.append(f"{path.name}:{number}: {what}")
    return found


# The operations a revision writes in vidpipe's idiom. Each holds Alembic's own op, whose parts
# (columns, types, constraints) Alembic's renderers spell out.


@dataclass
class Tables(ops.MigrateOperation):
    """The tables the operations below refer to, spelled out in the revision (never the models:
    a revision is frozen, the models move on): ``metadata`` and one variable per table."""

    #: New tables, whole, with the indexes autogenerate found for them.
    created: list["EnsureTable"] = field(default_factory=list)
    #: Existing tables an index is built on or a new table's foreign key refers to: table ->
    #: the columns the revision needs of it.
    existing: dict[str, list[str]] = field(default_factory=dict)
    #: Those of them an index is built on (the index's columns are the variable's).
    indexed: set[str] = field(default_factory=set)


@dataclass
class EnsureTable(ops.MigrateOperation):
    create: ops.CreateTableOp
    indexes: list[ops.CreateIndexOp] = field(default_factory=list)


@dataclass
class DropTables(ops.MigrateOperation):
    names: list[str]


@dataclass
class EnsureColumns(ops.MigrateOperation):
    table_name: str
    columns: list[sa.Column[object]]


@dataclass
class DropColumns(ops.MigrateOperation):
    table_name: str
    names: list[str]
    #: Whether a foreign key hangs on one of them (SQLite rebuilds, MariaDB drops the key first).
    referencing: bool


@dataclass
class EnsureIndex(ops.MigrateOperation):
    create: ops.CreateIndexOp


@dataclass
class DropIndex(ops.MigrateOperation):
    table_name: str
    name: str


@dataclass
class NotIdempotent(ops.MigrateOperation):
    """The comment above an operation left as autogenerate wrote it."""

    what: str


_rewriter = Rewriter()


@_rewriter.rewrites(ops.CreateTableOp)
def _create_table(
    context: MigrationContext, revision: object, op: ops.CreateTableOp
) -> ops.MigrateOperation:
    return EnsureTable(op)


@_rewriter.rewrites(ops.DropTableOp)
def _drop_table(
    context: MigrationContext, revision: object, op: ops.DropTableOp
) -> ops.MigrateOperation:
    return DropTables([op.table_name])


@_rewriter.rewrites(ops.AddColumnOp)
def _add_column(
    context: MigrationContext, revision: object, op: ops.AddColumnOp
) -> ops.MigrateOperation:
    return EnsureColumns(op.table_name, [op.column])


@_rewriter.rewrites(ops.DropColumnOp)
def _drop_column(
    context: MigrationContext, revision: object, op: ops.DropColumnOp
) -> ops.MigrateOperation:
    column = op.to_column()
    return DropColumns(op.table_name, [op.column_name], bool(column.foreign_keys))


@_rewriter.rewrites(ops.CreateIndexOp)
def _create_index(
    context: MigrationContext, revision: object, op: ops.CreateIndexOp
) -> ops.MigrateOperation:
    # Expressions (functional indexes) have no column to declare: left as written.
    if all(isinstance(column, str) for column in op.columns) or all(
        isinstance(column, sa.Column) for column in op.columns
    ):
        return EnsureIndex(op)
    return op


@_rewriter.rewrites(ops.DropIndexOp)
def _drop_index(
    context: MigrationContext, revision: object, op: ops.DropIndexOp
) -> ops.MigrateOperation:
    if op.table_name is None:
        return op
    return DropIndex(op.table_name, str(op.index_name))


def _arrange(ops_list: list[ops.MigrateOperation]) -> list[ops.MigrateOperation]:
    """Lift rewritten operations out of per-table containers (batch mode on SQLite: a helper
    runs outside any ``batch_alter_table``), merge neighbours that one helper call takes, fold a
    new table's indexes into the table, and put a comment above what stays as written."""
    flat: list[ops.MigrateOperation] = []
    for op in ops_list:
        if not isinstance(op, ops.ModifyTableOps):
            flat.append(op)
            continue
        kept: list[ops.MigrateOperation] = []
        for inner in op.ops:
            if isinstance(inner, _IDIOM):
                if kept:
                    flat.append(ops.ModifyTableOps(op.table_name, kept, schema=op.schema))
                    kept = []
                flat.append(inner)
            else:
                kept.append(inner)
        if kept:
            flat.append(ops.ModifyTableOps(op.table_name, kept, schema=op.schema))

    created = {op.create.table_name: op for op in flat if isinstance(op, EnsureTable)}
    dropped = {name for op in flat if isinstance(op, DropTables) for name in op.names}
    arranged: list[ops.MigrateOperation] = []
    for op in flat:
        if isinstance(op, EnsureIndex) and op.create.table_name in created:
            created[op.create.table_name].indexes.append(op.create)
        elif isinstance(op, DropIndex) and op.table_name in dropped:
            continue  # goes with its table
        elif arranged and _merged(arranged[-1], op):
            continue
        else:
            if not isinstance(op, _IDIOM):
                arranged.append(NotIdempotent(_describe(op)))
            arranged.append(op)
    tables = _tables(arranged, created)
    return [tables, *arranged] if tables else arranged


def _merged(previous: ops.MigrateOperation, op: ops.MigrateOperation) -> bool:
    """Fold ``op`` into ``previous`` when one helper call does both."""
    if (
        isinstance(previous, EnsureColumns)
        and isinstance(op, EnsureColumns)
        and previous.table_name == op.table_name
    ):
        previous.columns.extend(op.columns)
        return True
    if (
        isinstance(previous, DropColumns)
        and isinstance(op, DropColumns)
        and (previous.table_name, previous.referencing) == (op.table_name, op.referencing)
    ):
        previous.names.extend(op.names)
        return True
    if isinstance(previous, DropTables) and isinstance(op, DropTables):
        previous.names.extend(op.names)
        return True
    return False


def _describe(op: ops.MigrateOperation) -> str:
    """``op.alter_column on scene_manifests``: the operations as Alembic names them."""
    inner = op.ops if isinstance(op, ops.ModifyTableOps) else [op]
    names = sorted(
        {
            re.sub(r"(?<!^)(?=[A-Z])", "_", type(o).__name__).lower().removesuffix("_op")
            for o in inner
        }
    )
    table = getattr(op, "table_name", None)
    what = ", ".join(f"op.{name}" for name in names)
    return f"{what} on {table}" if table else what


def _tables(arranged: list[ops.MigrateOperation], created: dict[str, EnsureTable]) -> Tables | None:
    existing: dict[str, list[str]] = {}

    def declare(table: str, names: list[str]) -> None:
        columns = existing.setdefault(table, [])
        columns += [name for name in names if name not in columns]

    indexed = {op.create.table_name for op in arranged if isinstance(op, EnsureIndex)}
    for op in arranged:
        if isinstance(op, EnsureIndex):
            declare(op.create.table_name, _index_column_names(op.create))
    for ensure in created.values():
        for fk in ensure.create.to_table().foreign_keys:
            table, name = fk.target_fullname.rsplit(".", 1)
            if table not in created:
                declare(table, [name])
    if not (created or indexed):
        return None
    return Tables(list(created.values()), existing, indexed)


def _index_column_names(create: ops.CreateIndexOp) -> list[str]:
    # Only indexes on plain columns are rewritten (_create_index): names or Column objects.
    return [c.name if isinstance(c, sa.Column) else str(c) for c in create.columns]


_IDIOM = (EnsureTable, DropTables, EnsureColumns, DropColumns, EnsureIndex, DropIndex)


def _arrange_scripts(
    context: MigrationContext, revision: object, directives: list[ops.MigrationScript]
) -> None:
    for script in directives:
        for container in [*script.upgrade_ops_list, *script.downgrade_ops_list]:
            container.ops[:] = _arrange(container.ops)


def _number(
    context: MigrationContext, revision: object, directives: list[ops.MigrationScript]
) -> None:
    """Alembic's random id becomes the next ``vidpipe_NNNN`` (``--rev-id`` is kept)."""
    script_directory = context.opts["script"]
    for script in directives:
        if script.rev_id is None or _RANDOM_ID.fullmatch(script.rev_id):
            script.rev_id = next_revision_id(script_directory)


#: The ``process_revision_directives`` hook env.py configures for ``revision --autogenerate``.
write_in_vidpipe_idiom = _rewriter.chain(_arrange_scripts).chain(_number)


# How each operation reads in the revision file.


def _helper(autogen_context: AutogenContext, name: str) -> str:
    autogen_context.imports.add(f"from {_HELPERS} import {name}")
    return name


def _variable(table: str) -> str:
    """The name a revision gives a table: its own, unless Python or the file uses it."""
    taken = table in {"sa", "op", "metadata"} or table.startswith(("ensure_", "drop_"))
    if table.isidentifier() and not keyword.iskeyword(table) and not taken:
        return table
    return "table_" + re.sub(r"\W", "_", table)


def _column_text(autogen_context: AutogenContext, column: sa.Column[object]) -> str:
    # Alembic's own rendering of a column: the same text it writes into op.add_column.
    return render._render_column(column, autogen_context)


@renderers.dispatch_for(Tables)
def _render_tables(autogen_context: AutogenContext, op: Tables) -> str:
    autogen_context.imports.add("from vidpipe.db.types import NAMING_CONVENTION")
    lines = [
        "# The tables as this revision leaves them (a revision never imports the models: they",
        "# move on, the revision is frozen).",
        "metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)",
    ]
    for table, names in sorted(op.existing.items()):
        spelled = ", ".join(
            _column_text(autogen_context, _typed(autogen_context, table, name)) for name in names
        )
        declared = f"sa.Table({table!r}, metadata, {spelled})"
        if table in op.indexed:
            lines.append(f"{_variable(table)} = {declared}")
        else:
            lines.append(f"{declared}  # referred to only")
    for ensure in op.created:
        lines.append(
            f"{_variable(ensure.create.table_name)} = {_table_text(autogen_context, ensure)}"
        )
    return "\n".join(lines)


def _table_text(autogen_context: AutogenContext, ensure: EnsureTable) -> str:
    """Alembic's ``op.create_table(...)`` text as an ``sa.Table`` in ``metadata``, with the
    table's indexes (which ``ensure_table`` builds with it)."""
    text = render.render_op_text(autogen_context, ensure.create).rstrip()
    head = re.match(r"op\.create_table\(\s*('[^']*'|\"[^\"]*\"),", text)
    if head is None or not text.endswith(")"):
        raise ValueError(f"unexpected rendering of {ensure.create.table_name}: {text}")
    indexes = [
        f"sa.Index({index.index_name!r}, "
        + ", ".join(repr(name) for name in _index_column_names(index))
        + (", unique=True" if index.unique else "")
        + ")"
        for index in ensure.indexes
    ]
    body = text[head.end() : -1].rstrip().rstrip(",")
    return f"sa.Table({head.group(1)}, metadata,{body}" + "".join(f", {i}" for i in indexes) + ")"


def _typed(autogen_context: AutogenContext, table: str, name: str) -> sa.Column[object]:
    """Column ``name`` of ``table`` with the type the models give it (untyped if they have
    no such column: a downgrade's index on a column the upgrade drops)."""
    metadata = autogen_context.metadata
    if isinstance(metadata, sa.MetaData) and table in metadata.tables:
        model = metadata.tables[table].c.get(name)
        if model is not None:
            return sa.Column(name, model.type)
    return sa.Column(name)


@renderers.dispatch_for(EnsureTable)
def _render_ensure_table(autogen_context: AutogenContext, op: EnsureTable) -> str:
    # The table itself, with its indexes, is declared by _render_tables.
    return f"{_helper(autogen_context, 'ensure_table')}({_variable(op.create.table_name)})"


@renderers.dispatch_for(DropTables)
def _render_drop_tables(autogen_context: AutogenContext, op: DropTables) -> str:
    names = ", ".join(repr(name) for name in op.names)
    return f"{_helper(autogen_context, 'drop_tables')}({names})"


@renderers.dispatch_for(EnsureColumns)
def _render_ensure_columns(autogen_context: AutogenContext, op: EnsureColumns) -> str:
    columns = ", ".join(_column_text(autogen_context, column) for column in op.columns)
    return f"{_helper(autogen_context, 'ensure_columns')}({op.table_name!r}, {columns})"


@renderers.dispatch_for(DropColumns)
def _render_drop_columns(autogen_context: AutogenContext, op: DropColumns) -> str:
    helper = "drop_referencing_columns" if op.referencing else "drop_columns"
    names = ", ".join(repr(name) for name in op.names)
    return f"{_helper(autogen_context, helper)}({op.table_name!r}, {names})"


@renderers.dispatch_for(EnsureIndex)
def _render_ensure_index(autogen_context: AutogenContext, op: EnsureIndex) -> str:
    create = op.create
    helper = "ensure_unique_index" if create.unique else "ensure_index"
    variable = _variable(create.table_name)
    columns = ", ".join(f"{variable}.c[{name!r}]" for name in _index_column_names(create))
    unique = ", unique=True" if create.unique else ""
    extra = "".join(f", {key}={value!r}" for key, value in sorted(create.kw.items()))
    index = f"sa.Index({create.index_name!r}, {columns}{unique}{extra})"
    return f"{_helper(autogen_context, helper)}({index})"


@renderers.dispatch_for(DropIndex)
def _render_drop_index(autogen_context: AutogenContext, op: DropIndex) -> str:
    return f"{_helper(autogen_context, 'drop_index')}({op.table_name!r}, {op.name!r})"


@renderers.dispatch_for(NotIdempotent)
def _render_not_idempotent(autogen_context: AutogenContext, op: NotIdempotent) -> str:
    return "\n".join(
        [
            f"{NOT_IDEMPOTENT}: {op.what}, as autogenerate wrote it.",
            "# No vidpipe.db.idempotent helper covers it, so a rerun (after a crash, or on a",
            "# database that already has the change) repeats it. Make it look first",
            "# (sa.inspect(op.get_bind())), then delete this comment:",
            "# tests/migrations/test_idempotency.py names it until then.",
        ]
    )
