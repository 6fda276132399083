"""The save path's hand-written part, psycopg's pipeline mode, and what Core does without it.

``vidpipe/db/store/writes.py`` goes through SQLAlchemy Core everywhere except psycopg's pipeline
mode (``PostgreSQL.statements_together`` in vidpipe.db.dialects.postgresql), which Core does not
offer; its module docstring records how the parts that once bypassed Core were measured and
replaced. :func:`through_core` swaps the named parts for their plain-Core equivalent, so one run
times the store as it is against the same saves through plain Core.
"""

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa

from vidpipe.db.dialects import PostgreSQL


def _each_statement_as_it_comes(self: object, connection: sa.Connection) -> "nullcontext[None]":
    """Core's way: each statement sent, and waited for, on its own."""
    return nullcontext()


#: Each hand-written part: the object and attribute that hold it, and its Core equivalent.
PARTS: dict[str, tuple[object, str, Callable[..., Any]]] = {
    "psycopg pipeline": (PostgreSQL, "statements_together", _each_statement_as_it_comes),
}


@contextmanager
def through_core(*parts: str) -> Iterator[None]:
    """While the block runs, these parts of the save go through Core."""
    with ExitStack() as stack:
        for part in parts:
            owner, name, core = PARTS[part]
            original = getattr(owner, name)
            setattr(owner, name, core)
            stack.callback(setattr, owner, name, original)
        yield
