"""One home per dialect: each database's SQLAlchemy dialect finds its vidpipe class, and a
database vidpipe has no module for is refused where vidpipe cannot guess."""

import pytest
import sqlalchemy as sa

from vidpipe.db.dialects import Dialect, MariaDB, MySQL, PostgreSQL, SQLite, dialect_for
from vidpipe.db.dialects.base import LockWait
from vidpipe.db.runner.locking import logger
from vidpipe.db.store.lookups import HoldsTag


def test_each_connected_database_finds_its_own_class(engine: sa.Engine, dialect: str) -> None:
    expected = {"sqlite": SQLite, "postgresql": PostgreSQL, "mariadb": MariaDB}[dialect]
    with engine.connect() as connection:
        assert type(dialect_for(connection.dialect)) is expected


def test_a_mysql_url_gets_mariadbs_behaviour_under_its_own_name() -> None:
    mysql = dialect_for(sa.make_url("mysql+pymysql://localhost/x").get_dialect().name)
    assert type(mysql) is MySQL
    assert isinstance(mysql, MariaDB)
    assert mysql.name == "mysql"


def test_a_dialect_without_a_module_is_refused_where_vidpipe_cannot_guess() -> None:
    unknown = dialect_for("oracle")
    assert type(unknown) is Dialect
    with pytest.raises(NotImplementedError, match="no migration lock for dialect 'oracle'"):
        unknown.migration_lock(None, LockWait(1, 1, logger))  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="oracle"):
        unknown.hold_writers_off(None, [], [])  # type: ignore[arg-type]
    tags = sa.table("scene_manifests", sa.column("asset_tags", sa.JSON()))
    query = sa.select(tags).where(HoldsTag(tags.c.asset_tags, "hero"))
    with pytest.raises(NotImplementedError, match="No tag look-up for the oracle dialect"):
        query.compile(dialect=sa.make_url("oracle://").get_dialect()())
