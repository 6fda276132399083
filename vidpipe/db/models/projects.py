"""Projects: one video each, with its runs, generation candidates and checkpoints."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from vidpipe.db.models.base import Base, created_at, defaulted, id_column, updated_at

__all__ = ["GenerationCandidate", "PipelineRun", "Project", "ProjectCheckpoint"]


class Project(Base):
    """One video: the prompt, the generation settings and the storyboard Gemini wrote."""

    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = id_column()
    prompt: Mapped[str] = mapped_column(Text)
    style: Mapped[str] = mapped_column(String(50))
    aspect_ratio: Mapped[str] = mapped_column(String(10))
    target_clip_duration: Mapped[int]
    target_scene_count: Mapped[int] = defaulted(3)
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
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    # Added by vidpipe_0004 (nullable, at the end: a plain ADD COLUMN on a table in use).
    # The storyboard's characters, and which schema it was written with ("base" for
    # StoryboardOutput, "enhanced" for EnhancedStoryboardOutput): vidpipe.db.store reads both.
    characters: Mapped[list[Any] | None]
    storyboard_kind: Mapped[str | None] = mapped_column(String(20))
    # Added by vidpipe_0006: the backend's quality mode (1ea06db), vision model (78f1899),
    # soft delete (0f8c5bd), title and run-through stop (87f26fb), checkpoint head (57b538c).
    quality_mode: Mapped[bool] = defaulted(False, Boolean)
    candidate_count: Mapped[int] = defaulted(1)
    vision_model: Mapped[str | None] = mapped_column(String(100))
    deleted_at: Mapped[datetime | None]
    title: Mapped[str | None] = mapped_column(String(200))
    run_through: Mapped[str | None] = mapped_column(String(20))
    head_sha: Mapped[str | None] = mapped_column(String(40))


class PipelineRun(Base):
    """One run of the generation pipeline over a project, with its cost and log."""

    __tablename__ = "pipeline_runs"

    id: Mapped[uuid.UUID] = id_column()
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    completed_at: Mapped[datetime | None]
    total_duration_seconds: Mapped[float | None] = mapped_column(Float)
    total_api_cost_estimate: Mapped[float | None] = mapped_column(Float)
    log: Mapped[list[Any] | None]


class GenerationCandidate(Base):
    """One of several clips generated for a scene in quality mode, with its scores."""

    __tablename__ = "generation_candidates"
    __table_args__ = (Index("idx_candidates_project_scene", "project_id", "scene_index"),)

    id: Mapped[uuid.UUID] = id_column()
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    scene_index: Mapped[int]
    candidate_number: Mapped[int]
    local_path: Mapped[str | None] = mapped_column(String(255))
    thumbnail_path: Mapped[str | None] = mapped_column(String(255))
    manifest_adherence_score: Mapped[float | None] = mapped_column(Float)
    visual_quality_score: Mapped[float | None] = mapped_column(Float)
    continuity_score: Mapped[float | None] = mapped_column(Float)
    prompt_adherence_score: Mapped[float | None] = mapped_column(Float)
    composite_score: Mapped[float | None] = mapped_column(Float)
    scoring_details: Mapped[dict[str, Any] | None]
    is_selected: Mapped[bool] = defaulted(False, Boolean)
    selected_by: Mapped[str] = defaulted("auto", String(20))
    generation_cost: Mapped[float] = defaulted(0.0, Float)
    scoring_cost: Mapped[float] = defaulted(0.0, Float)
    created_at: Mapped[datetime] = created_at()


class ProjectCheckpoint(Base):
    """A saved state of a project in the editor, addressed by its SHA, like a commit."""

    __tablename__ = "project_checkpoints"
    __table_args__ = (
        UniqueConstraint("project_id", "sha", name="uq_checkpoint_project_sha"),
        Index("idx_checkpoint_project_created", "project_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    sha: Mapped[str] = mapped_column(String(40))
    parent_sha: Mapped[str | None] = mapped_column(String(40))
    snapshot_data: Mapped[dict[str, Any]]
    message: Mapped[str] = mapped_column(Text)
    metadata_json: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = created_at()
