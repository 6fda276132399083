"""The database the write-load and table-lock tests start from."""

import pytest
import sqlalchemy as sa

from benchmarks.write_load import fill
from vidpipe.db import upgrade


@pytest.fixture
def at_0005(engine: sa.Engine) -> sa.Engine:
    """A database at vidpipe_0005 whose tables hold rows: where the revision that changes
    tables the application writes (vidpipe_0006) starts, for the write-load tests."""
    upgrade(engine, "vidpipe_0002")
    with engine.begin() as connection:
        fill(connection, 2_000)
    upgrade(engine, "vidpipe_0005")
    return engine
