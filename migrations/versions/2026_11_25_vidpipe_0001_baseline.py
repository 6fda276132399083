"""baseline: the eight tables vidpipe databases already hold

Revision ID: vidpipe_0001
Revises:
Create Date: 2026-11-25

Why: before this revision vidpipe built its schema with ``create_all`` at start-up. This
revision describes exactly that pre-manifest schema, so a fresh database gets it and an existing
one is adopted as it is: missing tables, columns and indexes are created, nothing is rewritten.
The tables are spelled out here, not imported from the models, so the revision stays frozen
when the models move on.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import drop_tables, ensure_table
from vidpipe.db.types import NAMING_CONVENTION, JSONDocument

revision: str = "vidpipe_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("vidpipe",)
depends_on: str | Sequence[str] | None = None

#: squawk rules this revision accepts on PostgreSQL, and why (tests/test_squawk.py lints it).
SQUAWK_ACCEPTED = {
    "prefer-text-field": (
        "VARCHAR(n) lengths are the contract of the databases already in the field; the rule "
        "warns that widening one later takes an ACCESS EXCLUSIVE lock, which a later revision "
        "would plan for."
    ),
    "prefer-bigint-over-int": (
        "Counters and positions (scene_index, sort_order, version, counts) stay far below 2**31; "
        "the types are those of the databases already in the field."
    ),
    "prefer-timestamp-tz": (
        "Timestamps are naive in every database already in the field (SQLite has no zoned "
        "type); zoned on PostgreSQL alone, the same row would read back differently per dialect."
    ),
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(), server_default=sa.func.now(), nullable=False)


def _fk(name: str, target: str, *, nullable: bool, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.Uuid(), sa.ForeignKey(target), nullable=nullable, index=index)


manifests = sa.Table(
    "manifests",
    metadata,
    _id(),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("thumbnail_url", sa.String(500)),
    sa.Column("category", sa.String(50), nullable=False, default="CUSTOM"),
    sa.Column("tags", JSONDocument),
    sa.Column("status", sa.String(50), nullable=False, default="DRAFT"),
    sa.Column("processing_progress", JSONDocument),
    sa.Column("contact_sheet_url", sa.String(500)),
    sa.Column("asset_count", sa.Integer(), nullable=False, default=0),
    sa.Column("total_processing_cost", sa.Float(), nullable=False, default=0.0),
    sa.Column("times_used", sa.Integer(), nullable=False, default=0),
    sa.Column("last_used_at", sa.DateTime()),
    sa.Column("version", sa.Integer(), nullable=False, default=1),
    _fk("parent_manifest_id", "manifests.id", nullable=True, index=True),
    sa.Column("deleted_at", sa.DateTime()),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

assets = sa.Table(
    "assets",
    metadata,
    _id(),
    _fk("manifest_id", "manifests.id", nullable=False, index=True),
    sa.Column("asset_type", sa.String(50), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("manifest_tag", sa.String(50), nullable=False),
    sa.Column("user_tags", JSONDocument),
    sa.Column("reference_image_url", sa.String(500)),
    sa.Column("thumbnail_url", sa.String(500)),
    sa.Column("description", sa.Text()),
    sa.Column("source", sa.String(50), nullable=False, default="uploaded"),
    sa.Column("sort_order", sa.Integer(), nullable=False, default=0),
    _timestamp("created_at"),
    sa.Column("reverse_prompt", sa.Text()),
    sa.Column("visual_description", sa.Text()),
    sa.Column("detection_class", sa.String(50)),
    sa.Column("detection_confidence", sa.Float()),
    sa.Column("is_face_crop", sa.Boolean(), nullable=False, default=False),
    sa.Column("crop_bbox", JSONDocument),
    sa.Column("face_embedding", sa.LargeBinary()),
    sa.Column("quality_score", sa.Float()),
    _fk("source_asset_id", "assets.id", nullable=True),
)

projects = sa.Table(
    "projects",
    metadata,
    _id(),
    sa.Column("prompt", sa.Text(), nullable=False),
    sa.Column("style", sa.String(50), nullable=False),
    sa.Column("aspect_ratio", sa.String(10), nullable=False),
    sa.Column("target_clip_duration", sa.Integer(), nullable=False),
    sa.Column("target_scene_count", sa.Integer(), nullable=False, default=3),
    sa.Column("total_duration", sa.Integer()),
    sa.Column("text_model", sa.String(100)),
    sa.Column("image_model", sa.String(100)),
    sa.Column("video_model", sa.String(100)),
    sa.Column("audio_enabled", sa.Boolean()),
    sa.Column("seed", sa.Integer()),
    _fk("forked_from_id", "projects.id", nullable=True),
    _fk("manifest_id", "manifests.id", nullable=True, index=True),
    sa.Column("manifest_version", sa.Integer()),
    sa.Column("status", sa.String(50), nullable=False),
    sa.Column("style_guide", JSONDocument),
    sa.Column("storyboard_raw", JSONDocument),
    sa.Column("output_path", sa.String(255)),
    sa.Column("error_message", sa.Text()),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

manifest_snapshots = sa.Table(
    "manifest_snapshots",
    metadata,
    _id(),
    _fk("manifest_id", "manifests.id", nullable=False, index=True),
    _fk("project_id", "projects.id", nullable=False, index=True),
    sa.Column("version_at_snapshot", sa.Integer(), nullable=False),
    sa.Column("snapshot_data", JSONDocument, nullable=False),
    _timestamp("created_at"),
)

scenes = sa.Table(
    "scenes",
    metadata,
    _id(),
    _fk("project_id", "projects.id", nullable=False, index=True),
    sa.Column("scene_index", sa.Integer(), nullable=False),
    sa.Column("scene_description", sa.Text(), nullable=False),
    sa.Column("start_frame_prompt", sa.Text(), nullable=False),
    sa.Column("end_frame_prompt", sa.Text(), nullable=False),
    sa.Column("video_motion_prompt", sa.Text(), nullable=False),
    sa.Column("transition_notes", sa.Text()),
    sa.Column("status", sa.String(50), nullable=False),
)

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    _id(),
    _fk("project_id", "projects.id", nullable=False, index=True),
    _timestamp("started_at"),
    sa.Column("completed_at", sa.DateTime()),
    sa.Column("total_duration_seconds", sa.Float()),
    sa.Column("total_api_cost_estimate", sa.Float()),
    sa.Column("log", JSONDocument),
)

keyframes = sa.Table(
    "keyframes",
    metadata,
    _id(),
    _fk("scene_id", "scenes.id", nullable=False, index=True),
    sa.Column("position", sa.String(10), nullable=False),
    sa.Column("prompt_used", sa.Text(), nullable=False),
    sa.Column("file_path", sa.String(255), nullable=False),
    sa.Column("mime_type", sa.String(20), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    _timestamp("created_at"),
)

video_clips = sa.Table(
    "video_clips",
    metadata,
    _id(),
    _fk("scene_id", "scenes.id", nullable=False, index=True),
    sa.Column("operation_name", sa.String(255)),
    sa.Column("source", sa.String(20), nullable=False, default="generated"),
    sa.Column("status", sa.String(50), nullable=False),
    sa.Column("gcs_uri", sa.String(500)),
    sa.Column("local_path", sa.String(255)),
    sa.Column("duration_seconds", sa.Float()),
    sa.Column("poll_count", sa.Integer(), nullable=False, default=0),
    sa.Column("error_message", sa.Text()),
    _timestamp("created_at"),
    sa.Column("completed_at", sa.DateTime()),
    sa.Column("veo_submission_count", sa.Integer(), nullable=False, default=0),
    sa.Column("safety_regen_count", sa.Integer(), nullable=False, default=0),
)


def upgrade() -> None:
    for table in metadata.sorted_tables:
        ensure_table(table)


def downgrade() -> None:
    drop_tables(*(table.name for table in reversed(metadata.sorted_tables)))
