"""pytest-alembic's built-in and experimental checks, once per dialect.

Imported here instead of collected by the plugin (``--test-alembic``): the plugin's collector
breaks under pytest 9 when tests/conftest.py exists, and importing makes each check an
ordinary test that the dialect fixture parametrises. Where a shipped check cannot run as
shipped, a test of the same property stands beside it, and says why.
"""

import importlib
import pkgutil

import pytest
import sqlalchemy as sa
from pytest_alembic import MigrationContext
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from pytest_alembic.tests.experimental import (
    test_downgrade_leaves_no_trace as shipped_downgrade_leaves_no_trace,
)
from pytest_alembic.tests.experimental.all_models_register_on_metadata import (
    get_bare_import_tableset,
)

import vidpipe
from tests.support.cli import REPO_ROOT
from tests.support.databases import dialect_params
from tests.support.revisions import SCRIPT
from tests.support.schema_snapshot import snapshot

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.mark.parametrize("dialect", dialect_params("sqlite", "postgresql"), indirect=True)
def test_downgrade_leaves_no_trace(alembic_runner: MigrationContext) -> None:
    """The shipped check, where DDL is transactional, with vidpipe's version table made first.

    The check compares schemas through a bare Alembic context that knows only the default
    ``alembic_version``; vidpipe's own ``vidpipe_alembic_version``, created by the first upgrade
    and kept by the downgrade, would count as a trace. Stamping ``base`` first creates it
    (empty), as any upgrade would, so the comparison sees it on both sides.

    It rolls each upgrade back through a SAVEPOINT; MariaDB commits DDL implicitly, so there the
    rollback does nothing and the check passes whatever the downgrade does. MariaDB is covered
    by :func:`test_each_downgrade_restores_the_previous_schema` instead.
    """
    alembic_runner.command_executor.stamp("base")
    shipped_downgrade_leaves_no_trace(alembic_runner)


def test_each_downgrade_restores_the_previous_schema(
    alembic_runner: MigrationContext, engine: sa.Engine
) -> None:
    """For every revision: the schema after its downgrade equals the schema before its upgrade.

    Upgrades one revision at a time to head, taking the schema after each, then downgrades one
    at a time back to base, comparing with those (each schema is reflected once: on MariaDB that
    is most of the test's time). Runs the revisions for real (no savepoints), so it holds on
    every dialect; it also checks that each upgrade changed something, so an equal pair cannot
    come from a no-op (except on a dialect a revision declares it does not apply to, via its
    ``ONLY_ON_DIALECTS``).
    """
    revisions = [r for r in alembic_runner.history.revisions if r not in ("base", "heads")]
    assert revisions
    schemas = [snapshot(engine)]
    for revision in revisions:
        alembic_runner.migrate_up_to(revision)
        schemas.append(snapshot(engine))
        before, after_upgrade = schemas[-2:]
        only_on = getattr(SCRIPT.get_revision(revision).module, "ONLY_ON_DIALECTS", None)
        if only_on is None or engine.dialect.name in only_on:
            assert after_upgrade != before, f"{revision} changed nothing"
        else:
            assert after_upgrade == before, f"{revision} changed {engine.dialect.name}"
    for revision, before in zip(reversed(revisions), reversed(schemas[:-1]), strict=True):
        alembic_runner.migrate_down_one()
        assert snapshot(engine) == before, f"downgrade of {revision} left a trace"


def test_all_models_register_on_metadata(
    alembic_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table defined anywhere in ``vidpipe`` is on the MetaData env.py hands Alembic.

    pytest-alembic's experimental check walks the *package* that holds the MetaData and finds
    nothing when it is a module (``vidpipe.db.models``). Its env.py half is reused as is (a
    clean subprocess runs env.py against this dialect's database); the other half walks the
    whole ``vidpipe`` package.
    """
    monkeypatch.chdir(REPO_ROOT)
    url = alembic_engine.url.render_as_string(hide_password=False)
    _, bare_tables = get_bare_import_tableset(url)

    for module in pkgutil.walk_packages(vidpipe.__path__, "vidpipe."):
        importlib.import_module(module.name)
    full_tables = set(importlib.import_module("vidpipe.db.models").Base.metadata.tables)

    assert bare_tables == full_tables
    assert len(full_tables) == 16  # ten of the seed plan, six of the latest backend
