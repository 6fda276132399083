"""Fixtures every area of the tests shares: a fresh database per test on each dialect (an
area's own fixtures are in its conftest.py).

Every database test runs once per dialect (``-m postgresql`` selects one). A dialect whose
server cannot be reached is skipped locally; with ``VIDPIPE_REQUIRE_ALL_DIALECTS=1`` (set by
.ci/run) such a skip fails the run instead, because an untested dialect is a failed one.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.support.databases import (
    HeadTemplates,
    dialect_params,
    fresh_database,
    server_unreachable,
)
from vidpipe.db import create_engine

REQUIRE_ALL_DIALECTS = os.environ.get("VIDPIPE_REQUIRE_ALL_DIALECTS") == "1"


@pytest.fixture(params=dialect_params())
def dialect(request: pytest.FixtureRequest) -> str:
    reason = server_unreachable(request.param)
    if reason:
        if REQUIRE_ALL_DIALECTS:
            pytest.fail(f"required dialect unavailable: {reason}")
        pytest.skip(reason)
    return request.param


@pytest.fixture
def database_url(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest, head_templates: HeadTemplates
) -> Iterator[sa.URL]:
    """A sync URL of a database of its own: empty, or at head for a test that asks for
    ``engine_at_head`` (or ``session``), copied from one upgraded once per test process."""
    template = head_templates.url(dialect) if "engine_at_head" in request.fixturenames else None
    with fresh_database(dialect, tmp_path, template=template) as url:
        yield url


@pytest.fixture
def engine(database_url: sa.URL) -> Iterator[sa.Engine]:
    """vidpipe's engine (SQLite settings included) on the test's own database."""
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def head_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadTemplates]:
    templates = HeadTemplates(tmp_path_factory.mktemp("head-templates"))
    yield templates
    templates.drop()


@pytest.fixture
def engine_at_head(engine: sa.Engine) -> sa.Engine:
    """The ``engine`` fixture on a database at head (``database_url`` makes it so)."""
    return engine


@pytest.fixture
def session(engine_at_head: sa.Engine) -> Iterator[Session]:
    """An ORM session on a database at head."""
    with Session(engine_at_head) as session:
        yield session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, a skipped test means an untested dialect: fail the run."""
    if not REQUIRE_ALL_DIALECTS:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"VIDPIPE_REQUIRE_ALL_DIALECTS=1 and {len(skipped)} test(s) skipped")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
