"""The backend's users and their settings (one user today: the seeded default user).

``UserSettings`` holds three API keys in plain text, as the backend stores them:
``vertex_api_key``, ``comfyui_api_key`` and ``ollama_api_key`` (:data:`SECRET_COLUMNS`). Nothing
in vidpipe prints their values; protect the database file like the keys themselves.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vidpipe.db.models.base import Base, created_at, defaulted, id_column, updated_at

__all__ = ["SECRET_COLUMNS", "User", "UserSettings"]

#: Columns holding credentials in plain text, as (table, column).
SECRET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("user_settings", "vertex_api_key"),
    ("user_settings", "comfyui_api_key"),
    ("user_settings", "ollama_api_key"),
)


class User(Base):
    """A user of the backend; it seeds one with id ``...0001`` and name ``default``."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = id_column()
    name: Mapped[str] = defaulted("default", String(100))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class UserSettings(Base):
    """A user's enabled models, defaults and provider credentials (one row per user)."""

    __tablename__ = "user_settings"

    id: Mapped[uuid.UUID] = id_column()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), unique=True, index=True)
    enabled_text_models: Mapped[list[Any] | None]
    enabled_image_models: Mapped[list[Any] | None]
    enabled_video_models: Mapped[list[Any] | None]
    default_text_model: Mapped[str | None] = mapped_column(String(100))
    default_image_model: Mapped[str | None] = mapped_column(String(100))
    default_video_model: Mapped[str | None] = mapped_column(String(100))
    gcp_project_id: Mapped[str | None] = mapped_column(String(200))
    gcp_location: Mapped[str | None] = mapped_column(String(100))
    vertex_api_key: Mapped[str | None] = mapped_column(Text)  # plain text: SECRET_COLUMNS
    comfyui_host: Mapped[str | None] = mapped_column(String(500))
    comfyui_api_key: Mapped[str | None] = mapped_column(Text)  # plain text: SECRET_COLUMNS
    comfyui_cost_per_second: Mapped[float | None] = mapped_column(Float)
    ollama_use_cloud: Mapped[bool] = defaulted(False, Boolean)
    ollama_api_key: Mapped[str | None] = mapped_column(Text)  # plain text: SECRET_COLUMNS
    ollama_endpoint: Mapped[str | None] = mapped_column(String(500))
    ollama_models: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
