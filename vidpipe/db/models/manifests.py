"""Manifests and their assets: the reusable registry of characters, places and props."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vidpipe.db.models.base import Base, created_at, defaulted, id_column, updated_at

__all__ = ["Asset", "AssetAppearance", "AssetCleanReference", "Manifest", "ManifestSnapshot"]


class Manifest(Base):
    """A reusable registry of assets (characters, places, props) shared by projects."""

    __tablename__ = "manifests"

    id: Mapped[uuid.UUID] = id_column()
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    thumbnail_url: Mapped[str | None] = mapped_column(String(500))
    category: Mapped[str] = defaulted("CUSTOM", String(50))
    tags: Mapped[list[Any] | None]
    status: Mapped[str] = defaulted("DRAFT", String(50))
    processing_progress: Mapped[dict[str, Any] | None]
    contact_sheet_url: Mapped[str | None] = mapped_column(String(500))
    asset_count: Mapped[int] = defaulted(0)
    total_processing_cost: Mapped[float] = defaulted(0.0, Float)
    times_used: Mapped[int] = defaulted(0)
    last_used_at: Mapped[datetime | None]
    version: Mapped[int] = defaulted(1)
    parent_manifest_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("manifests.id"), index=True
    )
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    # Added by vidpipe_0006: a manifest extracted from an uploaded video (backend 270f3af).
    source_video_path: Mapped[str | None] = mapped_column(String(500))
    source_video_duration: Mapped[float | None] = mapped_column(Float)


class Asset(Base):
    """One asset of a manifest, with its reference image and detection results."""

    __tablename__ = "assets"

    id: Mapped[uuid.UUID] = id_column()
    manifest_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("manifests.id"), index=True)
    asset_type: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(Text)
    manifest_tag: Mapped[str] = mapped_column(String(50))
    user_tags: Mapped[list[Any] | None]
    reference_image_url: Mapped[str | None] = mapped_column(String(500))
    thumbnail_url: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = defaulted("uploaded", String(50))
    sort_order: Mapped[int] = defaulted(0)
    created_at: Mapped[datetime] = created_at()
    reverse_prompt: Mapped[str | None] = mapped_column(Text)
    visual_description: Mapped[str | None] = mapped_column(Text)
    detection_class: Mapped[str | None] = mapped_column(String(50))
    detection_confidence: Mapped[float | None] = mapped_column(Float)
    is_face_crop: Mapped[bool] = defaulted(False, Boolean)
    crop_bbox: Mapped[dict[str, Any] | None]
    face_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    quality_score: Mapped[float | None] = mapped_column(Float)
    source_asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id"))
    # Added by vidpipe_0006: CLIP embedding (backend dbc4c89) and where a forked project's
    # asset was inherited from (d1267bf).
    clip_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_inherited: Mapped[bool] = defaulted(False, Boolean)
    inherited_from_asset: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id"))
    inherited_from_project: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id"))


class ManifestSnapshot(Base):
    """A frozen copy of a manifest taken when a project started using it."""

    __tablename__ = "manifest_snapshots"

    id: Mapped[uuid.UUID] = id_column()
    manifest_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("manifests.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    version_at_snapshot: Mapped[int]
    snapshot_data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = created_at()


class AssetCleanReference(Base):
    """A cleaned-up reference image of an asset at one quality tier (vidpipe_0006)."""

    __tablename__ = "asset_clean_references"

    id: Mapped[uuid.UUID] = id_column()
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id"), index=True)
    tier: Mapped[str] = mapped_column(String(20))
    clean_image_url: Mapped[str] = mapped_column(String(500))
    generation_prompt: Mapped[str | None] = mapped_column(Text)
    face_similarity_score: Mapped[float | None] = mapped_column(Float)
    quality_score: Mapped[float | None] = mapped_column(Float)
    is_primary: Mapped[bool] = defaulted(False, Boolean)
    generation_cost: Mapped[float] = defaulted(0.0, Float)
    created_at: Mapped[datetime] = created_at()


class AssetAppearance(Base):
    """Where computer vision found an asset in a generated scene's frames (vidpipe_0006)."""

    __tablename__ = "asset_appearances"

    id: Mapped[uuid.UUID] = id_column()
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assets.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    scene_index: Mapped[int]
    frame_index: Mapped[int]
    timestamp_sec: Mapped[float | None] = mapped_column(Float)
    bbox: Mapped[list[Any] | None]
    confidence: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = created_at()
