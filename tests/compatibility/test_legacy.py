"""vidpipe files already in the field are taken over: every row kept, the schema made the models'.

Each variant is built from its own DDL (tests/support/legacy.py) with a row in every table, then
upgraded by the real ``alembic`` command line or by ``vidpipe.db.upgrade``.
"""

import datetime
import json
import re
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.support import legacy
from tests.support.adopted_schema import check_finds_nothing, fresh_shape, shape
from tests.support.cli import alembic
from tests.support.databases import HeadTemplates, dialect_params
from tests.support.ddl_statements import ddl_statements
from tests.support.revisions import HEAD
from tests.support.schema_snapshot import snapshot
from vidpipe.db import NotAVidpipeDatabase, create_engine, current_revision, upgrade

#: What the old models filled in on insert, from the field's description (not from our models):
#: a row that predates a NOT NULL column gets this value when the column is added.
OLD_MODEL_DEFAULTS = {("projects", "target_scene_count"): "3"}


def rebuilt_tables(statements: list[str]) -> set[str]:
    """Tables that SQLite's batch mode moved and copied."""
    return {m for s in statements for m in re.findall(r"_alembic_tmp_(\w+)", s)}


@pytest.mark.parametrize("variant", legacy.VARIANTS)
@pytest.mark.parametrize("how", ["cli", "api"])
def test_a_sqlite_file_from_the_field_is_adopted(
    variant: str, how: str, tmp_path: Path, head_templates: HeadTemplates
) -> None:
    path = tmp_path / "vidpipe.db"
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    built = legacy.build(engine, variant)
    before = legacy.quoted_rows(path, built)

    if how == "cli":  # the default URL: vidpipe.db in the working directory
        result = alembic("upgrade", "head", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    else:
        upgrade(f"sqlite:///{path}")

    assert current_revision(engine) == HEAD
    assert legacy.quoted_rows(path, built) == before  # byte for byte, type for type
    with engine.connect() as connection:
        for (table, column), value in OLD_MODEL_DEFAULTS.items():
            if column not in built[table]:
                row = connection.exec_driver_sql(f"SELECT quote({column}) FROM {table}")
                assert row.scalar_one() == value
        for table in ("scene_manifests", "scene_audio_manifests"):
            count = connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            assert count == (1 if table in built else 0)
    check_finds_nothing(engine)
    assert shape(engine) == fresh_shape(head_templates, "sqlite")
    engine.dispose()


#: Tables with a loose column (an older vidpipe's ALTER) that vidpipe_0006 normalises: SQLite
#: rebuilds each once. The SQL defaults vidpipe_0006 gives every table (and the foreign keys
#: it adds to assets) change no stored value: SQLite takes them by an edit of the table's
#: definition, with no copy (vidpipe.db.dialects.sqlite_schema_edit).
LOOSE = {"assets", "projects", "video_clips"}


@pytest.mark.parametrize(
    ("variant", "rebuilt"),
    [
        ("create_all", set()),
        ("lacking_columns", set()),
        ("with_manifests", set()),
        ("altered", LOOSE),
    ],
)
def test_only_tables_with_loose_columns_are_rewritten(
    variant: str, rebuilt: set[str], tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}", poolclass=NullPool)
    legacy.build(engine, variant)
    with ddl_statements(engine) as statements:
        upgrade(engine)
    assert rebuilt_tables(statements) == rebuilt
    engine.dispose()


def test_nulls_in_loose_counters_get_the_models_defaults(tmp_path: Path) -> None:
    """An ALTER-added ``INTEGER DEFAULT 0`` could hold NULL; NOT NULL needs a value there."""
    engine = create_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}", poolclass=NullPool)
    legacy.build(engine, "altered")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO video_clips (id, scene_id, status, poll_count, created_at, source, "
            f"veo_submission_count, safety_regen_count) VALUES ('{uuid.uuid4().hex}', "
            f"'{legacy.SCENE_ID}', 'pending', 0, '2025-07-01 00:00:00', NULL, NULL, 2)"
        )
    upgrade(engine)
    with engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT source, veo_submission_count, safety_regen_count FROM video_clips "
            "WHERE status = 'pending'"
        ).one()
    assert tuple(row) == ("generated", 0, 2)
    engine.dispose()


UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def comparable(value: object) -> object:
    """A stored value in one spelling whatever the driver hands back (JSONB reorders keys)."""
    if isinstance(value, str) and UUID_TEXT.fullmatch(value):
        return uuid.UUID(value).hex
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    replacements = {
        uuid.UUID: lambda v: v.hex,
        datetime.datetime: lambda v: v.isoformat(sep=" "),
        memoryview: bytes,
        bool: int,
    }
    for kind, replace in replacements.items():
        if isinstance(value, kind):
            return replace(value)
    return value


def stored_rows(engine: sa.Engine, built: dict[str, list[str]]) -> dict[str, list[tuple]]:
    with engine.connect() as connection:
        return {
            table: [
                tuple(map(comparable, row))
                for row in connection.exec_driver_sql(f"SELECT {', '.join(columns)} FROM {table}")
            ]
            for table, columns in built.items()
        }


@pytest.mark.parametrize("dialect", dialect_params("postgresql", "mariadb"), indirect=True)
def test_a_create_all_database_is_adopted_on_the_server_dialects(
    engine: sa.Engine, dialect: str, head_templates: HeadTemplates
) -> None:
    built = legacy.build(engine, "create_all")
    before = stored_rows(engine, built)
    assert before["projects"][0][0] == legacy.PROJECT_ID  # the rows really are there

    upgrade(engine)

    assert current_revision(engine) == HEAD
    assert stored_rows(engine, built) == before
    check_finds_nothing(engine)
    assert shape(engine) == fresh_shape(head_templates, dialect)


FOREIGN_TABLE = "CREATE TABLE scene_audio_manifests (id INTEGER PRIMARY KEY, title VARCHAR(50))"


def test_a_table_that_is_not_ours_is_refused_before_anything_changes(
    engine: sa.Engine, dialect: str
) -> None:
    """Eight legacy tables that could be adopted, and one with our name holding something else."""
    legacy.build(engine, "create_all")
    with engine.begin() as connection:
        connection.exec_driver_sql(FOREIGN_TABLE)
    before = snapshot(engine, keep_version_table=True)

    with pytest.raises(NotAVidpipeDatabase) as refused:
        upgrade(engine)

    message = str(refused.value)
    assert "scene_audio_manifests (columns vidpipe never had (id, title)" in message
    assert "Nothing was changed" in message
    assert snapshot(engine, keep_version_table=True) == before  # no version table either


def test_the_cli_refuses_a_foreign_table_in_one_line(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}", poolclass=NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE projects (id INTEGER PRIMARY KEY, headline TEXT)")
    engine.dispose()
    result = alembic("upgrade", "head", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "FAILED: " in result.stdout
    assert "projects (columns vidpipe never had (headline); id is INTEGER, not Uuid; no prompt" in (
        result.stdout
    )
