"""The save path's hand-written parts, each with its plain SQLAlchemy Core equivalent.

``vidpipe/db/store/writes.py`` sends some statements past Core (through the driver, with its own
compiled-statement cache and bind processors, and a SAVEPOINT by hand). Each part is kept only
where it beats Core by at least 20% in the save benchmark: :func:`through_core` swaps the named
parts for the Core code below, so one run times the store as it is, with one part at a time
through Core, and with all of them through Core (the plain-Core save).
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import sqlalchemy as sa

from vidpipe.db.store import writes
from vidpipe.db.store.rows import projects_table


class _JSONText(sa.TypeDecorator[str]):
    """JSON text (``storyboard_raw`` arrives serialised) bound as the column's type, unchanged."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return projects_table.c.storyboard_raw.type.dialect_impl(dialect)

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None


def _core_insert_many(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    connection.execute(sa.insert(table), rows)


_UPDATE = (
    sa.update(projects_table)
    .where(projects_table.c.id == sa.bindparam("project_key"))
    .values(
        style_guide=sa.bindparam("style_guide"),
        characters=sa.bindparam("characters"),
        storyboard_kind=sa.bindparam("storyboard_kind"),
        storyboard_raw=sa.bindparam("storyboard_raw", type_=_JSONText()),
    )
)


def _core_update_projects(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    connection.execute(_UPDATE, rows)


_ONE_PROJECT = projects_table.c.id == sa.bindparam("project_key")
_LOOK_UP_ONE = {
    False: writes._looking_up(_ONE_PROJECT),
    True: writes._looking_up(_ONE_PROJECT).with_for_update(),
}


def _core_look_up_one(connection: sa.Connection, project_id: Any, lock: bool) -> list[Any]:
    return list(connection.execute(_LOOK_UP_ONE[lock], {"project_key": project_id}))


@contextmanager
def _core_savepoint(connection: sa.Connection) -> Iterator[Callable[[], None]]:
    """``begin_nested``: its RELEASE follows the block (so with psycopg, after its round trip)."""
    with connection.begin_nested():
        yield lambda: None


#: Each hand-written part: the function of writes.py that holds it, and its Core equivalent.
PARTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "INSERT executemany": ("_insert_many", _core_insert_many),
    "UPDATE executemany": ("_update_projects", _core_update_projects),
    "one project's look-up": ("_look_up_one", _core_look_up_one),
    "SAVEPOINT": ("_savepoint", _core_savepoint),
}

#: Parts that only a single save (outside a batch) runs.
SINGLE_SAVE_PARTS = {"one project's look-up"}


@contextmanager
def through_core(*parts: str) -> Iterator[None]:
    """While the block runs, these parts of the save go through Core."""
    with ExitStack() as stack:
        for part in parts:
            name, core = PARTS[part]
            original = getattr(writes, name)
            setattr(writes, name, core)
            stack.callback(setattr, writes, name, original)
        yield
