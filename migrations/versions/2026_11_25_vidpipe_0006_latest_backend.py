"""latest backend: the tables and columns vidpipe's backend added after the seed plan

Revision ID: vidpipe_0006
Revises: vidpipe_0005
Create Date: 2026-11-25

Why: the backend went on after phase 7 (hoyack/video-pipeline ef91354) to 57b538c of
2026-02-21, adding six tables (``asset_clean_references``, ``asset_appearances``,
``generation_candidates``, ``users``, ``user_settings``, ``project_checkpoints``) and nineteen
columns on ``manifests``, ``assets``, ``projects``, ``scene_manifests`` and ``video_clips``. Its
files are in the field, and it must be able to run on a database this history built.

- Every table and column is spelled out as the backend's models declare it; files the backend
  wrote are adopted (loosely typed ALTER columns normalised, missing columns added).
- The backend inserts some rows with raw SQL (its default-user seed) and relies on Python-side
  defaults there, which fails on its own fresh files. Every NOT NULL column that had only a
  Python default gets the same value as its SQL default, on the new and on the existing
  tables. On SQLite that rebuilds the six existing tables concerned (batch mode: move and copy,
  every value kept); PostgreSQL and MariaDB only change the catalog. ``id`` columns get none:
  every raw INSERT of the backend supplies its ids, and SQL has no portable uuid4.
- Foreign keys that an ``ADD COLUMN`` on SQLite left out (``projects.forked_from_id`` and
  ``manifest_id`` on a file that never ran the backend's ALTERs) are added.

The downgrade drops the six tables and the nineteen columns and removes the SQL defaults (a
rebuild of those tables again on SQLite). It keeps the repaired foreign keys, which the previous
revisions declare too.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import (
    drop_columns,
    drop_referencing_columns,
    drop_server_defaults,
    drop_tables,
    ensure_table,
    ensure_table_columns,
)
from vidpipe.db.types import NAMING_CONVENTION, JSONDocument, server_default

revision: str = "vidpipe_0006"
down_revision: str | Sequence[str] | None = "vidpipe_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: squawk rules this revision accepts on PostgreSQL, and why (tests/test_squawk.py lints it).
SQUAWK_ACCEPTED = {
    "prefer-text-field": (
        "VARCHAR(n) lengths are the backend's declarations, the same on every dialect; the new "
        "tables are empty and the new columns nullable."
    ),
    "prefer-bigint-over-int": "Indexes, counts and candidate numbers are small numbers.",
    "prefer-timestamp-tz": "Timestamps are naive like every timestamp of the earlier tables.",
    "constraint-missing-not-valid": (
        "The foreign keys are on columns added just before, holding only NULL: validating them "
        "reads assets once and finds nothing to check."
    ),
    "adding-foreign-key-constraint": (
        "The referencing columns are added in the same statement batch and hold only NULL, so "
        "validating the key scans nothing."
    ),
    "adding-field-with-default": (
        "The defaults are constants: PostgreSQL 11 and later store them in the catalog without "
        "rewriting the table."
    ),
    "adding-not-nullable-field": (
        "Each NOT NULL column added carries a constant default, which fills existing rows "
        "without a rewrite on PostgreSQL 11 and later."
    ),
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _fk(name: str, target: str, *, nullable: bool, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.Uuid(), sa.ForeignKey(target), nullable=nullable, index=index)


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(), server_default=sa.func.now(), nullable=False)


def _defaulted(name: str, type_: sa.types.TypeEngine, value: bool | int | float | str) -> sa.Column:
    return sa.Column(
        name, type_, nullable=False, default=value, server_default=server_default(value)
    )


# Only referenced, never created here: 0001 owns it.
sa.Table("scenes", metadata, sa.Column("id", sa.Uuid(), primary_key=True))

# The existing tables, whole, as they are after this revision: the shape adopted files are
# brought to, and what SQLite rebuilds (offline too, where nothing can be reflected).
manifests = sa.Table(
    "manifests",
    metadata,
    _id(),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("thumbnail_url", sa.String(500)),
    _defaulted("category", sa.String(50), "CUSTOM"),
    sa.Column("tags", JSONDocument),
    _defaulted("status", sa.String(50), "DRAFT"),
    sa.Column("processing_progress", JSONDocument),
    sa.Column("contact_sheet_url", sa.String(500)),
    _defaulted("asset_count", sa.Integer(), 0),
    _defaulted("total_processing_cost", sa.Float(), 0.0),
    _defaulted("times_used", sa.Integer(), 0),
    sa.Column("last_used_at", sa.DateTime()),
    _defaulted("version", sa.Integer(), 1),
    _fk("parent_manifest_id", "manifests.id", nullable=True, index=True),
    sa.Column("deleted_at", sa.DateTime()),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    sa.Column("source_video_path", sa.String(500)),
    sa.Column("source_video_duration", sa.Float()),
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
    _defaulted("source", sa.String(50), "uploaded"),
    _defaulted("sort_order", sa.Integer(), 0),
    _timestamp("created_at"),
    sa.Column("reverse_prompt", sa.Text()),
    sa.Column("visual_description", sa.Text()),
    sa.Column("detection_class", sa.String(50)),
    sa.Column("detection_confidence", sa.Float()),
    _defaulted("is_face_crop", sa.Boolean(), False),
    sa.Column("crop_bbox", JSONDocument),
    sa.Column("face_embedding", sa.LargeBinary()),
    sa.Column("quality_score", sa.Float()),
    _fk("source_asset_id", "assets.id", nullable=True),
    sa.Column("clip_embedding", sa.LargeBinary()),
    _defaulted("is_inherited", sa.Boolean(), False),
    _fk("inherited_from_asset", "assets.id", nullable=True),
    _fk("inherited_from_project", "projects.id", nullable=True),
)

projects = sa.Table(
    "projects",
    metadata,
    _id(),
    sa.Column("prompt", sa.Text(), nullable=False),
    sa.Column("style", sa.String(50), nullable=False),
    sa.Column("aspect_ratio", sa.String(10), nullable=False),
    sa.Column("target_clip_duration", sa.Integer(), nullable=False),
    _defaulted("target_scene_count", sa.Integer(), 3),
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
    sa.Column("characters", JSONDocument),  # vidpipe_0004's
    sa.Column("storyboard_kind", sa.String(20)),  # vidpipe_0004's
    _defaulted("quality_mode", sa.Boolean(), False),
    _defaulted("candidate_count", sa.Integer(), 1),
    sa.Column("vision_model", sa.String(100)),
    sa.Column("deleted_at", sa.DateTime()),
    sa.Column("title", sa.String(200)),
    sa.Column("run_through", sa.String(20)),
    sa.Column("head_sha", sa.String(40)),
)

video_clips = sa.Table(
    "video_clips",
    metadata,
    _id(),
    _fk("scene_id", "scenes.id", nullable=False, index=True),
    sa.Column("operation_name", sa.String(255)),
    _defaulted("source", sa.String(20), "generated"),
    sa.Column("status", sa.String(50), nullable=False),
    sa.Column("gcs_uri", sa.String(500)),
    sa.Column("local_path", sa.String(255)),
    sa.Column("duration_seconds", sa.Float()),
    _defaulted("poll_count", sa.Integer(), 0),
    sa.Column("error_message", sa.Text()),
    _timestamp("created_at"),
    sa.Column("completed_at", sa.DateTime()),
    _defaulted("veo_submission_count", sa.Integer(), 0),
    _defaulted("safety_regen_count", sa.Integer(), 0),
    sa.Column("prompt_used", sa.Text()),
)


def _scene_key() -> list[sa.Column]:
    return [
        sa.Column("project_id", sa.Uuid(), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("scene_index", sa.Integer(), primary_key=True),
    ]


scene_manifests = sa.Table(
    "scene_manifests",
    metadata,
    *_scene_key(),
    sa.Column("manifest_json", JSONDocument, nullable=False),
    sa.Column("composition_shot_type", sa.String(50)),
    sa.Column("composition_camera_movement", sa.String(50)),
    sa.Column("asset_tags", JSONDocument),
    _defaulted("new_asset_count", sa.Integer(), 0),
    _timestamp("created_at"),
    sa.Column("selected_reference_tags", JSONDocument),
    sa.Column("cv_analysis_json", JSONDocument),
    sa.Column("continuity_score", sa.Float()),
    sa.Column("rewritten_keyframe_prompt", sa.Text()),
    sa.Column("rewritten_video_prompt", sa.Text()),
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
    _defaulted("has_dialogue", sa.Boolean(), False),
    _defaulted("has_music", sa.Boolean(), False),
    _timestamp("created_at"),
)

#: The columns this revision adds, per existing table (what the downgrade drops).
ADDED: dict[str, tuple[str, ...]] = {
    "manifests": ("source_video_path", "source_video_duration"),
    "projects": (
        "quality_mode",
        "candidate_count",
        "vision_model",
        "deleted_at",
        "title",
        "run_through",
        "head_sha",
    ),
    "assets": ("clip_embedding", "is_inherited", "inherited_from_asset", "inherited_from_project"),
    "video_clips": ("prompt_used",),
    "scene_manifests": (
        "selected_reference_tags",
        "cv_analysis_json",
        "continuity_score",
        "rewritten_keyframe_prompt",
        "rewritten_video_prompt",
    ),
    "scene_audio_manifests": (),
}
#: The columns this revision gives a constant SQL default (what the downgrade removes).
DEFAULTED: dict[str, tuple[str, ...]] = {
    "manifests": (
        "category",
        "status",
        "asset_count",
        "total_processing_cost",
        "times_used",
        "version",
    ),
    "projects": ("target_scene_count", "quality_mode", "candidate_count"),
    "assets": ("source", "sort_order", "is_face_crop", "is_inherited"),
    "video_clips": ("source", "poll_count", "veo_submission_count", "safety_regen_count"),
    "scene_manifests": ("new_asset_count",),
    "scene_audio_manifests": ("has_dialogue", "has_music"),
}
#: Added columns under a foreign key: dropped by a rebuild on SQLite.
REFERENCING = {"assets": ("inherited_from_asset", "inherited_from_project")}

# The new tables, whole.
asset_clean_references = sa.Table(
    "asset_clean_references",
    metadata,
    _id(),
    _fk("asset_id", "assets.id", nullable=False, index=True),
    sa.Column("tier", sa.String(20), nullable=False),
    sa.Column("clean_image_url", sa.String(500), nullable=False),
    sa.Column("generation_prompt", sa.Text()),
    sa.Column("face_similarity_score", sa.Float()),
    sa.Column("quality_score", sa.Float()),
    _defaulted("is_primary", sa.Boolean(), False),
    _defaulted("generation_cost", sa.Float(), 0.0),
    _timestamp("created_at"),
)

asset_appearances = sa.Table(
    "asset_appearances",
    metadata,
    _id(),
    _fk("asset_id", "assets.id", nullable=False, index=True),
    _fk("project_id", "projects.id", nullable=False, index=True),
    sa.Column("scene_index", sa.Integer(), nullable=False),
    sa.Column("frame_index", sa.Integer(), nullable=False),
    sa.Column("timestamp_sec", sa.Float()),
    sa.Column("bbox", JSONDocument),
    sa.Column("confidence", sa.Float(), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    _timestamp("created_at"),
)

generation_candidates = sa.Table(
    "generation_candidates",
    metadata,
    _id(),
    _fk("project_id", "projects.id", nullable=False, index=True),
    sa.Column("scene_index", sa.Integer(), nullable=False),
    sa.Column("candidate_number", sa.Integer(), nullable=False),
    sa.Column("local_path", sa.String(255)),
    sa.Column("thumbnail_path", sa.String(255)),
    sa.Column("manifest_adherence_score", sa.Float()),
    sa.Column("visual_quality_score", sa.Float()),
    sa.Column("continuity_score", sa.Float()),
    sa.Column("prompt_adherence_score", sa.Float()),
    sa.Column("composite_score", sa.Float()),
    sa.Column("scoring_details", JSONDocument),
    _defaulted("is_selected", sa.Boolean(), False),
    _defaulted("selected_by", sa.String(20), "auto"),
    _defaulted("generation_cost", sa.Float(), 0.0),
    _defaulted("scoring_cost", sa.Float(), 0.0),
    _timestamp("created_at"),
    sa.Index("idx_candidates_project_scene", "project_id", "scene_index"),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    _defaulted("name", sa.String(100), "default"),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

user_settings = sa.Table(
    "user_settings",
    metadata,
    _id(),
    # The backend's one-settings-row-per-user is this unique index, not a table constraint.
    sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("enabled_text_models", JSONDocument),
    sa.Column("enabled_image_models", JSONDocument),
    sa.Column("enabled_video_models", JSONDocument),
    sa.Column("default_text_model", sa.String(100)),
    sa.Column("default_image_model", sa.String(100)),
    sa.Column("default_video_model", sa.String(100)),
    sa.Column("gcp_project_id", sa.String(200)),
    sa.Column("gcp_location", sa.String(100)),
    sa.Column("vertex_api_key", sa.Text()),  # plain text, as the backend stores it
    sa.Column("comfyui_host", sa.String(500)),
    sa.Column("comfyui_api_key", sa.Text()),  # plain text, as the backend stores it
    sa.Column("comfyui_cost_per_second", sa.Float()),
    _defaulted("ollama_use_cloud", sa.Boolean(), False),
    sa.Column("ollama_api_key", sa.Text()),  # plain text, as the backend stores it
    sa.Column("ollama_endpoint", sa.String(500)),
    sa.Column("ollama_models", JSONDocument),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    sa.Index("ix_user_settings_user_id", "user_id", unique=True),
)

project_checkpoints = sa.Table(
    "project_checkpoints",
    metadata,
    _id(),
    _fk("project_id", "projects.id", nullable=False, index=True),
    sa.Column("sha", sa.String(40), nullable=False),
    sa.Column("parent_sha", sa.String(40)),
    sa.Column("snapshot_data", JSONDocument, nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("metadata_json", JSONDocument),
    _timestamp("created_at"),
    sa.UniqueConstraint("project_id", "sha", name="uq_checkpoint_project_sha"),
    sa.Index("idx_checkpoint_project_created", "project_id", "created_at"),
)

NEW_TABLES = (
    asset_clean_references,
    asset_appearances,
    generation_candidates,
    users,
    user_settings,
    project_checkpoints,
)


EXISTING_TABLES = (
    manifests,
    projects,
    assets,
    video_clips,
    scene_manifests,
    scene_audio_manifests,
)


def upgrade() -> None:
    for table in EXISTING_TABLES:
        ensure_table_columns(table, ADDED[table.name])
    for table in NEW_TABLES:
        ensure_table(table)


def downgrade() -> None:
    drop_tables(*(table.name for table in reversed(NEW_TABLES)))
    for table in EXISTING_TABLES:
        added = ADDED[table.name]
        referencing = REFERENCING.get(table.name, ())
        drop_referencing_columns(table.name, *referencing)
        drop_columns(table.name, *(name for name in added if name not in referencing))
        drop_server_defaults(table, *(c for c in DEFAULTED[table.name] if c not in added))
