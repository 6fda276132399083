"""MariaDB: the application keeps writing while vidpipe_0006 changes tables that hold rows
(issue 17, item 4; vidpipe.db.dialects.mariadb).

Two things used to stop it: the foreign keys vidpipe_0006 adds to ``assets`` copied the table
under ``LOCK=SHARED``, and an ``ALTER TABLE projects`` waiting for its metadata lock deadlocked
an application transaction that went on to insert into another child table of ``projects``.
Both are shown without timing: by the statement sent, and by holding an application
transaction open at the moment the ``ALTER`` finds the lock taken.
"""

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from benchmarks.write_load import writes
from tests.support.background_upgrade import Upgrade
from tests.support.databases import dialect_params
from vidpipe.db import upgrade
from vidpipe.db.models import Base
from vidpipe.db.runner.table_locks import add_foreign_key

pytestmark = pytest.mark.parametrize("dialect", dialect_params("mariadb"), indirect=True)

#: A new scene of an existing project, and an existing scene of it.
VALUES = {"project": 1, "index": 1_000_000, "existing": 0, "row": 1}


def test_the_foreign_keys_of_new_columns_are_added_in_place_and_hold(at_0005: sa.Engine) -> None:
    sent: list[str] = []
    sa.event.listen(at_0005, "before_cursor_execute", lambda *args: sent.append(args[2]))
    upgrade(at_0005)

    added = [s for s in sent if s.startswith("ALTER TABLE assets ADD CONSTRAINT")]
    assert [s.split()[5] for s in added] == [
        "fk_assets_inherited_from_asset_assets",
        "fk_assets_inherited_from_project_projects",
    ]
    # In place, with writes going on: no table copy under LOCK=SHARED.
    assert all(s.endswith(", ALGORITHM=INPLACE, LOCK=NONE") for s in added)
    # The keys are there and checked (the run put foreign_key_checks back on).
    with at_0005.connect() as connection, pytest.raises(sa.exc.IntegrityError, match="1452"):
        connection.exec_driver_sql(
            "UPDATE assets SET inherited_from_project = uuid() WHERE manifest_tag = 'CHAR_1'"
        )


def test_a_foreign_key_on_a_column_holding_values_is_checked_as_it_is_added(
    engine: sa.Engine,
) -> None:
    """Only columns holding nothing but NULL are spared the check: a dangling value refuses
    the key (the in-place path would have let it through)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE parents (id INT PRIMARY KEY)")
        connection.exec_driver_sql("CREATE TABLE children (id INT PRIMARY KEY, parent_id INT)")
        connection.exec_driver_sql("INSERT INTO children VALUES (1, NULL), (2, 42)")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"target_metadata": Base.metadata})
        with Operations.context(context), pytest.raises(sa.exc.IntegrityError, match="1452"):
            add_foreign_key(None, "children", "parents", ["parent_id"], ["id"])


def test_an_application_transaction_across_related_tables_is_not_deadlocked(
    at_0005: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    """An application transaction inserts a scene (which locks ``scenes`` and ``projects``,
    its parent), the upgrade finds a lock it needs taken (vidpipe_0006 alters ``manifests``,
    the parent of ``projects``, first), and the transaction goes on to insert the scene's
    manifest, another child of ``projects``. A queued ``ALTER`` makes this a deadlock (MariaDB
    kills the application's insert, 1213, or both wait for ``innodb_lock_wait_timeout``); one
    that does not queue lets it through, and the upgrade finishes once the transaction ends."""
    scene_writes, _ = writes("mariadb")
    with at_0005.connect() as application:
        application.execute(sa.text(scene_writes[0]), VALUES)  # INSERT INTO scenes
        run = Upgrade(database_url, tmp_path)
        run.start()
        run.logged("a lock it needs is held by another transaction")
        application.execute(sa.text(scene_writes[1]), VALUES)  # INSERT INTO scene_manifests
        application.commit()
    result = run.finished()
    assert result.returncode == 0, result.stderr
    with at_0005.connect() as connection:
        manifests = connection.exec_driver_sql(
            "SELECT count(*) FROM scene_manifests WHERE scene_index = 1000000"
        )
        assert manifests.scalar_one() == 1
