"""The save path's hand-written part, psycopg's pipeline mode, and what Core does without it.

``vidpipe/db/store/writes.py`` goes through SQLAlchemy Core everywhere except psycopg's pipeline
mode (``_one_round_trip``), which Core does not offer; its module docstring records how the
parts that once bypassed Core were measured and replaced. :func:`through_core` swaps the named
parts for their plain-Core equivalent, so one run times the store as it is against the same
saves through plain Core.
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa

from vidpipe.db.store import writes


def _each_statement_as_it_comes(connection: sa.Connection) -> "nullcontext[None]":
    """Core's way: each statement sent, and waited for, on its own."""
    return nullcontext()


#: Each hand-written part: the function of writes.py that holds it, and its Core equivalent.
PARTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "psycopg pipeline": ("_one_round_trip", _each_statement_as_it_comes),
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
