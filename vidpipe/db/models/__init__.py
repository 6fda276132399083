"""Every table of the vidpipe database, as SQLAlchemy declarative models, split by area.

Importing this package has no side effects: no engine, no configuration, no database.
The tables mirror the Alembic revisions exactly (``alembic check`` finds nothing); the eight
baseline tables are column for column those of the databases already in the field, the rest
those of the backend's latest version (hoyack/video-pipeline 57b538c). Python-side defaults are
the ones the backend applies on insert; the NOT NULL ones are SQL defaults too, because the
backend also inserts with raw SQL.
"""

from vidpipe.db.models.base import ONLY_ON_DIALECT, Base, metadata
from vidpipe.db.models.manifests import (
    Asset,
    AssetAppearance,
    AssetCleanReference,
    Manifest,
    ManifestSnapshot,
)
from vidpipe.db.models.projects import (
    GenerationCandidate,
    PipelineRun,
    Project,
    ProjectCheckpoint,
)
from vidpipe.db.models.scenes import (
    Keyframe,
    Scene,
    SceneAudioManifest,
    SceneManifest,
    VideoClip,
)
from vidpipe.db.models.users import SECRET_COLUMNS, User, UserSettings

__all__ = [
    "ONLY_ON_DIALECT",
    "SECRET_COLUMNS",
    "Asset",
    "AssetAppearance",
    "AssetCleanReference",
    "Base",
    "GenerationCandidate",
    "Keyframe",
    "Manifest",
    "ManifestSnapshot",
    "PipelineRun",
    "Project",
    "ProjectCheckpoint",
    "Scene",
    "SceneAudioManifest",
    "SceneManifest",
    "User",
    "UserSettings",
    "VideoClip",
    "metadata",
]
