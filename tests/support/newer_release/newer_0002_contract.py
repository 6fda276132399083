"""newer contract: a next release dropping a column the current code uses (tests/support/newer_release.py)

Revision ID: newer_0002_contract
Revises: newer_0001_expand

Code that does not know this revision selects ``projects.head_sha`` and would fail on it: it
must refuse to start.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import drop_columns, ensure_columns

revision: str = "newer_0002_contract"
down_revision: str | Sequence[str] | None = "newer_0001_expand"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    drop_columns("projects", "head_sha")


def downgrade() -> None:
    ensure_columns("projects", sa.Column("head_sha", sa.String(40)))
