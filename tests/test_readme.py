"""The README tells the truth: its ER diagrams are the ones the models draw
(tools/er_diagrams.py), its commands are CI's, its tested versions are the ones the tests run
with."""

import importlib.metadata
import re

import pytest
import sqlalchemy as sa

from tests.support.cli import REPO_ROOT
from tools.er_diagrams import COMMAND, differences

README = (REPO_ROOT / "README.md").read_text()


def test_the_er_diagrams_are_the_ones_the_models_draw() -> None:
    found = differences(README)
    assert not found, "\n".join(f"README.md: {line}; run `{COMMAND}`" for line in found)


def test_a_stale_diagram_names_the_table_or_column_that_differs() -> None:
    """The check above can fail, and says where: a column dropped from one table's drawing, a
    type changed in another, a table the models do not have."""
    stale = (
        README.replace("        text rewritten_video_prompt\n", "", 1)
        .replace("        string head_sha\n", "        text head_sha\n", 1)
        .replace("    users {\n", "    lighting_rigs {\n        uuid id PK\n    }\n    users {\n", 1)
    )
    assert differences(stale) == [
        "table lighting_rigs is in the diagrams but not in the models",
        "column projects.head_sha is drawn as text, the models say string",
        "column scene_manifests.rewritten_video_prompt is in the models but not in the diagrams",
    ]


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
