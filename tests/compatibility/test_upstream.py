"""Files of every backend version are taken over, and the latest backend runs on the result.

The files are built by tests/support/upstream.py from what each version of the backend did at start-up
(its create_all DDL, its ALTER list, its default-user seed); nothing here asks vidpipe's code
what the field holds.
"""

import logging
import re
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.support import legacy, upstream
from tests.support.adopted_schema import check_finds_nothing, fresh_shape, shape
from tests.support.cli import alembic
from tests.support.databases import HeadTemplates
from tests.support.ddl_statements import ddl_statements
from tests.support.revisions import HEAD
from tests.support.schema_snapshot import snapshot
from vidpipe.db import (
    DatabaseAheadError,
    UnconvertibleValue,
    create_engine,
    current_revision,
    upgrade,
)
from vidpipe.db.migrate import alembic_config
from vidpipe.db.models import (
    AssetAppearance,
    AssetCleanReference,
    GenerationCandidate,
    ProjectCheckpoint,
    User,
    UserSettings,
)
from vidpipe.db.runner.environment import BOOKKEEPING_TABLES

#: How a file got to be what it is: made by one version, or by a chain of versions' start-ups.
BUILDS: dict[str, Callable[[Path], None]] = {
    **{f"fresh-{c}": (lambda path, c=c: upstream.build_fresh(path, c)) for c in upstream.COMMITS},
    # A pre-manifest file (phase 3, loosely typed ALTER columns) run by every later version.
    "legacy-to-latest": lambda path: upstream.build_chain(path, "oldest"),
    "phase7-to-latest": lambda path: upstream.build_chain(path, "ef91354"),
    # Seeded by the one version whose seed works on a fresh file, then upgraded.
    "seeded-073bbb6-to-latest": lambda path: upstream.build_chain(path, "073bbb6"),
    # Migrated by the previous vidpipe release, then run by the latest backend (its ALTERs add
    # loosely typed columns to a versioned database).
    "vidpipe_0005-then-latest": lambda path: (
        upgrade(f"sqlite:///{path}", "vidpipe_0005"),
        upstream.start_and_write(path, upstream.LATEST),
    ),
}

#: What the field's notes say a legacy file run through every version still lacks.
NEVER_MIGRATED = {
    ("assets", "is_inherited"),
    ("assets", "inherited_from_asset"),
    ("assets", "inherited_from_project"),
    ("manifests", "source_video_path"),
    ("manifests", "source_video_duration"),
    ("scene_manifests", "selected_reference_tags"),
    *(("projects", column) for column in legacy.LATE_PROJECT_COLUMNS),
}

DUPLICATE_COLUMN = re.compile(r"duplicate column|already exists", re.I)


@pytest.fixture(scope="module")
def head_shape(head_templates: HeadTemplates) -> dict:
    return fresh_shape(head_templates, "sqlite")


def columns_in(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as connection:
        tables = [t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [r[1] for r in connection.execute(f"PRAGMA table_info({t})")] for t in tables}


def test_the_fixtures_lack_what_the_field_lacks(tmp_path: Path) -> None:
    """The chained file is the field's: exactly the columns that never had an ALTER are missing."""
    upstream.build_chain(tmp_path / "chain.db", "oldest")
    upstream.build_fresh(tmp_path / "fresh.db", upstream.LATEST)
    chain, fresh = columns_in(tmp_path / "chain.db"), columns_in(tmp_path / "fresh.db")
    missing = {(t, c) for t, columns in fresh.items() for c in columns if c not in chain[t]}
    assert missing == NEVER_MIGRATED


def test_the_seed_fails_on_the_latest_backends_own_fresh_file(tmp_path: Path) -> None:
    """The failure the revisions fix, reproduced by the fixture: a raw INSERT meets NOT NULL."""
    connection = sqlite3.connect(tmp_path / "vidpipe.db")
    with pytest.raises(sqlite3.IntegrityError, match=r"user_settings\.ollama_use_cloud"):
        upstream.start(connection, upstream.LATEST)
    connection.close()


@pytest.mark.parametrize("build", list(BUILDS), ids=list(BUILDS))
def test_a_backend_file_is_taken_over_and_the_latest_backend_runs_on_it(
    build: str, tmp_path: Path, head_shape: dict
) -> None:
    path = tmp_path / "vidpipe.db"
    BUILDS[build](path)
    built = {t: columns for t, columns in columns_in(path).items() if t not in BOOKKEEPING_TABLES}
    before = legacy.quoted_rows(path, built)
    assert before["projects"]  # the rows really are there
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)

    upgrade(engine)

    assert current_revision(engine) == HEAD
    assert legacy.quoted_rows(path, built) == before  # byte for byte, type for type
    check_finds_nothing(engine)
    assert shape(engine) == head_shape
    with ddl_statements(engine) as statements, engine.connect() as connection:
        command.upgrade(alembic_config(connection=connection), "head")
    assert statements == []

    # The latest backend's start-up: every ALTER is a duplicate, its seed succeeds.
    with sqlite3.connect(path) as connection:
        assert upstream.start(connection, upstream.LATEST) == []
        settings = connection.execute(
            "SELECT ollama_use_cloud FROM user_settings WHERE user_id = ?", (upstream.DEFAULT_USER,)
        ).fetchall()
    connection.close()
    assert settings == [(0,)]
    check_finds_nothing(engine)
    engine.dispose()


