"""Every table of the vidpipe database, as SQLAlchemy declarative models.

Importing this module has no side effects: no engine, no configuration, no database.
The tables mirror the Alembic revisions exactly (``alembic check`` finds nothing); the eight
baseline tables are column for column those of the databases already in the field.
Python-side defaults are the ones the old backend applied on insert and applications rely on.
"""

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vidpipe.db.types import NAMING_CONVENTION, JSONDocument


class Base(DeclarativeBase):
    """Declarative base whose MetaData names every constraint predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model is mapped to a Table (SQLAlchemy types __table__ as any FromClause): saying so
    # lets code use Model.__table__ where a Table is required, as SQLAlchemy's authors advise.
    __table__: ClassVar[Table]
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        uuid.UUID: Uuid(),
        datetime: DateTime(),
        dict[str, Any]: JSONDocument,
        list[Any]: JSONDocument,
    }


#: The MetaData holding every vidpipe table (what env.py and host applications target).
metadata = Base.metadata


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=uuid.uuid4)


def _created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now(), onupdate=func.now())


#: ``Index.info`` key naming the only dialect an index exists on; ``vidpipe.db.environment``
#: hides such indexes from autogenerate on every other dialect.
ONLY_ON_DIALECT = "vidpipe_only_on_dialect"


def _gin_tag_index(table: str, column: str) -> Index:
    """A PostgreSQL GIN index on a JSONB array of tags, answering ``column @> '["TAG"]'``.

    ``jsonb_path_ops`` is smaller and faster than the default ``jsonb_ops`` and serves ``@>``,
    the only operator the look-ups use. Other dialects have no GIN (and MariaDB cannot index a
    JSON column at all), so the index exists only on PostgreSQL: ``ddl_if`` keeps
    ``create_all`` from emitting it elsewhere, the info key keeps autogenerate from asking.
    """
    index = Index(
        f"ix_{table}_{column}",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "jsonb_path_ops"},
        info={ONLY_ON_DIALECT: "postgresql"},
    )
    return index.ddl_if(dialect="postgresql")


class Manifest(Base):
    """A reusable registry of assets (characters, places, props) shared by projects."""

    __tablename__ = "manifests"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    thumbnail_url: Mapped[str | None] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(50), default="CUSTOM")
    tags: Mapped[list[Any] | None]
    status: Mapped[str] = mapped_column(String(50), default="DRAFT")
    processing_progress: Mapped[dict[str, Any] | None]
    contact_sheet_url: Mapped[str | None] = mapped_column(String(500))
    asset_count: Mapped[int] = mapped_column(default=0)
    total_processing_cost: Mapped[float] = mapped_column(Float, default=0.0)
    times_used: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    parent_manifest_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("manifests.id"), index=True
    )
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Asset(Base):
    """One asset of a manifest, with its reference image and detection results."""

    __tablename__ = "assets"

    id: Mapped[uuid.UUID] = _id()
    manifest_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("manifests.id"), index=True)
    asset_type: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(Text)
    manifest_tag: Mapped[str] = mapped_column(String(50))
    user_tags: Mapped[list[Any] | None]
    reference_image_url: Mapped[str | None] = mapped_column(String(500))
    thumbnail_url: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(50), default="uploaded")
    sort_order: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = _created_at()
    reverse_prompt: Mapped[str | None] = mapped_column(Text)
    visual_description: Mapped[str | None] = mapped_column(Text)
    detection_class: Mapped[str | None] = mapped_column(String(50))
    detection_confidence: Mapped[float | None] = mapped_column(Float)
    is_face_crop: Mapped[bool] = mapped_column(Boolean, default=False)
    crop_bbox: Mapped[dict[str, Any] | None]
    face_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    quality_score: Mapped[float | None] = mapped_column(Float)
    source_asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id"))


class Project(Base):
    """One video: the prompt, the generation settings and the storyboard Gemini wrote."""

    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = _id()
    prompt: Mapped[str] = mapped_column(Text)
    style: Mapped[str] = mapped_column(String(50))
    aspect_ratio: Mapped[str] = mapped_column(String(10))
    target_clip_duration: Mapped[int]
    target_scene_count: Mapped[int] = mapped_column(default=3)
    total_duration: Mapped[int | None]
    text_model: Mapped[str | None] = mapped_column(String(100))
    image_model: Mapped[str | None] = mapped_column(String(100))
    video_model: Mapped[str | None] = mapped_column(String(100))
    audio_enabled: Mapped[bool | None] = mapped_column(Boolean)
    seed: Mapped[int | None]
    forked_from_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id"))
    manifest_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("manifests.id"), index=True)
    manifest_version: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(50))
    style_guide: Mapped[dict[str, Any] | None]
    storyboard_raw: Mapped[dict[str, Any] | None]
    output_path: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    # Added by vidpipe_0004 (nullable, at the end: a plain ADD COLUMN on a table in use).
    # The storyboard's characters, and which schema it was written with ("base" for
    # StoryboardOutput, "enhanced" for EnhancedStoryboardOutput): vidpipe.db.store reads both.
    characters: Mapped[list[Any] | None]
    storyboard_kind: Mapped[str | None] = mapped_column(String(20))


class ManifestSnapshot(Base):
    """A frozen copy of a manifest taken when a project started using it."""

    __tablename__ = "manifest_snapshots"

    id: Mapped[uuid.UUID] = _id()
    manifest_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("manifests.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    version_at_snapshot: Mapped[int]
    snapshot_data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = _created_at()


class Scene(Base):
    """One scene of a project's storyboard, with the prompts that render it."""

    __tablename__ = "scenes"
    # vidpipe_0005: one row per scene of a project, whoever writes it.
    __table_args__ = (
        Index("uq_scenes_project_id_scene_index", "project_id", "scene_index", unique=True),
    )

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    scene_index: Mapped[int]
    scene_description: Mapped[str] = mapped_column(Text)
    start_frame_prompt: Mapped[str] = mapped_column(Text)
    end_frame_prompt: Mapped[str] = mapped_column(Text)
    video_motion_prompt: Mapped[str] = mapped_column(Text)
    transition_notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(50))
    # Added by vidpipe_0004; NULL for scenes stored before it (their key details were never kept).
    key_details: Mapped[list[Any] | None]


