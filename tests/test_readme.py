"""The README tells the truth: its ER diagram matches the models, its commands are CI's, its
tested versions are the ones the tests run with."""

import importlib.metadata
import re

import pytest
import sqlalchemy as sa

from tests.cli import REPO_ROOT
from vidpipe.db.models import Base

README = (REPO_ROOT / "README.md").read_text()


def mermaid_diagram() -> str:
    """Every ER diagram of the README (one per area), as one text."""
    blocks = re.findall(r"```mermaid\n(erDiagram\n.*?)```", README, flags=re.S)
    assert blocks
    return "".join(blocks)


def diagram_tables() -> dict[str, dict[str, set[str]]]:
    """table -> column -> set of key marks (PK, FK)."""
    tables: dict[str, dict[str, set[str]]] = {}
    drawn = re.findall(r"^\s*(\w+) \{\n", mermaid_diagram(), flags=re.M)
    assert len(drawn) == len(set(drawn)), "a table is drawn in more than one diagram"
    for name, body in re.findall(
        r"^\s*(\w+) \{\n(.*?)^\s*\}", mermaid_diagram(), flags=re.S | re.M
    ):
        columns = {}
        for line in body.strip().splitlines():
            _type, column, *keys = line.split(maxsplit=2)
            columns[column] = {k.strip() for k in keys[0].split(",")} if keys else set()
        tables[name] = columns
    return tables


def test_diagram_has_every_table_column_and_key_of_the_models() -> None:
    expected = {
        table.name: {
            column.name: {
                mark
                for mark, present in (("PK", column.primary_key), ("FK", bool(column.foreign_keys)))
                if present
            }
            for column in table.columns
        }
        for table in Base.metadata.sorted_tables
    }
    assert diagram_tables() == expected


def test_diagram_relationships_are_the_foreign_keys() -> None:
    drawn = set(re.findall(r'^\s*(\w+) \|\|--o\{ (\w+) : "(\w+)"', mermaid_diagram(), flags=re.M))
    expected = {
        (fk.column.table.name, table.name, fk.parent.name)
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
    }
    assert drawn == expected


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)[:2]


def test_ci_runs_the_readmes_two_commands() -> None:
    install, test = readme_commands()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert install in ci
    assert test in ci


SERVER_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}


def versions_section() -> str:
    return README.split("\n## Tested versions\n", 1)[1].split("\n## ", 1)[0]


def names_series(name: str, series: str) -> bool:
    """Whether "Tested versions" names ``name`` at a version of ``series`` (15 -> 15.20)."""
    return (
        re.search(rf"\b{re.escape(name)} {re.escape(series)}(\.\d+)*\b", versions_section())
        is not None
    )


def test_the_tested_server_versions_are_the_ones_the_tests_run_against(
    engine: sa.Engine, dialect: str
) -> None:
    with engine.connect():
        version = engine.dialect.server_version_info
    assert version is not None
    # PostgreSQL's major version is its first number; the others' are their first two.
    series = version[:1] if dialect == "postgresql" else version[:2]
    assert names_series(SERVER_NAMES[dialect], ".".join(map(str, series))), version


@pytest.mark.parametrize(
    ("name", "distribution"),
    [("SQLAlchemy", "SQLAlchemy"), ("Alembic", "alembic"), ("mypy", "mypy")],
)
def test_the_tested_package_versions_are_the_ones_installed(name: str, distribution: str) -> None:
    installed = importlib.metadata.version(distribution)
    assert names_series(name, ".".join(installed.split(".")[:2])), installed


def test_every_module_path_it_names_exists() -> None:
    """A module that moved (vidpipe/db/dialects/, say) leaves no stale path behind."""
    paths = set(re.findall(r"`(vidpipe/[\w/]+\.py)`", README))
    assert paths
    assert sorted(path for path in paths if not (REPO_ROOT / path).is_file()) == []
