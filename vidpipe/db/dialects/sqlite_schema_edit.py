"""SQLite: change a table's column defaults, or add foreign keys, without rebuilding it (issue 17).

SQLite's ALTER TABLE cannot change a default or add a foreign key, so Alembic's batch mode
rebuilds the table: copy every row into a new table, drop the old one, rename, build the
indexes again. All of it holds the database's one write lock, and at 500,000 rows that was the
longest wait of an application writing during ``vidpipe_0006`` (1-2 s on a quiet machine, 6-9 s
on a loaded one), for tables whose stored rows do not change at all.

A default and a foreign key live only in the table's ``CREATE TABLE`` text in
``sqlite_schema``: no row, page or index holds them. SQLite documents editing that text for
adding, changing or removing a default and for removing a foreign key (ALTER TABLE, "Making
Other Kinds Of Table Schema Changes": within a transaction, ``PRAGMA writable_schema=ON``,
``UPDATE sqlite_schema``, bump ``schema_version`` so that every connection reads the schema
again, ``writable_schema=OFF``). Adding a foreign key stores nothing either; what the
procedure leaves out is that rows may break it, and here they are checked before the run
commits (``PRAGMA foreign_key_check``, as after a rebuild: vidpipe.db.dialects.
sqlite_commits). Its caution is that a wrong text makes the database unreadable, and it
advises trying the statement on a blank database first. So:

- Only a change that touches no stored value is made this way: a column's default, and a
  foreign key added. Anything else (a type, NOT NULL) returns False and the caller rebuilds.
- The new text is rehearsed in a blank in-memory database beside the old one: the columns
  (names, order, types, NOT NULL, primary key), the indexes SQLite makes for the table's own
  constraints and the foreign keys must come out the same, but for the defaults and keys
  asked for, each as asked. Anything else (a text this module did not read right) returns
  False, and nothing was touched.
- After the edit the live table is read back and must match the rehearsal; if not, the error
  rolls the run's transaction back, and the old text with it.
- SQLite's procedure ends with an optional ``PRAGMA integrity_check``: it is not run. It reads
  every page of the database (seconds at 500,000 rows, inside the write lock this module is
  there to shorten), and the edit touches no page but the schema's, whose reading the
  rehearsal and the read-back check.
"""

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

__all__ = ["rewrite_in_place"]

#: A table's shape as SQLite reads it: ``PRAGMA table_xinfo``, its constraint indexes (their
#: columns) and ``PRAGMA foreign_key_list`` (without the key ids, which follow order).
_Shape = tuple[tuple[Any, ...], ...]

_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}
#: An identifier written without quotes.
_WORD = re.compile(r"[A-Za-z_][\w$]*")


def _edited_text(sql: str, defaults: dict[str, str | None], constraints: list[str]) -> str | None:
    """``sql`` (a ``CREATE TABLE`` statement) with the DEFAULT clause of each column in
    ``defaults`` replaced (``None``: removed) and the table ``constraints`` appended; None if
    a column named in ``defaults`` is not found."""
    opening = _top_level(sql, "(")
    if opening is None:
        return None
    closing = _matching(sql, opening)
    if closing is None:
        return None
    parts = _split_top_level(sql[opening + 1 : closing])
    wanted = {name.lower(): default for name, default in defaults.items()}
    found: set[str] = set()
    edited = []
    for part in parts:
        first = _first_identifier(part)
        if first is not None and first.lower() in wanted and first.upper() not in _CONSTRAINT_WORDS:
            found.add(first.lower())
            part = _with_default(part, wanted[first.lower()])
        edited.append(part)
    if found != set(wanted):
        return None
    trailing = re.search(r"\s*$", edited[-1])
    end = trailing.start() if trailing else len(edited[-1])
    last = edited[-1][:end] + "".join(f", \n\t{c}" for c in constraints) + edited[-1][end:]
    body = ",".join([*edited[:-1], last])
    return sql[: opening + 1] + body + sql[closing:]


