"""A storyboard's scenes, what was generated for each, and their per-scene manifests."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vidpipe.db.models.base import Base, created_at, defaulted, gin_tag_index, id_column

__all__ = ["Keyframe", "Scene", "SceneAudioManifest", "SceneManifest", "VideoClip"]


class Scene(Base):
    """One scene of a project's storyboard, with the prompts that render it."""

    __tablename__ = "scenes"
    # vidpipe_0005: one row per scene of a project, whoever writes it.
    __table_args__ = (
        Index("uq_scenes_project_id_scene_index", "project_id", "scene_index", unique=True),
    )

    id: Mapped[uuid.UUID] = id_column()
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


class Keyframe(Base):
    """A generated first or last frame of a scene."""

    __tablename__ = "keyframes"

    id: Mapped[uuid.UUID] = id_column()
    scene_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenes.id"), index=True)
    position: Mapped[str] = mapped_column(String(10))
    prompt_used: Mapped[str] = mapped_column(Text)
    file_path: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = created_at()


class VideoClip(Base):
    """A generated video clip of a scene and the state of its generation job."""

    __tablename__ = "video_clips"

    id: Mapped[uuid.UUID] = id_column()
    scene_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenes.id"), index=True)
    operation_name: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = defaulted("generated", String(20))
    status: Mapped[str] = mapped_column(String(50))
    gcs_uri: Mapped[str | None] = mapped_column(String(500))
    local_path: Mapped[str | None] = mapped_column(String(255))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    poll_count: Mapped[int] = defaulted(0)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    completed_at: Mapped[datetime | None]
    veo_submission_count: Mapped[int] = defaulted(0)
    safety_regen_count: Mapped[int] = defaulted(0)
    # Added by vidpipe_0006: the prompt the clip was generated from (backend 57b538c).
    prompt_used: Mapped[str | None] = mapped_column(Text)


class SceneManifest(Base):
    """Per-scene asset placement manifest with composition metadata.

    ``manifest_json`` holds the whole ``SceneManifestSchema`` dump; the other columns are
    denormalised from it so the pipeline can query by shot, camera or asset tag.
    """

    __tablename__ = "scene_manifests"
    __table_args__ = (gin_tag_index("scene_manifests", "asset_tags"),)

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    scene_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    manifest_json: Mapped[dict[str, Any]]
    composition_shot_type: Mapped[str | None] = mapped_column(String(50))
    composition_camera_movement: Mapped[str | None] = mapped_column(String(50))
    asset_tags: Mapped[list[Any] | None]
    new_asset_count: Mapped[int] = defaulted(0, Integer)
    created_at: Mapped[datetime] = created_at()
    # Added by vidpipe_0006: reference images chosen for the scene (backend 4a88890), computer
    # vision results (dbc4c89) and the prompts rewritten from them (f0762e0).
    selected_reference_tags: Mapped[list[Any] | None]
    cv_analysis_json: Mapped[dict[str, Any] | None]
    continuity_score: Mapped[float | None] = mapped_column(Float)
    rewritten_keyframe_prompt: Mapped[str | None] = mapped_column(Text)
    rewritten_video_prompt: Mapped[str | None] = mapped_column(Text)


class SceneAudioManifest(Base):
    """Per-scene audio direction manifest with dialogue, SFX, ambient, and music."""

    __tablename__ = "scene_audio_manifests"
    __table_args__ = (gin_tag_index("scene_audio_manifests", "speaker_tags"),)

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    scene_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    dialogue_json: Mapped[list[Any] | None]
    sfx_json: Mapped[list[Any] | None]
    ambient_json: Mapped[dict[str, Any] | None]
    music_json: Mapped[dict[str, Any] | None]
    audio_continuity_json: Mapped[dict[str, Any] | None]
    speaker_tags: Mapped[list[Any] | None]
    has_dialogue: Mapped[bool] = defaulted(False, Boolean)
    has_music: Mapped[bool] = defaulted(False, Boolean)
    created_at: Mapped[datetime] = created_at()