class PipelineRun(Base):
    """One run of the generation pipeline over a project, with its cost and log."""

    __tablename__ = "pipeline_runs"

    id: Mapped[uuid.UUID] = _id()
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    completed_at: Mapped[datetime | None]
    total_duration_seconds: Mapped[float | None] = mapped_column(Float)
    total_api_cost_estimate: Mapped[float | None] = mapped_column(Float)
    log: Mapped[list[Any] | None]


class Keyframe(Base):
    """A generated first or last frame of a scene."""

    __tablename__ = "keyframes"

    id: Mapped[uuid.UUID] = _id()
    scene_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenes.id"), index=True)
    position: Mapped[str] = mapped_column(String(10))
    prompt_used: Mapped[str] = mapped_column(Text)
    file_path: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = _created_at()


class VideoClip(Base):
    """A generated video clip of a scene and the state of its generation job."""

    __tablename__ = "video_clips"

    id: Mapped[uuid.UUID] = _id()
    scene_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenes.id"), index=True)
    operation_name: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(20), default="generated")
    status: Mapped[str] = mapped_column(String(50))
    gcs_uri: Mapped[str | None] = mapped_column(String(500))
    local_path: Mapped[str | None] = mapped_column(String(255))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    poll_count: Mapped[int] = mapped_column(default=0)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    completed_at: Mapped[datetime | None]
    veo_submission_count: Mapped[int] = mapped_column(default=0)
    safety_regen_count: Mapped[int] = mapped_column(default=0)


class SceneManifest(Base):
    """Per-scene asset placement manifest with composition metadata.

    ``manifest_json`` holds the whole ``SceneManifestSchema`` dump; the other columns are
    denormalised from it so the pipeline can query by shot, camera or asset tag.
    """

    __tablename__ = "scene_manifests"
    __table_args__ = (_gin_tag_index("scene_manifests", "asset_tags"),)

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    scene_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    manifest_json: Mapped[dict[str, Any]]
    composition_shot_type: Mapped[str | None] = mapped_column(String(50))
    composition_camera_movement: Mapped[str | None] = mapped_column(String(50))
    asset_tags: Mapped[list[Any] | None]
    new_asset_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created_at()


class SceneAudioManifest(Base):
    """Per-scene audio direction manifest with dialogue, SFX, ambient, and music."""

    __tablename__ = "scene_audio_manifests"
    __table_args__ = (_gin_tag_index("scene_audio_manifests", "speaker_tags"),)

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    scene_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    dialogue_json: Mapped[list[Any] | None]
    sfx_json: Mapped[list[Any] | None]
    ambient_json: Mapped[dict[str, Any] | None]
    music_json: Mapped[dict[str, Any] | None]
    audio_continuity_json: Mapped[dict[str, Any] | None]
    speaker_tags: Mapped[list[Any] | None]
    has_dialogue: Mapped[bool] = mapped_column(Boolean, default=False)
    has_music: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created_at()
