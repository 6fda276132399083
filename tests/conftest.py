"""Fixtures shared by every test: a fresh database per test on each dialect.

Every database test runs once per dialect (``-m postgresql`` selects one). A dialect whose
server cannot be reached is skipped locally; with ``VIDPIPE_REQUIRE_ALL_DIALECTS=1`` (set by
.ci/run) such a skip fails the run instead, because an untested dialect is a failed one.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_alembic import Config as PytestAlembicConfig
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.databases import dialect_params, fresh_database, server_unreachable
from vidpipe.db import create_engine, upgrade
from vidpipe.db.migrate import alembic_config as vidpipe_alembic_config

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
def database_url(dialect: str, tmp_path: Path) -> Iterator[sa.URL]:
    """A sync URL of an empty database of its own."""
    with fresh_database(dialect, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: sa.URL) -> Iterator[sa.Engine]:
    """vidpipe's engine (SQLite settings included) on the test's own database."""
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    """An ORM session on a database upgraded to head."""
    upgrade(engine)
    with Session(engine) as session:
        yield session


@pytest.fixture
def alembic_engine(engine: sa.Engine) -> sa.Engine:
    return engine


@pytest.fixture
def alembic_config() -> PytestAlembicConfig:
    return PytestAlembicConfig(alembic_config=vidpipe_alembic_config())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, a skipped test means an untested dialect: fail the run."""
    if not REQUIRE_ALL_DIALECTS:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"VIDPIPE_REQUIRE_ALL_DIALECTS=1 and {len(skipped)} test(s) skipped")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
