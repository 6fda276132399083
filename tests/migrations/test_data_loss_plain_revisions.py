"""The data-loss guard with plain Alembic revisions (tests/support/scenarios/): batch operations on SQLite
included, they upgrade and downgrade on every dialect, and a downgrade that would destroy data,
or that the guard cannot plan, is refused, naming why, with nothing changed.

Each test starts from a database at vidpipe's head (``engine_at_head``: a copy of the real
upgrade's result), so what the commands run is the scenario's own revision."""

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from tests.support.cli import REPO_ROOT, alembic
from tests.support.revisions import HEAD
from tests.support.rows import BASELINE_TABLES, expected_rows, insert_rows, read_rows
from tests.support.schema_snapshot import snapshot
from vidpipe.db import DataLossRefused, current_revision
from vidpipe.db.migrate import alembic_config

SCENARIOS = REPO_ROOT / "tests" / "support" / "scenarios"
PLAIN_HEAD = "plain_0007"


def scratch_project(tmp_path: Path, scenario: str) -> Path:
    """A scratch copy of the repository's Alembic project with the scenario's revision on top."""
    root = tmp_path / "project"
    shutil.copytree(
        REPO_ROOT / "migrations", root / "migrations", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO_ROOT / "alembic.ini", root)
    for revision in (SCENARIOS / scenario).glob("*.py"):
        shutil.copy(revision, root / "migrations" / "versions")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return scratch_project(tmp_path, "plain_revision")


def run(project: Path, database_url: sa.URL, *args: str) -> str:
    """A real ``alembic`` command in the scratch project; its output, once it succeeded."""
    url = database_url.render_as_string(hide_password=False)
    result = alembic(*args, cwd=project, url=url, config=project / "alembic.ini")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def columns(engine: sa.Engine, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}


def test_plain_revision_downgrades_and_upgrades_again(
    engine_at_head: sa.Engine, database_url: sa.URL, project: Path
) -> None:
    """What it drops is empty (the rows of vidpipe's tables hold nothing in its columns)."""
    run(project, database_url, "upgrade", "head")
    insert_rows(engine_at_head, BASELINE_TABLES)
    assert current_revision(engine_at_head) == PLAIN_HEAD
    assert "plain_mood" in columns(engine_at_head, "scenes")

    run(project, database_url, "downgrade", "-1")

    assert current_revision(engine_at_head) == HEAD
    assert not sa.inspect(engine_at_head).has_table("plain_notes")
    assert "plain_flag" not in columns(engine_at_head, "projects")
    assert "plain_mood" not in columns(engine_at_head, "scenes")
    assert read_rows(engine_at_head, BASELINE_TABLES) == expected_rows(engine_at_head, BASELINE_TABLES)

    run(project, database_url, "upgrade", "head")
    assert current_revision(engine_at_head) == PLAIN_HEAD


def test_plain_revision_downgrade_that_destroys_data_is_refused(
    engine_at_head: sa.Engine, database_url: sa.URL, project: Path
) -> None:
    run(project, database_url, "upgrade", "head")
    insert_rows(engine_at_head, BASELINE_TABLES)
    with engine_at_head.begin() as connection:
        connection.execute(sa.text("INSERT INTO plain_notes (id, body) VALUES (1, 'keep me')"))
        connection.execute(sa.text("UPDATE projects SET plain_flag = 1"))
        connection.execute(sa.text("UPDATE scenes SET plain_mood = 'calm'"))
        connection.execute(sa.text("UPDATE manifests SET thumbnail_url = 'http://x/y.png'"))
    before = snapshot(engine_at_head)

    with engine_at_head.connect() as connection, pytest.raises(DataLossRefused) as refused:
        config = alembic_config(connection=connection)
        config.set_main_option("script_location", str(project / "migrations"))
        command.downgrade(config, "-1")

    assert refused.value.drops == {
        "plain_notes": 1,
        "projects.plain_flag": 2,
        "scenes.plain_mood": 1,
        "manifests.thumbnail_url": 1,
    }
    message = str(refused.value)
    assert "drop plain_notes (1 row), scenes.plain_mood (1 value), projects.plain_flag" in message
    assert "change the type of manifests.thumbnail_url (1 value)" in message
    assert snapshot(engine_at_head) == before
    assert current_revision(engine_at_head) == PLAIN_HEAD
    with engine_at_head.connect() as connection:
        assert connection.execute(sa.text("SELECT body FROM plain_notes")).scalar_one() == "keep me"

    url = database_url.render_as_string(hide_password=False)
    cli = alembic("downgrade", "-1", cwd=project, url=url, config=project / "alembic.ini")
    assert cli.returncode != 0
    output = cli.stdout + cli.stderr
    assert "FAILED: Downgrade to -1 refused" in output
    assert "Traceback" not in output
    assert snapshot(engine_at_head) == before
    assert current_revision(engine_at_head) == PLAIN_HEAD


def test_downgrade_writing_through_the_connection_is_refused(
    engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    project = scratch_project(tmp_path, "downgrade_writing_through_bind")
    run(project, database_url, "upgrade", "head")
    before = snapshot(engine_at_head)

    with engine_at_head.connect() as connection, pytest.raises(DataLossRefused) as refused:
        config = alembic_config(connection=connection)
        config.set_main_option("script_location", str(project / "migrations"))
        command.downgrade(config, HEAD)

    message = str(refused.value)
    assert "the downgrade of revision bind_0007 writes to the database itself" in message
    assert "DELETE FROM bind_log" in message
    assert snapshot(engine_at_head) == before
    assert current_revision(engine_at_head) == "bind_0007"
    run(project, database_url, "-x", "allow_data_loss=true", "downgrade", HEAD)
    assert current_revision(engine_at_head) == HEAD