def replay_alters(engine: sa.Engine) -> list[str]:
    """The latest backend's ALTER list, each on its own; the statements that succeeded."""
    succeeded = []
    for _first, statement in upstream.ALTERS:
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(statement)
        except sa.exc.DBAPIError as error:
            assert DUPLICATE_COLUMN.search(str(error.orig)), error
            continue
        succeeded.append(statement)
    return succeeded


def seed(engine: sa.Engine) -> None:
    """The latest backend's default-user seed, statement for statement, in one transaction."""
    with engine.begin() as connection:
        for statement in upstream.SEED_DELETES:
            connection.execute(sa.text(statement), {"uid": "00000000-0000-0000-0000-000000000001"})
        if connection.execute(sa.text(upstream.SEED_LOOKUP), {"uid": upstream.DEFAULT_USER}).first():
            return
        connection.execute(sa.text(upstream.SEED_INSERTS[0]), {"uid": upstream.DEFAULT_USER})
        connection.execute(
            sa.text(upstream.SEED_INSERTS[1]),
            {"sid": upstream.SEED_SETTINGS_ID, "uid": upstream.DEFAULT_USER},
        )


def test_the_latest_backends_start_up_runs_on_a_database_at_head(
    engine_at_head: sa.Engine,
) -> None:
    inspector = sa.inspect(engine_at_head)
    # create_all: every table of the latest backend exists, so it creates nothing.
    assert all(inspector.has_table(t) for t in upstream.create_all_tables(upstream.LATEST))
    assert replay_alters(engine_at_head) == []  # every column it would add is there already
    seed(engine_at_head)
    seed(engine_at_head)  # every start-up seeds; the second finds the user

    with Session(engine_at_head) as session:
        (user,) = session.query(User).all()
        (settings,) = session.query(UserSettings).all()
    assert (user.id, user.name) == (uuid.UUID(upstream.DEFAULT_USER), "default")
    assert (settings.user_id, settings.ollama_use_cloud) == (user.id, False)
    assert settings.vertex_api_key is None
    check_finds_nothing(engine_at_head)


def test_the_latest_backends_columns_read_and_write_on_a_database_at_head(
    engine_at_head: sa.Engine,
) -> None:
    """Every column its models select exists; each new table takes and returns a row."""
    with engine_at_head.connect() as connection:
        for table, columns in upstream.columns_of_latest().items():
            connection.execute(sa.select(*map(sa.column, columns)).select_from(sa.table(table)))

    project_id = uuid.uuid4()
    asset_id = uuid.uuid4()
    # The parents as raw SQL writes them, ids as 32 hex digits: the NOT NULL columns it leaves
    # out (category, counters, flags) take their SQL defaults.
    manifest_id = uuid.uuid4()
    with engine_at_head.begin() as connection:
        for statement, values in (
            ("INSERT INTO manifests (id, name) VALUES (:id, 'm')", {"id": manifest_id.hex}),
            (
                "INSERT INTO assets (id, manifest_id, asset_type, name, manifest_tag) "
                "VALUES (:id, :manifest_id, 'CHARACTER', 'a', 'CHAR_01')",
                {"id": asset_id.hex, "manifest_id": manifest_id.hex},
            ),
            (
                "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
                "status) VALUES (:id, 'p', 's', '16:9', 8, 'draft')",
                {"id": project_id.hex},
            ),
        ):
            connection.execute(sa.text(statement), values)
    user = User(name="editor")
    rows = [
        AssetCleanReference(asset_id=asset_id, tier="tier2_rembg", clean_image_url="r.png"),
        AssetAppearance(
            asset_id=asset_id, project_id=project_id, scene_index=0, frame_index=1,
            bbox=[1, 2, 3, 4], confidence=0.5, source="yolo",
        ),
        GenerationCandidate(project_id=project_id, scene_index=0, candidate_number=0,
                            scoring_details={"visual": 8}),
        ProjectCheckpoint(project_id=project_id, sha="a" * 40, snapshot_data={"scenes": []},
                          message="first"),
    ]  # fmt: skip
    with Session(engine_at_head) as session:
        session.add(user)
        session.flush()
        session.add(UserSettings(user_id=user.id, ollama_models=["llava"], vertex_api_key="k"))
        session.add_all(rows)
        session.commit()
        user_id = user.id
    with Session(engine_at_head) as session:
        reference = session.query(AssetCleanReference).one()
        assert (reference.is_primary, reference.generation_cost) == (False, 0.0)
        assert session.query(AssetAppearance).one().bbox == [1, 2, 3, 4]
        candidate = session.query(GenerationCandidate).one()
        assert (candidate.is_selected, candidate.selected_by, candidate.scoring_cost) == (
            False,
            "auto",
            0.0,
        )
        assert session.query(ProjectCheckpoint).one().snapshot_data == {"scenes": []}
        settings = session.query(UserSettings).one()
        assert (settings.ollama_models, settings.ollama_use_cloud) == (["llava"], False)
    with engine_at_head.begin() as connection, pytest.raises(sa.exc.IntegrityError):
        connection.execute(  # one settings row per user: the backend's unique index
            sa.insert(UserSettings.__table__).values(id=uuid.uuid4(), user_id=user_id)
        )


