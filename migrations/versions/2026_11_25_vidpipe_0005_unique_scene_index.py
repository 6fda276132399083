"""unique scene index: one scenes row per (project_id, scene_index)

Revision ID: vidpipe_0005
Revises: vidpipe_0004
Create Date: 2026-11-25

Why: a storyboard is one row per scene, keyed by its index within the project; the store and
the pipeline read "scene 3 of project P" as one row. Nothing in the database said so, and two
workers saving the same project at once could leave both storyboards' scenes side by side
(issue 9). The store now serialises saves of one project; this unique index makes the database
itself refuse a second row for the same scene, whoever writes it.

A unique index rather than a table constraint: every dialect adds it in place (SQLite would
rebuild the whole table to add a constraint), and it serves look-ups by project and index too.

Databases in the field that already hold such duplicates (written by concurrent saves before
this revision) are refused with :class:`vidpipe.db.errors.DuplicateRows`, naming each project
and scene index, before any DDL of this revision: which copy is right (each may have keyframes,
clips or edits) is the user's decision, not a migration's. Remove the extra rows, then upgrade.

On PostgreSQL a ``scenes`` table that holds rows gets the index with CREATE INDEX CONCURRENTLY
outside the migration's transaction, under the migration lock (``vidpipe.db.index_builds``), so
the application keeps writing scenes while it is built; the duplicate scan runs just before.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import drop_index, ensure_unique_index

revision: str = "vidpipe_0005"
down_revision: str | Sequence[str] | None = "vidpipe_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

metadata = sa.MetaData()
scenes = sa.Table(
    "scenes",
    metadata,
    sa.Column("project_id", sa.Uuid()),
    sa.Column("scene_index", sa.Integer()),
)
UNIQUE_SCENE = sa.Index(
    "uq_scenes_project_id_scene_index", scenes.c.project_id, scenes.c.scene_index, unique=True
)


def upgrade() -> None:
    ensure_unique_index(UNIQUE_SCENE)


def downgrade() -> None:
    drop_index("scenes", UNIQUE_SCENE.name)
