"""Downgrades never drop data silently: they refuse, change nothing, and say how to proceed."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from tests.support.cli import alembic
from tests.support.databases import url_text
from tests.support.revisions import HEAD
from tests.support.rows import (
    BASELINE_TABLES,
    MANIFEST_TABLES,
    ROWS,
    expected_rows,
    insert_rows,
    read_rows,
)
from tests.support.schema_snapshot import snapshot
from vidpipe.db import DataLossRefused, create_engine, current_revision, downgrade, upgrade
from vidpipe.db.migrate import alembic_config
from vidpipe.db.models import Base

ALL_TABLES = BASELINE_TABLES + MANIFEST_TABLES


def test_downgrade_that_would_drop_rows_refuses_and_names_them(engine_at_head: sa.Engine) -> None:
    insert_rows(engine_at_head, ALL_TABLES)
    before = snapshot(engine_at_head)

    with pytest.raises(DataLossRefused) as refused:
        downgrade(engine_at_head, "vidpipe_0001")

    assert refused.value.drops == {
        "scene_manifests": 2,
        "scene_audio_manifests": 1,
        # vidpipe_0006's NOT NULL columns hold their defaults in every row: values too.
        "projects.quality_mode": 2,
        "projects.candidate_count": 2,
        "assets.is_inherited": 1,
    }
    assert refused.value.destination == "vidpipe_0001"
    message = str(refused.value)
    assert "scene_manifests (2 rows)" in message
    assert "scene_audio_manifests (1 row)" in message
    assert "allow_data_loss" in message
    assert snapshot(engine_at_head) == before
    assert current_revision(engine_at_head) == HEAD
    assert read_rows(engine_at_head, ALL_TABLES) == expected_rows(engine_at_head, ALL_TABLES)


def test_every_table_is_checked_before_any_is_dropped(engine_at_head: sa.Engine) -> None:
    """Down to base: 0002's tables are empty, 0001's are not. Nothing may go, not even the
    empty ones (MariaDB would commit their DROP at once)."""
    insert_rows(engine_at_head, ("manifests", "projects"))
    before = snapshot(engine_at_head)

    with pytest.raises(DataLossRefused, match=r"projects \(2 rows\)") as refused:
        downgrade(engine_at_head, "base")

    assert refused.value.drops == {
        "projects": 2,
        "manifests": 1,
        "projects.quality_mode": 2,  # vidpipe_0006's, with their defaults
        "projects.candidate_count": 2,
    }
    assert snapshot(engine_at_head) == before
    assert current_revision(engine_at_head) == HEAD


def test_api_allow_data_loss_drops_the_tables(engine_at_head: sa.Engine) -> None:
    insert_rows(engine_at_head, ALL_TABLES)
    downgrade(engine_at_head, "vidpipe_0001", allow_data_loss=True)
    assert current_revision(engine_at_head) == "vidpipe_0001"
    assert not set(MANIFEST_TABLES) & set(sa.inspect(engine_at_head).get_table_names())


def test_config_attributes_switch_for_migration_tests(engine_at_head: sa.Engine) -> None:
    insert_rows(engine_at_head, ALL_TABLES)
    with engine_at_head.connect() as connection:
        config = alembic_config(connection=connection, allow_data_loss=True)
        command.downgrade(config, "base")
    assert current_revision(engine_at_head) is None


def test_cli_refuses_then_obeys_allow_data_loss(
    engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    insert_rows(engine_at_head, ALL_TABLES)
    url = url_text(database_url)

    refused = alembic("downgrade", "vidpipe_0001", cwd=tmp_path, url=url)
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "FAILED: Downgrade to vidpipe_0001 refused" in output
    assert "scene_manifests (2 rows)" in output
    assert "Traceback" not in output
    assert current_revision(engine_at_head) == HEAD

    allowed = alembic(
        "-x", "allow_data_loss=true", "downgrade", "vidpipe_0001", cwd=tmp_path, url=url
    )
    assert allowed.returncode == 0, allowed.stderr
    assert current_revision(engine_at_head) == "vidpipe_0001"
    assert read_rows(engine_at_head, BASELINE_TABLES) == expected_rows(
        engine_at_head, BASELINE_TABLES
    )


def test_upgrade_to_an_older_revision_is_no_downgrade(
    engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    """Alembic runs ``upgrade <an older revision>`` as a no-op: the guard plans nothing for it,
    although its destination lies below the database, so it neither refuses nor drops."""
    insert_rows(engine_at_head, ALL_TABLES)
    before = snapshot(engine_at_head)
    result = alembic("upgrade", "vidpipe_0001", cwd=tmp_path, url=url_text(database_url))
    assert result.returncode == 0, result.stdout + result.stderr
    assert snapshot(engine_at_head) == before
    assert current_revision(engine_at_head) == HEAD


def test_cli_rejects_a_misspelt_switch(
    engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    result = alembic(
        "-x", "allow_data_loss=sure", "downgrade", "base", cwd=tmp_path, url=url_text(database_url)
    )
    assert result.returncode != 0
    assert "allow_data_loss must be true or false, got 'sure'" in result.stdout + result.stderr
    assert current_revision(engine_at_head) == HEAD


def test_offline_downgrade_script_says_what_it_drops(database_url: sa.URL, tmp_path: Path) -> None:
    result = alembic(
        "downgrade", f"{HEAD}:vidpipe_0001", "--sql", cwd=tmp_path, url=url_text(database_url)
    )
    assert result.returncode == 0, result.stderr
    script = result.stdout
    notice = (
        "-- vidpipe: WARNING, this downgrade drops table project_checkpoints, table user_settings, "
        "table users, table generation_candidates, table asset_appearances, "
        "table asset_clean_references, table scene_audio_manifests, table scene_manifests, "
        "column manifests.source_video_path, column manifests.source_video_duration, "
        "column projects.quality_mode, column projects.candidate_count, "
        "column projects.vision_model, column projects.deleted_at, column projects.title, "
        "column projects.run_through, column projects.head_sha, "
        "column assets.inherited_from_asset, column assets.inherited_from_project, "
        "column assets.clip_embedding, column assets.is_inherited, column video_clips.prompt_used, "
        "column scene_manifests.selected_reference_tags, column scene_manifests.cv_analysis_json, "
        "column scene_manifests.continuity_score, column scene_manifests.rewritten_keyframe_prompt, "
        "column scene_manifests.rewritten_video_prompt, column projects.characters, "
        "column projects.storyboard_kind, column scenes.key_details and every row in them."
    )
    assert notice in script
    assert script.index(notice) < script.index("DROP TABLE")


def test_offline_upgrade_script_has_no_such_notice(database_url: sa.URL, tmp_path: Path) -> None:
    result = alembic("upgrade", "head", "--sql", cwd=tmp_path, url=url_text(database_url))
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stdout


def test_a_row_committed_while_the_downgrade_runs_is_counted(
    engine_at_head: sa.Engine, dialect: str, database_url: sa.URL
) -> None:
    """The race a count alone loses: an application transaction has written a row into a table
    the downgrade drops, and commits only once the downgrade is under way (blocked by that
    transaction). The downgrade must see the row and refuse, not drop it."""
    insert_rows(
        engine_at_head, ("manifests", "projects")
    )  # the manifest row's parent; nothing dropped
    writer = create_engine(database_url, poolclass=sa.pool.NullPool)
    migrator = create_engine(database_url, poolclass=sa.pool.NullPool)
    probe = create_engine(database_url, poolclass=sa.pool.NullPool)
    sent = threading.Event()
    sa.event.listen(migrator, "before_cursor_execute", lambda *_: sent.set())
    try:
        with writer.connect() as application, ThreadPoolExecutor(1) as pool:
            application.begin()
            application.execute(
                Base.metadata.tables["scene_manifests"].insert(), ROWS["scene_manifests"][0]
            )
            running = pool.submit(downgrade, migrator, "vidpipe_0001")
            try:
                wait_until(lambda: downgrade_waits(probe, dialect, sent), "the downgrade waits")
            finally:
                application.commit()  # if the wait failed, this lets the downgrade end too
            refused = running.exception(timeout=300)
    finally:
        for made in (writer, migrator, probe):
            made.dispose()

    assert isinstance(refused, DataLossRefused), refused
    assert refused.drops == {
        "scene_manifests": 1,
        "projects.quality_mode": 2,  # vidpipe_0006's, with their defaults
        "projects.candidate_count": 2,
    }
    assert current_revision(engine_at_head) == HEAD
    assert read_rows(engine_at_head, ("scene_manifests",))["scene_manifests"] == [
        expected_rows(engine_at_head, ("scene_manifests",))["scene_manifests"][0]
    ]


def downgrade_waits(probe: sa.Engine, dialect: str, sent: threading.Event) -> bool:
    """Whether the downgrade is blocked behind the application's transaction.

    The servers say so; SQLite has no such view, and there the downgrade blocks on its first
    transaction (the application holds the write lock), so having sent a statement is enough.
    """
    if dialect == "sqlite":
        return sent.is_set()
    with probe.connect() as connection:
        if dialect == "postgresql":
            waiting = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        else:
            # LOCK TABLES and DROP TABLE wait as "Waiting for table metadata lock"; an online
            # ALTER TABLE waits for the same lock at its end, as "Committing alter table ...".
            waiting = connection.execute(
                sa.text(
                    "SELECT count(*) FROM information_schema.processlist "
                    "WHERE db = DATABASE() AND command = 'Query' AND state IN "
                    "('Waiting for table metadata lock', 'Committing alter table to storage engine')"
                )
            )
        return waiting.scalar_one() > 0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition``; a minute without it fails the test (a guard, not a measurement)."""
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)


def test_no_commit_between_the_count_and_the_last_drop(database_url: sa.URL) -> None:
    """The count and the hold on writers last as long as the run's transaction, so a downgrade
    that drops must not commit after a table's changes (as upgrades do on SQLite and
    PostgreSQL): a writer could then add rows that are dropped unseen."""
    upgrade(database_url)
    engine = create_engine(database_url, poolclass=sa.pool.NullPool)
    events: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda *args: events.append(" ".join(args[2].split()))
    )
    sa.event.listen(engine, "commit", lambda *args: events.append("COMMIT"))
    try:
        downgrade(engine, "vidpipe_0005")
    finally:
        engine.dispose()
    first_count = next(i for i, e in enumerate(events) if e.startswith("SELECT count(*)"))
    last_drop = max(i for i, e in enumerate(events) if e.startswith("DROP TABLE"))
    assert "COMMIT" not in events[first_count:last_drop]
    assert current_revision(database_url) == "vidpipe_0005"
