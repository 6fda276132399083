"""pytest-alembic's fixtures, for tests/migrations/test_pytest_alembic.py: its runner on the
test's own database, with vidpipe's Alembic configuration."""

import pytest
import sqlalchemy as sa
from pytest_alembic import Config as PytestAlembicConfig

from vidpipe.db.migrate import alembic_config as vidpipe_alembic_config


@pytest.fixture
def alembic_engine(engine: sa.Engine) -> sa.Engine:
    return engine


@pytest.fixture
def alembic_config() -> PytestAlembicConfig:
    return PytestAlembicConfig(alembic_config=vidpipe_alembic_config())