def test_a_file_from_a_newer_backend_is_refused_as_such(tmp_path: Path) -> None:
    path = tmp_path / "vidpipe.db"
    upstream.build_fresh(path, upstream.LATEST)
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE projects ADD COLUMN budget_cents INTEGER")
    connection.close()
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    before = snapshot(engine, keep_version_table=True)

    with pytest.raises(DatabaseAheadError) as refused:
        upgrade(engine)

    message = str(refused.value)
    assert "newer version of vidpipe" in message
    assert "projects (budget_cents)" in message
    assert "Nothing was changed" in message
    assert snapshot(engine, keep_version_table=True) == before
    engine.dispose()


def test_adoption_logs_each_table_it_rewrites(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "vidpipe.db"
    upstream.build_chain(path, "ef91354")
    with caplog.at_level(logging.INFO, logger="vidpipe.db.runner.adoption"):
        upgrade(f"sqlite:///{path}")
    logged = {r.getMessage().split()[1]: r.getMessage() for r in caplog.records if r.name == "vidpipe.db.runner.adoption"}
    # projects: quality_mode and candidate_count came by loose ALTERs; the file holds one row.
    assert "quality_mode" in logged["projects"]
    assert ": 1 rows in " in logged["projects"]
    assert "user_settings" in logged  # ollama_use_cloud INTEGER DEFAULT 0, ollama_models TEXT


def test_no_secret_is_printed_when_an_upgrade_fails(tmp_path: Path) -> None:
    """user_settings holds API keys in plain text; a refusal names rows by key, never by value."""
    path = tmp_path / "vidpipe.db"
    upstream.build_fresh(path, upstream.LATEST)
    with sqlite3.connect(path) as connection:  # settings of a user that does not exist
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("UPDATE user_settings SET user_id = 'ffffffffffffffffffffffffffffffff'")
        connection.commit()
    connection.close()
    result = alembic("upgrade", "head", cwd=tmp_path)
    assert result.returncode != 0
    assert "user_settings" in result.stdout + result.stderr  # it did fail on that table
    for secret in upstream.SECRETS:
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)
def test_a_nul_escape_in_json_is_named_before_anything_changes(engine: sa.Engine) -> None:
    """jsonb cannot hold \\u0000; json (what create_all gave) can. The row is named, not shown."""
    legacy.build(engine, "create_all")
    harmless = uuid.UUID(int=7)  # an escaped backslash before "u0000": jsonb takes it
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE projects SET style_guide = '{\"a\": \"x\\u0000y\"}'"
        )
        connection.exec_driver_sql(
            "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
            "target_scene_count, status, style_guide, created_at, updated_at) VALUES "
            f"('{harmless}', 'p', 's', '16:9', 8, 3, 'draft', '{{\"b\": \"\\\\u0000\"}}', "
            "now(), now())"
        )
    before = snapshot(engine, keep_version_table=True)

    with pytest.raises(UnconvertibleValue) as refused:
        upgrade(engine)

    assert (refused.value.table, refused.value.column) == ("projects", "style_guide")
    assert refused.value.rows == [f"id {uuid.UUID(legacy.PROJECT_ID)}"]
    assert "projects.style_guide" in str(refused.value)
    assert "x\\u0000y" not in str(refused.value)  # the value itself is never shown
    assert snapshot(engine, keep_version_table=True) == before
