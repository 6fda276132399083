"""SQLite: the application's writers get the write lock between the tables a revision rebuilds,
other runs stay out, and a run killed between two commits is finished by the next one
(issue 17, item 5; vidpipe.db.dialects.sqlite_commits).

``alembic upgrade head`` runs in a process of its own, from vidpipe_0005 on a database whose
tables hold rows; vidpipe_0006 changes ``manifests`` first (new columns, and defaults by an edit
of its definition). Its new column becomes visible to another connection once that table's
changes are committed: the run is then between tables,
its revision not yet recorded. The test process is the application (vidpipe's engine: WAL,
30 s busy_timeout).
"""

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.background_upgrade import Upgrade, wait_for
from tests.support.cli import start_alembic
from tests.support.databases import dialect_params
from tests.support.revisions import HEAD
from tests.support.schema_snapshot import snapshot
from vidpipe.db import MigrationLockTimeout, create_engine, current_revision, upgrade

pytestmark = pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)

#: Polled until vidpipe_0006's changes to manifests are committed.
MANIFESTS_COMMITTED = (
    "SELECT 1 FROM pragma_table_info('manifests') WHERE name = 'source_video_path'"
)


def test_the_application_writes_between_the_tables_a_revision_rebuilds(
    at_0005: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    run = Upgrade(database_url, tmp_path)
    run.start()
    wait_for(at_0005, MANIFESTS_COMMITTED, "vidpipe_0006 committing manifests")

    with at_0005.begin() as application:
        # Waits in busy_timeout for the run's next commit, then holds the write lock.
        application.exec_driver_sql(
            "UPDATE manifests SET source_video_path = 'written mid-run' WHERE rowid = 1"
        )
        recorded = application.exec_driver_sql("SELECT version_num FROM vidpipe_alembic_version")
        assert recorded.scalar_one() == "vidpipe_0005"  # the run is still going
        # Meanwhile another run is kept out, although the write lock is the application's.
        with pytest.raises(MigrationLockTimeout, match="migration lock file"):
            upgrade(database_url, lock_timeout=0.2)

    result = run.finished()
    assert result.returncode == 0, result.stderr
    assert current_revision(at_0005) == HEAD
    with at_0005.connect() as connection:
        written = connection.exec_driver_sql("SELECT source_video_path FROM manifests LIMIT 1")
        assert written.scalar_one() == "written mid-run"


def test_a_run_killed_between_two_commits_is_finished_by_the_next(
    at_0005: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    url = database_url.render_as_string(hide_password=False)
    process = start_alembic("upgrade", "head", cwd=tmp_path, url=url)
    try:
        wait_for(at_0005, MANIFESTS_COMMITTED, "vidpipe_0006 committing manifests")
    finally:
        process.kill()
        process.communicate()
    assert current_revision(at_0005) == "vidpipe_0005"

    upgrade(at_0005, lock_timeout=5)  # the kernel released the dead run's lock file
    assert current_revision(at_0005) == HEAD
    with at_0005.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    reference = create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    try:
        upgrade(reference)
        assert snapshot(at_0005) == snapshot(reference)
    finally:
        reference.dispose()