def _shape(cursor: Any, table: str) -> _Shape:
    """What SQLite makes of ``table``'s definition (see ``_Shape``); ``cursor`` is a DB-API
    cursor of sqlite3 or of aiosqlite's adapter."""
    quoted = _quoted(table)
    columns = _rows(cursor, f"PRAGMA table_xinfo({quoted})")
    indexes = [
        (name, unique, origin, _rows(cursor, f"PRAGMA index_info({_quoted(name)})"))
        for _seq, name, unique, origin, _partial in _rows(cursor, f"PRAGMA index_list({quoted})")
        if origin != "c"  # CREATE INDEX: its own row in sqlite_schema, untouched
    ]
    keys = sorted(row[1:] for row in _rows(cursor, f"PRAGMA foreign_key_list({quoted})"))
    return (columns, tuple(sorted(indexes)), tuple(keys))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(cursor: Any, statement: str, parameters: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    # aiosqlite's adapted cursor returns no cursor from execute(): the rows are fetched apart.
    cursor.execute(statement, parameters)
    return tuple(tuple(row) for row in cursor.fetchall())


def rewrite_in_place(
    cursor: Any,
    table: str,
    defaults: dict[str, str | None],
    constraints: list[str],
) -> bool:
    """Give ``table`` the ``defaults`` (column to its DEFAULT expression, None for none) and
    the foreign key ``constraints`` (table constraint clauses) by editing its ``CREATE TABLE``
    text, inside the transaction ``cursor`` is in; False (nothing changed) where that cannot
    be shown to change nothing else."""
    found = _rows(
        cursor, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
    )
    if not found:
        return False
    old = found[0][0]
    new = _edited_text(old, defaults, constraints)
    if new is None:
        return False
    expected = _rehearsed(table, old, new, defaults, len(constraints))
    if expected is None or _shape(cursor, table) != expected[0]:
        return False
    version = _rows(cursor, "PRAGMA schema_version")[0][0]
    cursor.execute("PRAGMA writable_schema=ON")
    try:
        try:
            cursor.execute(
                "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?", (new, table)
            )
        except sqlite3.DatabaseError:
            # SQLITE_DBCONFIG_DEFENSIVE (some builds turn it on) forbids the edit: the statement
            # changed nothing.
            return False
        # Every connection, this one too, reads the schema again before its next statement.
        cursor.execute(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        cursor.execute("PRAGMA writable_schema=OFF")
    if _shape(cursor, table) != expected[1]:
        raise RuntimeError(
            f"SQLite read the edited definition of {table} differently from its rehearsal; "
            "the run is rolled back and the table keeps its old definition"
        )
    return True


def _rehearsed(
    table: str, old: str, new: str, defaults: dict[str, str | None], added_keys: int
) -> tuple[_Shape, _Shape] | None:
    """The shapes of ``old`` and ``new`` in a blank database, if ``new`` differs from ``old``
    in the asked ``defaults`` and ``added_keys`` more foreign keys only; None otherwise."""
    blank = sqlite3.connect(":memory:")
    try:
        cursor = blank.cursor()
        try:
            cursor.execute(old)
            before = _shape(cursor, table)
            cursor.execute(f"DROP TABLE {_quoted(table)}")
            cursor.execute(new)
            after = _shape(cursor, table)
        except sqlite3.DatabaseError:
            return None
    finally:
        blank.close()
    columns_before, indexes_before, keys_before = before
    columns_after, indexes_after, keys_after = after
    wanted = {name.lower(): default for name, default in defaults.items()}
    for was, now in zip(columns_before, columns_after, strict=False):
        # (cid, name, type, notnull, dflt_value, pk, hidden)
        default = wanted.get(str(was[1]).lower(), was[4])
        if now != (*was[:4], default, *was[5:]):
            return None
    if (
        len(columns_before) != len(columns_after)
        or indexes_before != indexes_after
        or not set(keys_before) <= set(keys_after)
        or len(keys_after) != len(keys_before) + added_keys
    ):
        return None
    return before, after


def _first_identifier(part: str) -> str | None:
    """The first word of a column or constraint definition, unquoted."""
    text = part.lstrip()
    if not text:
        return None
    quotes = {'"': '"', "`": "`", "[": "]", "'": "'"}
    if text[0] in quotes:
        end = text.find(quotes[text[0]], 1)
        return None if end < 0 else text[1:end]
    word = _WORD.match(text)
    return word.group(0) if word else None


def _with_default(part: str, default: str | None) -> str:
    """A column definition with its DEFAULT clause replaced by ``default`` (None: removed)."""
    clause = f" DEFAULT {default}" if default is not None else ""
    for start, end in _tokens(part):
        if part[start:end].upper() == "DEFAULT":
            value_end = _value_end(part, end)
            return part[:start].rstrip() + clause + part[value_end:]
    trailing = re.search(r"\s*$", part)
    at = trailing.start() if trailing else len(part)
    return part[:at] + clause + part[at:]


def _value_end(text: str, after: int) -> int:
    """Where the value of a DEFAULT clause that ends at ``after`` ends: a parenthesised
    expression, a string, a signed number, a blob literal or a word."""
    at = after
    while at < len(text) and text[at].isspace():
        at += 1
    if at < len(text) and text[at] == "(":
        closing = _matching(text, at)
        return len(text) if closing is None else closing + 1
    if at < len(text) and text[at] in "+-":
        at += 1
    for start, end in _tokens(text, at):
        if text[end : end + 1] == "'" and text[start:end].upper() == "X":  # X'00ff'
            return _string_end(text, end)
        return end
    return len(text)


def _tokens(text: str, start: int = 0) -> Iterator[tuple[int, int]]:
    """The top-level tokens of ``text`` from ``start``: quoted strings and identifiers and
    parenthesised groups whole, other runs of characters split at spaces and punctuation."""
    at = start
    while at < len(text):
        char = text[at]
        if char.isspace() or char == ",":
            at += 1
        elif char in "'\"`[":
            end = _string_end(text, at)
            yield at, end
            at = end
        elif char == "(":
            closing = _matching(text, at)
            end = len(text) if closing is None else closing + 1
            yield at, end
            at = end
        else:
            end = at
            while end < len(text) and not text[end].isspace() and text[end] not in ",()'\"`[":
                end += 1
            yield at, end
            at = end


def _string_end(text: str, at: int) -> int:
    """Just past the quoted string or identifier that opens at ``at`` (doubled quotes inside)."""
    closing = "]" if text[at] == "[" else text[at]
    index = at + 1
    while index < len(text):
        if text[index] == closing:
            if closing != "]" and text[index + 1 : index + 2] == closing:
                index += 2
                continue
            return index + 1
        index += 1
    return len(text)


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """Each character of ``text`` from ``start`` that is outside quoted strings and
    identifiers, with its index."""
    at = start
    while at < len(text):
        if text[at] in "'\"`[":
            at = _string_end(text, at)
        else:
            yield at, text[at]
            at += 1


def _matching(text: str, opening: int) -> int | None:
    """The index of the parenthesis that closes the one at ``opening``."""
    depth = 0
    for at, char in _unquoted(text, opening):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return at
    return None


def _top_level(text: str, char: str) -> int | None:
    """The first ``char`` of ``text`` outside quotes."""
    return next((at for at, found in _unquoted(text) if found == char), None)


def _split_top_level(body: str) -> list[str]:
    """``body`` split at the commas outside quotes and parentheses."""
    parts = []
    start = 0
    depth = 0
    for at, char in _unquoted(body):
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:at])
            start = at + 1
    parts.append(body[start:])
    return parts
