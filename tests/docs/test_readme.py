"""The README tells the truth: its commands are CI's, its tested versions are the ones the tests
run with, the modules it names exist (its ER diagrams moved to docs/schema.md:
tests/docs/test_schema_docs.py)."""

import importlib.metadata
import re

import pytest
import sqlalchemy as sa

from tests.support.cli import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


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

