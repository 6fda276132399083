"""Column types, SQL defaults and the constraint naming convention of models and revisions.

Revisions import from here rather than from ``models`` so that they stay frozen when the
models change; what lives here must therefore never change meaning.
"""

from typing import Any

from sqlalchemy import JSON, Boolean, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.sql.visitors import InternalTraversal

#: Fixed before the first revision: constraint names are part of the schema that revisions
#: create and later drop, so they must be predictable on every dialect. ``ix`` matches the
#: names SQLAlchemy gave indexes in the databases already in the field.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSONB on PostgreSQL (indexable, compact), the dialect's JSON elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class BooleanDefault(ColumnElement[bool]):
    """A boolean literal as each dialect reads its own boolean defaults back.

    PostgreSQL spells it ``false``; SQLite and MariaDB store booleans as integers and reflect
    ``0``, which is also how the backend's ALTERs wrote them (``INTEGER DEFAULT 0``), so the
    adoption's comparison finds nothing to change on a second run.
    """

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("value", InternalTraversal.dp_plain_obj)]  # noqa: RUF012 - SQLAlchemy's

    def __init__(self, value: bool) -> None:
        self.value = value


@compiles(BooleanDefault)
def _boolean_keyword(element: BooleanDefault, compiler: Any, **kw: Any) -> str:
    return "true" if element.value else "false"


@compiles(BooleanDefault, "sqlite")
@compiles(BooleanDefault, "mysql")
@compiles(BooleanDefault, "mariadb")
def _boolean_integer(element: BooleanDefault, compiler: Any, **kw: Any) -> str:
    return "1" if element.value else "0"


def server_default(value: bool | int | float | str) -> ColumnElement[Any] | TextClause | str:
    """The SQL default for a literal value, spelled as every dialect reads it back.

    What a raw ``INSERT`` that omits the column gets. Whole floats are written as integers
    (``0``, not ``0.0``), which is how MariaDB reflects them.
    """
    if isinstance(value, bool):
        return BooleanDefault(value)
    if isinstance(value, float) and value.is_integer():
        return text(str(int(value)))
    if isinstance(value, int | float):
        return text(repr(value))
    return value
