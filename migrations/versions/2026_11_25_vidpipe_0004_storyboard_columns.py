"""storyboard columns: what a stored storyboard needs to be rebuilt exactly

Revision ID: vidpipe_0004
Revises: vidpipe_0003
Create Date: 2026-11-25

Why: ``vidpipe.db.store`` rebuilds a storyboard from its rows, and the pre-manifest tables had no
place for three of its parts: each scene's ``key_details``, the storyboard's ``characters``, and
whether it was written as a ``StoryboardOutput`` or an ``EnhancedStoryboardOutput``
(``storyboard_kind``; an enhanced storyboard with no scenes is otherwise indistinguishable).
``storyboard_raw`` holds them too, but it is an audit copy, not the source of truth.

All three are nullable and have no default, so adding them is a plain ADD COLUMN that no dialect
answers by rewriting or scanning ``scenes`` (SQLite edits the schema text, PostgreSQL the
catalog, MariaDB adds the column instantly). Nothing is backfilled from ``storyboard_raw``, for
the same reason: existing rows keep NULL, which the store reads as "not recorded".
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import drop_columns, ensure_columns
from vidpipe.db.types import JSONDocument

revision: str = "vidpipe_0004"
down_revision: str | Sequence[str] | None = "vidpipe_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: squawk rules this revision accepts on PostgreSQL, and why (tests/test_squawk.py lints it).
SQUAWK_ACCEPTED = {
    "prefer-text-field": (
        "storyboard_kind holds 'base' or 'enhanced'; VARCHAR(20) is how every other short code "
        "of these tables is typed, on every dialect."
    ),
}


def upgrade() -> None:
    ensure_columns("scenes", sa.Column("key_details", JSONDocument))
    ensure_columns(
        "projects",
        sa.Column("characters", JSONDocument),
        sa.Column("storyboard_kind", sa.String(20)),
    )


def downgrade() -> None:
    drop_columns("projects", "characters", "storyboard_kind")
    drop_columns("scenes", "key_details")
