"""SQLite: a table that only gets column defaults and foreign keys has its definition edited in
``sqlite_schema``, not rebuilt; anything the edit cannot show to change nothing else is left
to the rebuild, and a key the rows break rolls the edit back (vidpipe.db.dialects.
sqlite_schema_edit, issue 17 item 5)."""

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.databases import dialect_params
from tests.support.ddl_statements import ddl_statements
from vidpipe.db import ForeignKeyViolation, current_revision, upgrade
from vidpipe.db.dialects.sqlite_schema_edit import rewrite_in_place

#: A definition written by hand, with what a careless reading would trip on: quoted names, a
#: default in parentheses holding a comma, a CHECK whose text says DEFAULT, a blob default, a
#: UNIQUE constraint (its index is SQLite's own, found by position in the text).
TRICKY = """CREATE TABLE "odd table" (
    "the id" INTEGER PRIMARY KEY,
    [label] TEXT DEFAULT ('a, b') NOT NULL CHECK (label <> 'DEFAULT x'),
    `count` INTEGER NOT NULL,
    blob_value BLOB DEFAULT X'00ff',
    parent INTEGER,
    note TEXT COLLATE NOCASE,
    UNIQUE (label, note)
)"""


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _definition(connection: sqlite3.Connection, table: str) -> str:
    row = connection.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (table,)).fetchone()
    return str(row[0])


def test_defaults_and_a_key_are_edited_in_and_every_row_and_index_stays(tmp_path: Path) -> None:
    path = tmp_path / "edit.db"
    connection = _open(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(TRICKY)
    connection.execute('CREATE INDEX ix_odd ON "odd table" (parent)')
    connection.executemany(
        'INSERT INTO "odd table" ("the id", label, count, note) VALUES (?, ?, ?, ?)',
        [(n, f"label {n}", n, "x") for n in range(1, 200)],
    )
    before = connection.execute('SELECT * FROM "odd table" ORDER BY 1').fetchall()
    other = _open(path)  # another process's connection, its schema read before the edit
    assert other.execute('SELECT count(*) FROM "odd table"').fetchone() == (199,)

    connection.execute("BEGIN IMMEDIATE")
    done = rewrite_in_place(
        connection.cursor(),
        "odd table",
        {"label": "'new, label'", "count": "7", "blob_value": None},
        ['CONSTRAINT fk_odd_parent FOREIGN KEY(parent) REFERENCES "odd table" ("the id")'],
    )
    connection.execute("COMMIT")

    assert done
    columns = {row[1]: row[4] for row in connection.execute('PRAGMA table_xinfo("odd table")')}
    assert columns == {
        "the id": None,
        "label": "'new, label'",
        "count": "7",
        "blob_value": None,
        "parent": None,
        "note": None,
    }
    assert connection.execute('PRAGMA foreign_key_list("odd table")').fetchall() == [
        (0, 0, "odd table", "parent", "the id", "NO ACTION", "NO ACTION", "NONE")
    ]
    assert "CHECK (label <> 'DEFAULT x')" in _definition(connection, "odd table")
    assert connection.execute('SELECT * FROM "odd table" ORDER BY 1').fetchall() == before
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # The other connection reads the schema again (schema_version moved): the new defaults,
    # the key, the unique constraint and the check all hold there.
    other.execute("PRAGMA foreign_keys=ON")
    other.execute('INSERT INTO "odd table" ("the id") VALUES (500)')
    added = other.execute('SELECT label, count FROM "odd table" WHERE "the id" = 500')
    assert added.fetchone() == ("new, label", 7)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        other.execute('INSERT INTO "odd table" ("the id", parent) VALUES (501, 9999)')
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        other.execute(
            """INSERT INTO "odd table" ("the id", label, note) VALUES (502, 'label 1', 'x')"""
        )
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        other.execute("""INSERT INTO "odd table" ("the id", label) VALUES (503, 'DEFAULT x')""")
    other.close()
    connection.close()


@pytest.mark.parametrize(
    ("defaults", "why"),
    [
        ({"total": "1"}, "a generated column cannot take a default"),
        ({"missing": "1"}, "no such column"),
        ({"amount": "1 +"}, "not an expression"),
    ],
)
def test_what_cannot_be_shown_to_change_nothing_else_is_left_alone(
    defaults: dict[str, str | None], why: str, tmp_path: Path
) -> None:
    connection = _open(tmp_path / "edit.db")
    connection.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, amount INTEGER, total INTEGER "
        "GENERATED ALWAYS AS (amount * 2))"
    )
    definition = _definition(connection, "t")
    version = connection.execute("PRAGMA schema_version").fetchone()

    connection.execute("BEGIN IMMEDIATE")
    assert not rewrite_in_place(connection.cursor(), "t", defaults, []), why
    connection.execute("COMMIT")

    assert _definition(connection, "t") == definition
    assert connection.execute("PRAGMA schema_version").fetchone() == version
    connection.close()


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
def test_a_key_the_rows_break_rolls_the_edit_back(engine: sa.Engine) -> None:
    """An older vidpipe's file already has ``assets.inherited_from_project``, without its
    foreign key and pointing at a project that does not exist: vidpipe_0006 adds the key by an
    edit, the check before the commit finds the row, and the table keeps its definition."""
    upgrade(engine, "vidpipe_0005")
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE assets ADD COLUMN inherited_from_project CHAR(32)")
        connection.exec_driver_sql(
            "INSERT INTO manifests (id, name, category, status, asset_count, "
            "total_processing_cost, times_used, version) VALUES ('m1', 'm', 'c', 's', 0, 0, 0, 1)"
        )
        connection.exec_driver_sql(
            "INSERT INTO assets (id, manifest_id, asset_type, name, manifest_tag, source, "
            "sort_order, is_face_crop, inherited_from_project) "
            "VALUES ('a1', 'm1', 'character', 'a', 'T', 'uploaded', 0, 0, 'no such project')"
        )
        definition = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_schema WHERE name = 'assets'"
        ).scalar_one()

    with (
        ddl_statements(engine) as statements,
        pytest.raises(ForeignKeyViolation, match="assets rowid 1 -> missing projects"),
    ):
        upgrade(engine)

    assert not [s for s in statements if "_alembic_tmp_assets" in s]  # edited, not rebuilt

    assert current_revision(engine) == "vidpipe_0005"
    with engine.connect() as connection:
        kept = connection.exec_driver_sql("SELECT sql FROM sqlite_schema WHERE name = 'assets'")
        assert kept.scalar_one() == definition
        assert connection.exec_driver_sql("PRAGMA integrity_check").all() == [("ok",)]
