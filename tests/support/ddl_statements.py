"""The DDL an engine sends, recorded, for tests that prove a run changed nothing (or what)."""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event

DDL_PREFIXES = ("CREATE", "ALTER", "DROP")


@contextmanager
def ddl_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect every DDL statement the engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith(DDL_PREFIXES):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
