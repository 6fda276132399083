"""A rolling deploy on every dialect: the previous release keeps starting while the next one's
expand revisions run, and refuses once its contract revisions have (README, "Rolling deploys").

The test process is the previous release (this code); a newer copy of the code with two more
revisions (tests/support/newer_release.py) is the next one, run as its own ``vidpipe-db``.
"""

import asyncio
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from tests.support.cli import alembic, vidpipe_db
from tests.support.databases import as_async
from tests.support.newer_release import CONTRACT, EXPAND, NewerRelease
from tests.support.revisions import HEAD
from tests.support.schema_snapshot import snapshot
from tests.support.storyboards import enhanced_storyboard, new_project
from vidpipe.db import VERSION_TABLE, DatabaseAheadError, upgrade, upgrade_async
from vidpipe.db.runner.revision_record import RECORD_TABLE
from vidpipe.db.store import load_storyboard, save_storyboard


def recorded(engine: sa.Engine) -> dict[str, tuple[str, str]]:
    """revision -> (kind, down revisions) as the database records them."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f"SELECT revision, kind, down_revisions FROM {RECORD_TABLE}"
        )
        return {revision: (kind, down) for revision, kind, down in rows}


def stores_a_storyboard(engine: sa.Engine) -> None:
    storyboard = enhanced_storyboard(0, 1)
    with Session(engine) as session:
        project_id = new_project(session)
        save_storyboard(session, project_id, storyboard)
        session.commit()
        session.expunge_all()
        assert load_storyboard(session, project_id) == storyboard


def test_older_code_starts_on_expand_revisions_and_refuses_a_contract_one(
    engine_at_head: sa.Engine,
    database_url: sa.URL,
    dialect: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = engine_at_head
    newer = NewerRelease(tmp_path / "newer")

    # Deploy step 1: the new release's expand revisions, while this release still serves.
    expanded = newer.vidpipe_db(database_url, "upgrade", "--expand-only")
    assert expanded.returncode == 0, expanded.stderr
    assert expanded.stdout.strip().endswith(f": at {EXPAND}")
    assert f"held back {CONTRACT}" in expanded.stderr
    assert recorded(engine)[EXPAND] == ("expand", HEAD)
    assert CONTRACT not in recorded(engine)
    before = snapshot(engine, keep_version_table=True)

    # A replica of this release restarts: sync, async and the command line all start.
    with caplog.at_level(logging.WARNING, logger="vidpipe"):
        upgrade(engine)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert f"expand revisions only: {EXPAND} (adds column projects.newer_note" in (
        warnings[0].getMessage()
    )
    asyncio.run(upgrade_async(as_async(database_url, dialect)))
    started = vidpipe_db("upgrade", cwd=tmp_path, url=database_url.render_as_string(False))
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip().endswith(f": at {EXPAND}")
    assert snapshot(engine, keep_version_table=True) == before
    stores_a_storyboard(engine)

    # Deploy step 2, once every replica runs the new release: the contract revision.
    contracted = newer.vidpipe_db(database_url, "upgrade")
    assert contracted.returncode == 0, contracted.stderr
    assert recorded(engine)[CONTRACT] == ("contract", EXPAND)

    with pytest.raises(DatabaseAheadError) as refused:
        upgrade(engine)
    assert refused.value.unknown == (CONTRACT,)
    assert refused.value.breaking == CONTRACT
    assert f"{CONTRACT} is a contract revision (drops column projects.head_sha" in str(
        refused.value
    )
    with engine.connect() as connection:
        assert connection.exec_driver_sql(
            f"SELECT version_num FROM {VERSION_TABLE}"
        ).scalars().all() == [CONTRACT]


def test_a_newer_revision_without_a_recorded_kind_counts_as_contract(
    engine_at_head: sa.Engine, tmp_path: Path
) -> None:
    """As a database a release from before the record (or an offline script) moved ahead."""
    newer = NewerRelease(tmp_path / "newer", revisions=(EXPAND,))
    with engine_at_head.connect() as connection:
        command.upgrade(newer.alembic_config(connection=connection), "head")
    with engine_at_head.begin() as connection:
        connection.exec_driver_sql(f"DELETE FROM {RECORD_TABLE} WHERE revision = '{EXPAND}'")

    with pytest.raises(DatabaseAheadError) as refused:
        upgrade(engine_at_head)
    assert refused.value.breaking == EXPAND
    assert "kind was never recorded" in str(refused.value)


def test_a_database_upgraded_before_the_record_is_backfilled_by_the_next_run(
    engine: sa.Engine,
) -> None:
    upgrade(engine, "vidpipe_0004")
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE {RECORD_TABLE}")

    upgrade(engine)

    assert (
        recorded(engine).items()
        >= {
            "vidpipe_0001": ("expand", ""),
            "vidpipe_0002": ("expand", "vidpipe_0001"),
            "vidpipe_0003": ("expand", "vidpipe_0002"),
            "vidpipe_0004": ("expand", "vidpipe_0003"),
            "vidpipe_0005": ("contract", "vidpipe_0004"),
            "vidpipe_0006": ("expand", "vidpipe_0005"),
        }.items()
    )


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_alembic_upgrade_starts_on_expand_revisions_and_a_downgrade_is_refused(
    engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    """env.py tells an upgrade from other commands: only an upgrade may leave newer revisions
    in place; a downgrade or a stamp would need their files."""
    newer = NewerRelease(tmp_path / "newer", revisions=(EXPAND,))
    with engine_at_head.connect() as connection:
        command.upgrade(newer.alembic_config(connection=connection), "head")
    url = database_url.render_as_string(hide_password=False)

    started = alembic("upgrade", "head", cwd=tmp_path, url=url)
    assert started.returncode == 0, started.stderr
    assert f"expand revisions only: {EXPAND}" in started.stderr

    refused = alembic("downgrade", "-1", cwd=tmp_path, url=url)
    assert refused.returncode != 0
    assert "through expand revisions only, which this version runs on but cannot downgrade" in (
        refused.stdout + refused.stderr
    )
    assert recorded(engine_at_head)[EXPAND] == ("expand", HEAD)
