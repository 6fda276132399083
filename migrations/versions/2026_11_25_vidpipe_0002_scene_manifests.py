"""scene manifests: per-scene asset and audio manifests

Revision ID: vidpipe_0002
Revises: vidpipe_0001
Create Date: 2026-11-25

Why: manifest-aware storyboards keep, for every scene, where each registered asset appears and
what is heard. Both tables are keyed by (project_id, scene_index), the scene's identity within a
storyboard. Some databases in the field already hold them (built by ``create_all``): they are
adopted, not recreated. The downgrade drops only these two tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import drop_tables, ensure_table
from vidpipe.db.types import NAMING_CONVENTION, JSONDocument

revision: str = "vidpipe_0002"
down_revision: str | Sequence[str] | None = "vidpipe_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: squawk rules this revision accepts on PostgreSQL, and why (tests/test_squawk.py lints it).
SQUAWK_ACCEPTED = {
    "prefer-text-field": (
        "String(50) for shot type and camera movement is the seed plan's contract; the tables "
        "are new, so no existing rows are locked."
    ),
    "prefer-bigint-over-int": "scene_index and new_asset_count are small per-storyboard numbers.",
    "prefer-timestamp-tz": (
        "created_at is naive like every timestamp of the baseline tables, on every dialect."
    ),
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
# Only referenced, never created here: 0001 owns it.
sa.Table("projects", metadata, sa.Column("id", sa.Uuid(), primary_key=True))


def _scene_key() -> list[sa.Column]:
    return [
        sa.Column("project_id", sa.Uuid(), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("scene_index", sa.Integer(), primary_key=True),
    ]


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(), server_default=sa.func.now(), nullable=False)


scene_manifests = sa.Table(
    "scene_manifests",
    metadata,
    *_scene_key(),
    sa.Column("manifest_json", JSONDocument, nullable=False),
    sa.Column("composition_shot_type", sa.String(50)),
    sa.Column("composition_camera_movement", sa.String(50)),
    sa.Column("asset_tags", JSONDocument),
    sa.Column("new_asset_count", sa.Integer(), nullable=False, default=0),
    _created_at(),
)

scene_audio_manifests = sa.Table(
    "scene_audio_manifests",
    metadata,
    *_scene_key(),
    sa.Column("dialogue_json", JSONDocument),
    sa.Column("sfx_json", JSONDocument),
    sa.Column("ambient_json", JSONDocument),
    sa.Column("music_json", JSONDocument),
    sa.Column("audio_continuity_json", JSONDocument),
    sa.Column("speaker_tags", JSONDocument),
    sa.Column("has_dialogue", sa.Boolean(), nullable=False, default=False),
    sa.Column("has_music", sa.Boolean(), nullable=False, default=False),
    _created_at(),
)


def upgrade() -> None:
    ensure_table(scene_manifests)
    ensure_table(scene_audio_manifests)


def downgrade() -> None:
    drop_tables("scene_audio_manifests", "scene_manifests")
