"""A failure on demand, for tests that prove a crashed migration loses nothing.

Only code can ask for it, through ``config.attributes`` (the alembic command line cannot set
attributes), and the key says what it is, so no user reaches it by accident.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from vidpipe.db.errors import InjectedFault

#: ``config.attributes`` key: fail right after the first statement that starts with this text,
#: e.g. ``"CREATE TABLE scene_manifests"`` makes revision 0002 die after its first table.
FAIL_AFTER_STATEMENT = "vidpipe.test_fault.fail_after_statement"


@contextmanager
def injected_fault(connection: sa.Connection, attributes: dict[str, Any]) -> Iterator[None]:
    """While the block runs, raise :class:`InjectedFault` after the requested statement."""
    prefix = attributes.get(FAIL_AFTER_STATEMENT)
    if not prefix:
        yield
        return

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith(prefix):
            raise InjectedFault(f"injected fault after {prefix!r}")

    event.listen(connection, "after_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(connection, "after_cursor_execute", fail)
