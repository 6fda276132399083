"""An upgrade that dies half-way loses nothing: transactional DDL rolls it back (SQLite,
PostgreSQL); on MariaDB, where each DDL statement commits, the next plain upgrade completes."""


import pytest
import sqlalchemy as sa
from alembic import command

from tests.support.databases import HeadTemplates
from tests.support.revisions import HEAD
from tests.support.rows import BASELINE_TABLES, expected_rows, insert_rows, read_rows
from tests.support.schema_snapshot import snapshot
from vidpipe.db import current_revision, upgrade
from vidpipe.db.errors import InjectedFault
from vidpipe.db.migrate import alembic_config
from vidpipe.db.runner.faults import FAIL_AFTER_STATEMENT

FIRST_TABLE_OF_0002 = "CREATE TABLE scene_manifests"


def upgrade_that_crashes(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        config = alembic_config(
            connection=connection, **{FAIL_AFTER_STATEMENT: FIRST_TABLE_OF_0002}
        )
        with pytest.raises(InjectedFault):
            command.upgrade(config, "head")


@pytest.mark.parametrize("start", ["base", "vidpipe_0001"])
def test_crash_after_the_first_table_of_0002(
    engine: sa.Engine, dialect: str, start: str, head_templates: HeadTemplates
) -> None:
    if start != "base":
        upgrade(engine, start)
        insert_rows(engine, BASELINE_TABLES)
    before = snapshot(engine, keep_version_table=True)

    upgrade_that_crashes(engine)

    tables = set(sa.inspect(engine).get_table_names())
    if dialect == "mariadb":
        # The fault really struck half-way: 0002's first table was committed, its second not,
        # and 0002 is not recorded (0001 is: it finished in its own transaction).
        assert "scene_manifests" in tables
        assert "scene_audio_manifests" not in tables
        assert current_revision(engine) == "vidpipe_0001"
    else:
        assert snapshot(engine, keep_version_table=True) == before
        assert current_revision(engine) == (None if start == "base" else start)

    upgrade(engine)  # the plain upgrade an operator runs next

    assert current_revision(engine) == HEAD
    if start != "base":
        assert read_rows(engine, BASELINE_TABLES) == expected_rows(engine, BASELINE_TABLES)
    with head_templates.engine(dialect) as reference:
        assert snapshot(engine) == snapshot(reference)


def test_fault_hook_is_off_unless_asked_for(engine: sa.Engine) -> None:
    """Without the attribute the same upgrade runs through: the hook cannot fire by accident."""
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection=connection), "head")
    assert current_revision(engine) == HEAD
