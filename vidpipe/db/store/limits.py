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
default is 16 MB, MySQL's 64 MB). Rows are counted one by one only for a storyboard whose JSON
text is over about a seventh of the packet (:func:`largest_row_bound`): below that no row can
reach it, and the save serialises nothing twice.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
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

__all__ = ["largest_row_bound", "refuse_oversized", "row_sizes"]

#: Room left in a packet for the statement's SQL and the protocol's framing.
STATEMENT_MARGIN = 16 * 1024

#: No row of a storyboard is larger than this many times the storyboard's JSON text (counted as
#: PyMySQL sends it, :func:`_escaped_bytes`) plus :data:`ROW_CONSTANT_BYTES`, so a storyboard
#: whose text is under about max_allowed_packet / 7 needs no row-by-row count. Every row holds
#: parts of the storyboard: text columns as they are (never more bytes than in the JSON text,
#: where they are quoted and escaped), JSON columns as SQLAlchemy's ``json.dumps`` writes them,
#: at most 3.5 times the bytes of the same part in the text (ASCII escapes: "é", 2 bytes, becomes
#: "\\u00e9", 7 bytes as a literal; an astral character's 4 become 14; "," becomes ", "); and
#: a manifests or audio row holds some parts twice (``asset_tags`` and ``speaker_tags`` repeat
#: the placements' and dialogue lines' tags, the composition columns their manifest's values).
#: The projects row holds the text itself and, as JSON, its style guide and characters (at most
#: 4.5 times). tests/store/test_store_limits.py checks the bound on storyboards built to
#: approach it.
ROW_BYTES_PER_JSON_BYTE = 7

#: What a row holds besides parts of the storyboard (ids, keys, flags, counts, a cut
#: composition value's "…") and the count's allowance per column: under this many bytes.
ROW_CONSTANT_BYTES = 1024

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
                for name in _TEXT_COLUMNS:
                    _check_text(prepared, position, name, row[name], dialect.text_column_bytes)
    packet = dialect.max_statement_bytes(connection)
    if packet is None:
        return
    room = packet - STATEMENT_MARGIN
    for prepared in storyboards:
        if largest_row_bound(prepared) <= room:
            continue
        for table, size in row_sizes(connection.dialect, prepared):
            if size > room:
                raise StoryboardError(
                    f"Project {prepared.project_id}'s storyboard needs a statement of about "
                    f"{size:,} bytes ({size / 2**20:.1f} MiB, a {table.name} row), more "
                    f"than the server's max_allowed_packet of {packet:,} bytes allows: "
                    "raise max_allowed_packet on the server, or shorten the storyboard; "
                    "nothing was saved"
                )


def largest_row_bound(prepared: Prepared) -> int:
    """Bytes that no row of the storyboard exceeds as PyMySQL sends it, counted without
    serialising a row: linear in the storyboard's text, in C (:data:`ROW_BYTES_PER_JSON_BYTE`)."""
    raw_json: str = prepared.project_values["storyboard_raw"]
    return _escaped_bytes(raw_json) * ROW_BYTES_PER_JSON_BYTE + ROW_CONSTANT_BYTES


def row_sizes(dialect: sa.Dialect, prepared: Prepared) -> Iterator[tuple[sa.Table, int]]:
    """Each row of the storyboard with its size as PyMySQL sends it: the JSON columns are
    serialised to be counted."""
    for table, rows in _rows_of(prepared):
        processors = _bind_processors(dialect, table, rows)
        for row in rows:
            yield table, _literal_bytes(processors, row)


def _is_text(column_type: sa.types.TypeEngine[Any]) -> bool:
    return isinstance(column_type, sa.Text) and column_type.length is None


#: The scenes' unsized TEXT columns, which text_column_bytes limits.
_TEXT_COLUMNS = tuple(column.name for column in scenes_table.c if _is_text(column.type))


def _check_text(prepared: Prepared, position: int, name: str, value: Any, limit: int) -> None:
    if not isinstance(value, str) or len(value) * 4 <= limit:  # UTF-8: at most 4 bytes a character
        return
    size = len(value.encode("utf-8"))
    if size > limit:
        index = prepared.scene_rows[position]["scene_index"]
        raise StoryboardError(
            f"Project {prepared.project_id}: scenes[{position}] (scene_index {index}).{name}: "
            f"{size:,} bytes of UTF-8, more than the {limit:,} a MariaDB/MySQL "
            "TEXT column holds; nothing was saved"
        )


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
