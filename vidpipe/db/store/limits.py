"""Sizes a storyboard's rows must keep on the database in use, checked before anything is sent.

MariaDB and MySQL are the dialects whose limits a storyboard can reach:

- a ``TEXT`` column holds at most 65,535 bytes: in strict mode a longer value raises a raw
  ``DataError``, otherwise the server cuts it silently;
- a statement larger than the server's ``max_allowed_packet`` makes it drop the connection,
  and the caller's transaction (work done before the save included) is lost with it.

PostgreSQL (1 GB a value) and SQLite (1e9 bytes a value) have no limit a storyboard reaches
before it exhausts memory, so nothing is checked there. Each dialect states its limits
(``text_column_bytes``, ``max_statement_bytes``: vidpipe.db.dialects).

A statement's size is counted as PyMySQL and aiomysql send it: each value as an escaped
literal, JSON values as the dialect's serialiser writes them. Those drivers send an
executemany INSERT in statements of about 1 MB plus at most one row, so a row that fits in
the packet fits in its statement as long as ``max_allowed_packet`` is 1 MB or more (MariaDB's
default is 16 MB, MySQL's 64 MB).
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import StoryboardError
from vidpipe.db.store.rows import (
    Prepared,
    audio_table,
    manifests_table,
    projects_table,
    scenes_table,
)

__all__ = ["refuse_oversized"]

#: Room left in a packet for the statement's SQL and the protocol's framing.
STATEMENT_MARGIN = 16 * 1024

#: A storyboard's JSON text of n characters gives no row larger than this many times n bytes
#: (an astral character is 4 bytes in the JSON text but "\\ud83d\\ude00" escaped again as a
#: literal in a JSON column; the projects row holds the text and parts of it as JSON), so a
#: storyboard under max_allowed_packet / this factor needs no row-by-row count.
ROW_BYTES_PER_JSON_CHARACTER = 20

#: What PyMySQL's escape_string doubles (a backslash is prefixed to each).
_ESCAPED = "\\\0\n\r\032\"'"


def refuse_oversized(session: Session, storyboards: list[Prepared]) -> None:
    """Raise :class:`StoryboardError` naming the project, field and size that would not fit.

    Called with the rows about to be written, before any of them is sent.
    """
    connection = session.connection()
    dialect = dialect_for(connection.dialect)
    if dialect.text_column_bytes is not None:
        for prepared in storyboards:
            for position, row in enumerate(prepared.scene_rows):
                for name, value in row.items():
                    _check_text(prepared, position, name, value, dialect.text_column_bytes)
    packet = dialect.max_statement_bytes(connection)
    if packet is None:
        return
    room = packet - STATEMENT_MARGIN
    for prepared in storyboards:
        raw_json: str = prepared.project_values["storyboard_raw"]
        if len(raw_json) * ROW_BYTES_PER_JSON_CHARACTER <= room:
            continue
        for table, rows in _rows_of(prepared):
            processors = _bind_processors(connection.dialect, table, rows)
            for row in rows:
                size = _literal_bytes(processors, row)
                if size > room:
                    raise StoryboardError(
                        f"Project {prepared.project_id}'s storyboard needs a statement of about "
                        f"{size:,} bytes ({size / 2**20:.1f} MiB, a {table.name} row), more "
                        f"than the server's max_allowed_packet of {packet:,} bytes allows: "
                        "raise max_allowed_packet on the server, or shorten the storyboard; "
                        "nothing was saved"
                    )


def _check_text(prepared: Prepared, position: int, name: str, value: Any, limit: int) -> None:
    column_type = scenes_table.c[name].type
    if not isinstance(value, str) or not _is_text(column_type):
        return
    if len(value) * 4 <= limit:  # UTF-8 takes at most 4 bytes a character
        return
    size = len(value.encode("utf-8"))
    if size > limit:
        index = prepared.scene_rows[position]["scene_index"]
        raise StoryboardError(
            f"Project {prepared.project_id}: scenes[{position}] (scene_index {index}).{name}: "
            f"{size:,} bytes of UTF-8, more than the {limit:,} a MariaDB/MySQL "
            "TEXT column holds; nothing was saved"
        )


def _is_text(column_type: sa.types.TypeEngine[Any]) -> bool:
    return isinstance(column_type, sa.Text) and column_type.length is None


def _rows_of(prepared: Prepared) -> Iterable[tuple[sa.Table, list[dict[str, Any]]]]:
    yield projects_table, [prepared.project_values]
    yield scenes_table, prepared.scene_rows
    yield manifests_table, prepared.manifest_rows
    yield audio_table, prepared.audio_rows


_Processor = Callable[[Any], Any] | None


def _bind_processors(
    dialect: sa.Dialect, table: sa.Table, rows: list[dict[str, Any]]
) -> dict[str, _Processor]:
    """Each column's bind processor, looked up once a table rather than once a value.

    storyboard_raw arrives as JSON text already, and is sent as it is.
    """
    if not rows:
        return {}
    processors: dict[str, _Processor] = {}
    for name in rows[0]:
        column = projects_table.c.id if name == "project_key" else table.c[name]
        processors[name] = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processors


def _literal_bytes(processors: Mapping[str, _Processor], row: Mapping[str, Any]) -> int:
    total = 0
    for name, value in row.items():
        if not isinstance(value, str):
            process = processors[name]
            value = process(value) if process else value
        text = value if isinstance(value, str) else str(value)
        total += _escaped_bytes(text) + len(name) + 8
    return total


def _escaped_bytes(text: str) -> int:
    """The UTF-8 size of ``text`` as PyMySQL's escape_string writes it.

    Counted, not built: str.count and isascii run in C, where building the escaped copy with
    str.translate went through a Python-level mapping for every character, and made the check
    take as long as the save itself on a storyboard of 1,000 scenes.
    """
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return size + sum(map(text.count, _ESCAPED))
