"""One home per dialect: each database's SQLAlchemy dialect finds its vidpipe class, and a
database vidpipe has no module for is refused where vidpipe cannot guess."""

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa

import vidpipe
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


#: What a branch on the database compares with: SQLAlchemy's dialect and driver names.
DATABASE_NAMES = {"sqlite", "postgresql", "mariadb", "mysql"}
DRIVER_NAMES = {"pysqlite", "aiosqlite", "psycopg", "psycopg2", "asyncpg", "pymysql", "aiomysql"}


def _compared_names(node: ast.Compare) -> set[str]:
    """The string constants ``node`` compares with, directly or as members of a literal."""
    names: set[str] = set()
    for operand in [node.left, *node.comparators]:
        members = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
        names |= {
            m.value for m in members if isinstance(m, ast.Constant) and isinstance(m.value, str)
        }
    return names


def test_no_module_outside_the_dialects_package_branches_on_a_database_or_driver_name() -> None:
    """What differs between databases lives in vidpipe/db/dialects (one class per dialect, asked
    through dialect_for), so that "what happens on MariaDB?" is answered by mariadb.py."""
    package = Path(vidpipe.__file__).parent
    dialects = package / "db" / "dialects"
    branches = [
        f"{path.relative_to(package.parent)}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        if dialects not in path.parents
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Compare) and _compared_names(node) & (DATABASE_NAMES | DRIVER_NAMES)
    ]
    assert branches == []
