"""Rows survive every migration path: adoption from create_all, up from the baseline, down to
the baseline (allowed) and up again. Every row a revision keeps is unchanged, column by column."""

import sqlalchemy as sa

from tests.support.revisions import HEAD
from tests.support.rows import (
    BASELINE_TABLES,
    MANIFEST_TABLES,
    UPSTREAM_TABLES,
    expected_rows,
    insert_rows,
    read_rows,
)
from vidpipe.db import current_revision, downgrade, upgrade
from vidpipe.db.models import Base

ALL_TABLES = BASELINE_TABLES + MANIFEST_TABLES + UPSTREAM_TABLES
LATER_TABLES = MANIFEST_TABLES + UPSTREAM_TABLES


def test_rows_written_are_the_rows_read(engine: sa.Engine) -> None:
    """The comparison below is only as good as this round trip: prove it first."""
    upgrade(engine)
    insert_rows(engine, ALL_TABLES)
    assert read_rows(engine, ALL_TABLES) == expected_rows(engine, ALL_TABLES)
    assert sum(len(rows) for rows in read_rows(engine, ALL_TABLES).values()) == 18


def test_rows_in_every_table_survive_adoption_from_base(engine: sa.Engine) -> None:
    """A database built by create_all (no version table: base) with rows in every table."""
    Base.metadata.create_all(engine)
    insert_rows(engine, ALL_TABLES)
    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert read_rows(engine, ALL_TABLES) == expected_rows(engine, ALL_TABLES)


def test_rows_survive_up_down_and_up_again(engine: sa.Engine) -> None:
    upgrade(engine, "vidpipe_0001")
    insert_rows(engine, BASELINE_TABLES)
    upgrade(engine)
    assert read_rows(engine, BASELINE_TABLES) == expected_rows(engine, BASELINE_TABLES)

    insert_rows(engine, LATER_TABLES)
    downgrade(engine, "vidpipe_0001", allow_data_loss=True)
    assert current_revision(engine) == "vidpipe_0001"
    assert not set(LATER_TABLES) & set(sa.inspect(engine).get_table_names())
    assert read_rows(engine, BASELINE_TABLES) == expected_rows(engine, BASELINE_TABLES)

    upgrade(engine)
    assert read_rows(engine, BASELINE_TABLES) == expected_rows(engine, BASELINE_TABLES)
    assert read_rows(engine, LATER_TABLES) == {name: [] for name in LATER_TABLES}
