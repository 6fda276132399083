"""On PostgreSQL a migration blocked behind an application's lock fails instead of freezing."""

import pytest
import sqlalchemy as sa
from alembic import command

from tests.support.databases import dialect_params
from vidpipe.db import DDLLockTimeout, MigrationSettingError, current_revision, upgrade
from vidpipe.db.migrate import alembic_config

pytestmark = pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)


def test_a_blocked_migration_fails_on_lock_timeout(engine: sa.Engine) -> None:
    upgrade(engine, "vidpipe_0001")
    with engine.connect() as application:
        # An application transaction holding projects, as a long report or a stuck job would.
        application.exec_driver_sql("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
        with engine.connect() as connection:
            config = alembic_config(
                connection=connection, ddl_lock_timeout="200ms", ddl_retries=0
            )
            with pytest.raises(DDLLockTimeout) as raised:
                command.upgrade(config, "head")
        application.rollback()
    assert raised.value.table == "projects"
    assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
    assert "lock timeout" in str(raised.value.__cause__)
    assert current_revision(engine) == "vidpipe_0001"
    assert "scene_manifests" not in sa.inspect(engine).get_table_names()


def test_timeouts_are_local_to_the_migration(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        upgrade(connection)
        assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "0"


def test_a_malformed_timeout_is_refused_before_any_change(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        config = alembic_config(connection=connection, statement_timeout="1; DROP TABLE x")
        with pytest.raises(MigrationSettingError, match="statement_timeout"):
            command.upgrade(config, "head")
    assert sa.inspect(engine).get_table_names() == []
