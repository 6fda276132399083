"""PostgreSQL: a revision's lock on a table that holds rows ends with that table's changes, and
its foreign keys are added NOT VALID and validated after the commit (issue 11).

The upgrade from vidpipe_0005 to head (vidpipe_0006 changes six existing tables) is held at a
known point without timing: an application transaction that wrote scene_audio_manifests stays
open, so vidpipe_0006's ALTER of that table, one of its last, waits for it. Meanwhile the
application writes to every table the revision changed before.
"""

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from benchmarks.write_load import SCENE_WRITES, TABLE_WRITES
from tests.support.background_upgrade import Upgrade, wait_for
from tests.support.databases import HeadTemplates, dialect_params
from tests.support.postgresql_locks import LOCK_LOST, advisory_locks, handover_holder, terminate
from tests.support.revisions import HEAD
from tests.support.schema_snapshot import snapshot
from vidpipe.db import current_revision, upgrade
from vidpipe.db.errors import InjectedFault
from vidpipe.db.migrate import alembic_config
from vidpipe.db.runner.faults import FAIL_AFTER_STATEMENT

pytestmark = pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)

#: A write that waits longer than this for a lock fails the test (the old runner held every
#: table vidpipe_0006 changed until the revision's end, here: until the parked write ends).
WRITER_LOCK_TIMEOUT = "5s"
#: The migration waits this long for the parked transaction instead of retrying.
DDL_LOCK_TIMEOUT = "ddl_lock_timeout=120s"


def unvalidated_foreign_keys(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        names = connection.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND NOT convalidated "
            "AND connamespace = to_regnamespace(current_schema())"
        ).scalars()
        return set(names)


def test_each_table_is_written_again_once_its_own_changes_are_committed(
    at_0005: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    with at_0005.connect() as parked:
        parked.exec_driver_sql("UPDATE scene_audio_manifests SET has_music = NOT has_music")
        run = Upgrade(database_url, tmp_path, "-x", DDL_LOCK_TIMEOUT)
        run.start()
        wait_for(
            at_0005,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE scene_audio_manifests%%'",
            "vidpipe_0006 waiting to alter scene_audio_manifests",
        )

        # Every table vidpipe_0006 changed before takes writes, each in its own transaction (the
        # scene writes check their project in projects too), and so do a column and a foreign
        # key it added.
        writes = [
            SCENE_WRITES,
            *((write,) for write in TABLE_WRITES if "scene_audio_manifests" not in write),
            (
                "UPDATE assets SET inherited_from_project = md5('p1')::uuid "
                "WHERE id = md5('a1')::uuid",
            ),
        ]
        values = {"project": 1, "index": 1_000_000, "existing": 0, "row": 1}
        with at_0005.connect() as application:
            for statements in writes:
                with application.begin():
                    application.exec_driver_sql(f"SET LOCAL lock_timeout = '{WRITER_LOCK_TIMEOUT}'")
                    for statement in statements:
                        application.execute(sa.text(statement), values)
        assert run.is_alive()
        assert current_revision(at_0005) == "vidpipe_0005"  # the revision is still running
        parked.rollback()

    result = run.finished()
    assert result.returncode == 0, result.stderr
    assert current_revision(at_0005) == HEAD
    assert unvalidated_foreign_keys(at_0005) == set()


def test_a_run_whose_handover_connection_dies_between_table_commits_stops_before_the_next(
    at_0005: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    """The connection that keeps the lock between vidpipe_0006's table commits is terminated
    while the run waits to alter scene_audio_manifests, and a second replica starts at that
    moment: it waits for the migration lock, which the first run's transaction took again
    after its last commit, and the first stops before its next statement after that
    transaction (the old runner let the second migrate at once, beside the first)."""
    with at_0005.connect() as parked:
        parked.exec_driver_sql("UPDATE scene_audio_manifests SET has_music = NOT has_music")
        first = Upgrade(database_url, tmp_path, "-x", DDL_LOCK_TIMEOUT)
        first.start()
        wait_for(
            at_0005,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE scene_audio_manifests%%'",
            "vidpipe_0006 waiting to alter scene_audio_manifests",
        )
        terminate(at_0005, handover_holder(at_0005))
        second = Upgrade(database_url, tmp_path, "-x", DDL_LOCK_TIMEOUT)
        second.start()
        second.logged("Waiting up to")
        assert first.is_alive()
        assert current_revision(at_0005) == "vidpipe_0005"
        parked.rollback()

    lost = first.finished()
    assert lost.returncode != 0
    assert LOCK_LOST in lost.stderr, lost.stderr
    assert "Traceback" not in lost.stderr
    finished = second.finished()
    assert finished.returncode == 0, finished.stderr
    assert current_revision(at_0005) == HEAD
    assert unvalidated_foreign_keys(at_0005) == set()
    assert advisory_locks(database_url) == []


def test_a_run_killed_before_validating_a_foreign_key_is_finished_by_the_next(
    at_0005: sa.Engine, head_templates: HeadTemplates
) -> None:
    with at_0005.connect() as connection:
        config = alembic_config(
            connection=connection,
            **{FAIL_AFTER_STATEMENT: "ALTER TABLE assets VALIDATE CONSTRAINT"},
        )
        with pytest.raises(InjectedFault):
            command.upgrade(config, "head")

    # The tables before assets, and assets' keys unchecked, were committed; the revision is not
    # recorded.
    assert current_revision(at_0005) == "vidpipe_0005"
    manifests = {column["name"] for column in sa.inspect(at_0005).get_columns("manifests")}
    assert "source_video_path" in manifests
    assert unvalidated_foreign_keys(at_0005) == {
        "fk_assets_inherited_from_asset_assets",
        "fk_assets_inherited_from_project_projects",
    }

    upgrade(at_0005)

    assert current_revision(at_0005) == HEAD
    assert unvalidated_foreign_keys(at_0005) == set()
    with head_templates.engine("postgresql") as reference:
        assert snapshot(at_0005) == snapshot(reference)
