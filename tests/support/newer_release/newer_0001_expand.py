"""newer expand: what a next release's first revision could be (tests/support/newer_release.py)

Revision ID: newer_0001_expand
Revises: (the code's head, filled in when the newer copy is made)

Only adds: a nullable column, a nullable column under a foreign key, and a table. Code that
does not know this revision keeps running on it.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import (
    drop_columns,
    drop_referencing_columns,
    drop_tables,
    ensure_columns,
    ensure_table,
)
from vidpipe.db.types import NAMING_CONVENTION

revision: str = "newer_0001_expand"
down_revision: str | Sequence[str] | None = "CODE_HEAD"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
sa.Table("projects", metadata, sa.Column("id", sa.Uuid(), primary_key=True))
newer_notes = sa.Table(
    "newer_notes",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("project_id", sa.Uuid(), sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("body", sa.Text(), nullable=False),
)


def upgrade() -> None:
    ensure_columns(
        "projects",
        sa.Column("newer_note", sa.String(200)),
        sa.Column("newer_parent_id", sa.Uuid(), sa.ForeignKey("projects.id")),
    )
    ensure_table(newer_notes)


def downgrade() -> None:
    drop_tables("newer_notes")
    drop_referencing_columns("projects", "newer_parent_id")
    drop_columns("projects", "newer_note")
