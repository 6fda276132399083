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


def _core_insert_many(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    connection.execute(sa.insert(table), rows)


@contextmanager
def _core_savepoint(connection: sa.Connection) -> Iterator[Callable[[], None]]:
    """``begin_nested``: its RELEASE follows the block (so with psycopg, after its round trip)."""
    with connection.begin_nested():
        yield lambda: None


#: Each hand-written part: the function of writes.py that holds it, and its Core equivalent.
PARTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "INSERT executemany": ("_insert_many", _core_insert_many),
    "SAVEPOINT": ("_savepoint", _core_savepoint),
}


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
