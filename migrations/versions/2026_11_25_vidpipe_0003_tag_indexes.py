"""tag indexes: GIN indexes on the asset and speaker tag arrays (PostgreSQL only)

Revision ID: vidpipe_0003
Revises: vidpipe_0002
Create Date: 2026-11-25

Why: the pipeline asks "in which scenes does asset CHAR_01 appear?" and "where does CHAR_01
speak?" (``vidpipe.db.store``). On PostgreSQL the tag arrays are JSONB and a GIN index answers
``asset_tags @> '["CHAR_01"]'`` without reading every manifest. SQLite has no GIN and MariaDB
cannot index a JSON column, so this revision does nothing there (``ONLY_ON_DIALECTS``); the
models declare the same indexes for PostgreSQL only.

The indexes are built inside the migration's transaction (not CONCURRENTLY): on the upgrade from
0001 the two tables were just created by 0002 and are empty, so the build is instant. A database
that adopted large manifest tables from ``create_all`` takes a write lock while they are indexed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vidpipe.db.idempotent import drop_index, ensure_index
from vidpipe.db.types import JSONDocument

revision: str = "vidpipe_0003"
down_revision: str | Sequence[str] | None = "vidpipe_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: squawk rules this revision accepts on PostgreSQL, and why (tests/test_squawk.py lints it).
SQUAWK_ACCEPTED = {
    "require-concurrent-index-creation": (
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction, and the migration's single "
        "transaction is what makes a PostgreSQL upgrade all-or-nothing. The tables were created "
        "empty by 0002 in the same upgrade (vidpipe never ran on PostgreSQL before versioned "
        "migrations), so the plain build blocks writes for milliseconds."
    ),
}

#: The dialects on which this revision has any effect (tests read it).
ONLY_ON_DIALECTS: tuple[str, ...] = ("postgresql",)

metadata = sa.MetaData()
# (table, column) pairs; only the indexed column is spelled out, the tables belong to 0002.
TAG_COLUMNS = (("scene_manifests", "asset_tags"), ("scene_audio_manifests", "speaker_tags"))


def _gin_index(table_name: str, column: str) -> sa.Index:
    table = sa.Table(table_name, metadata, sa.Column(column, JSONDocument))
    return sa.Index(
        f"ix_{table_name}_{column}",
        table.c[column],
        postgresql_using="gin",
        postgresql_ops={column: "jsonb_path_ops"},
    )


INDEXES = [_gin_index(table, column) for table, column in TAG_COLUMNS]


def _applies() -> bool:
    return op.get_context().dialect.name in ONLY_ON_DIALECTS


def upgrade() -> None:
    if _applies():
        for index in INDEXES:
            ensure_index(index)


def downgrade() -> None:
    if _applies():
        for index in INDEXES:
            drop_index(index.table.name, index.name)
