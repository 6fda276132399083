"""The revisions are idempotent: they adopt what exists and a repeated run changes nothing."""

import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy.pool import NullPool

from tests.support.cli import REPO_ROOT, alembic
from tests.support.databases import HeadTemplates, url_text
from tests.support.ddl_statements import ddl_statements
from tests.support.revisions import HEAD
from tests.support.schema_snapshot import snapshot
from vidpipe.db import VERSION_TABLE, create_engine, current_revision, downgrade, upgrade
from vidpipe.db.migrate import alembic_config
from vidpipe.db.models import Base
from vidpipe.db.revision_rewriter import operations_left_as_written


def test_second_upgrade_is_a_no_op(engine: sa.Engine) -> None:
    upgrade(engine)
    first = snapshot(engine, keep_version_table=True)
    with ddl_statements(engine) as statements, engine.connect() as connection:
        upgrade(connection)
        command.upgrade(alembic_config(connection=connection), "head")  # no fast path
    assert statements == []
    assert snapshot(engine, keep_version_table=True) == first
    assert current_revision(engine) == HEAD


def test_rerunning_every_revision_over_its_own_tables_changes_nothing(engine: sa.Engine) -> None:
    """What a crash between a revision's DDL and its version row leaves: the revisions run again."""
    upgrade(engine)
    first = snapshot(engine)
    with engine.connect() as connection:
        command.stamp(alembic_config(connection=connection), "base", purge=True)
        connection.commit()
    with ddl_statements(engine) as statements:
        upgrade(engine)
    assert [s for s in statements if VERSION_TABLE not in s] == []
    assert snapshot(engine) == first
    assert current_revision(engine) == HEAD


def test_upgrade_downgrade_upgrade_builds_the_identical_schema(engine: sa.Engine) -> None:
    upgrade(engine)
    first = snapshot(engine)
    downgrade(engine, "base")
    upgrade(engine)
    assert snapshot(engine) == first
    assert len(first) == 16  # the eight baseline tables, two manifest tables, six of 0006


def test_a_database_built_by_create_all_is_adopted(
    engine: sa.Engine, dialect: str, head_templates: HeadTemplates
) -> None:
    Base.metadata.create_all(engine)
    with engine.begin() as connection:  # a row proves the tables are adopted, not recreated
        connection.execute(
            Base.metadata.tables["projects"].insert(),
            {
                "id": uuid.uuid4(),
                "prompt": "p",
                "style": "s",
                "aspect_ratio": "16:9",
                "target_clip_duration": 8,
                "target_scene_count": 3,
                "status": "draft",
            },
        )

    upgrade(engine)

    assert current_revision(engine) == HEAD
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM projects")).scalar() == 1
    with head_templates.engine(dialect) as reference:
        assert snapshot(engine) == snapshot(reference)


def test_alembic_check_finds_no_drift_at_head(database_url: sa.URL, tmp_path: Path) -> None:
    url = url_text(database_url)
    assert alembic("upgrade", "head", cwd=tmp_path, url=url).returncode == 0
    result = alembic("check", cwd=tmp_path, url=url)
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout


def test_alembic_check_reports_a_missing_table(database_url: sa.URL, tmp_path: Path) -> None:
    """The drift check can fail: drop a table behind Alembic's back and it must say so."""
    url = url_text(database_url)
    assert alembic("upgrade", "head", cwd=tmp_path, url=url).returncode == 0
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE scene_audio_manifests")
    engine.dispose()
    result = alembic("check", cwd=tmp_path, url=url)
    assert result.returncode != 0
    assert "scene_audio_manifests" in result.stderr + result.stdout


def test_downgrade_base_leaves_only_the_version_table(engine: sa.Engine) -> None:
    upgrade(engine)
    downgrade(engine, "base")
    assert sa.inspect(engine).get_table_names() == [VERSION_TABLE]
    assert current_revision(engine) is None


def test_no_revision_keeps_an_operation_autogenerate_wrote_unchecked() -> None:
    """``alembic revision --autogenerate`` writes every operation vidpipe.db.idempotent covers
    with its helpers; any other stays as written under a NOT IDEMPOTENT comment, until a
    maintainer makes it look before it changes anything."""
    left = operations_left_as_written(REPO_ROOT / "migrations" / "versions")
    assert not left, "\n".join(
        f"migrations/versions/{place} is as autogenerate wrote it: a second run (after a crash, "
        "or over a database that already has the change) repeats it and fails. Make it check "
        "the database first (sa.inspect(op.get_bind()); see vidpipe.db.idempotent), then "
        "delete its NOT IDEMPOTENT comment."
        for place in left
    )
