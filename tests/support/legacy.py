"""The vidpipe databases already in the field, rebuilt from their DDL, with a row in every table.

They predate Alembic: the old backend ran ``create_all`` at start-up, then a list of
``ALTER TABLE ... ADD COLUMN`` whose errors it ignored. Each variant below is one history such
a file can have had. The DDL is written out here (not produced by vidpipe's code) so that the
adoption is tested against what the field holds, not against what this code thinks it holds.
"""

import sqlite3
from pathlib import Path

import sqlalchemy as sa

#: The tables ``create_all`` built, in creation order, exactly as SQLite got them: for each
#: table its column definitions, then its table constraints, then its indexes' columns.
PRE_MANIFEST: dict[str, tuple[list[str], list[str], list[str]]] = {
    "manifests": (
        [
            "id CHAR(32) NOT NULL",
            "name TEXT NOT NULL",
            "description TEXT",
            "thumbnail_url VARCHAR(500)",
            "category VARCHAR(50) NOT NULL",
            "tags JSON",
            "status VARCHAR(50) NOT NULL",
            "processing_progress JSON",
            "contact_sheet_url VARCHAR(500)",
            "asset_count INTEGER NOT NULL",
            "total_processing_cost FLOAT NOT NULL",
            "times_used INTEGER NOT NULL",
            "last_used_at DATETIME",
            "version INTEGER NOT NULL",
            "parent_manifest_id CHAR(32)",
            "deleted_at DATETIME",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            "updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        ],
        ["PRIMARY KEY (id)", "FOREIGN KEY(parent_manifest_id) REFERENCES manifests (id)"],
        ["parent_manifest_id"],
    ),
    "assets": (
        [
            "id CHAR(32) NOT NULL",
            "manifest_id CHAR(32) NOT NULL",
            "asset_type VARCHAR(50) NOT NULL",
            "name TEXT NOT NULL",
            "manifest_tag VARCHAR(50) NOT NULL",
            "user_tags JSON",
            "reference_image_url VARCHAR(500)",
            "thumbnail_url VARCHAR(500)",
            "description TEXT",
            "source VARCHAR(50) NOT NULL",
            "sort_order INTEGER NOT NULL",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            "reverse_prompt TEXT",
            "visual_description TEXT",
            "detection_class VARCHAR(50)",
            "detection_confidence FLOAT",
            "is_face_crop BOOLEAN NOT NULL",
            "crop_bbox JSON",
            "face_embedding BLOB",
            "quality_score FLOAT",
            "source_asset_id CHAR(32)",
        ],
        [
            "PRIMARY KEY (id)",
            "FOREIGN KEY(manifest_id) REFERENCES manifests (id)",
            "FOREIGN KEY(source_asset_id) REFERENCES assets (id)",
        ],
        ["manifest_id"],
    ),
    "projects": (
        [
            "id CHAR(32) NOT NULL",
            "prompt TEXT NOT NULL",
            "style VARCHAR(50) NOT NULL",
            "aspect_ratio VARCHAR(10) NOT NULL",
            "target_clip_duration INTEGER NOT NULL",
            "target_scene_count INTEGER NOT NULL",
            "total_duration INTEGER",
            "text_model VARCHAR(100)",
            "image_model VARCHAR(100)",
            "video_model VARCHAR(100)",
            "audio_enabled BOOLEAN",
            "seed INTEGER",
            "forked_from_id CHAR(32)",
            "manifest_id CHAR(32)",
            "manifest_version INTEGER",
            "status VARCHAR(50) NOT NULL",
            "style_guide JSON",
            "storyboard_raw JSON",
            "output_path VARCHAR(255)",
            "error_message TEXT",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            "updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        ],
        [
            "PRIMARY KEY (id)",
            "FOREIGN KEY(forked_from_id) REFERENCES projects (id)",
            "FOREIGN KEY(manifest_id) REFERENCES manifests (id)",
        ],
        ["manifest_id"],
    ),
    "manifest_snapshots": (
        [
            "id CHAR(32) NOT NULL",
            "manifest_id CHAR(32) NOT NULL",
            "project_id CHAR(32) NOT NULL",
            "version_at_snapshot INTEGER NOT NULL",
            "snapshot_data JSON NOT NULL",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        ],
        [
            "PRIMARY KEY (id)",
            "FOREIGN KEY(manifest_id) REFERENCES manifests (id)",
            "FOREIGN KEY(project_id) REFERENCES projects (id)",
        ],
        ["project_id", "manifest_id"],
    ),
    "scenes": (
        [
            "id CHAR(32) NOT NULL",
            "project_id CHAR(32) NOT NULL",
            "scene_index INTEGER NOT NULL",
            "scene_description TEXT NOT NULL",
            "start_frame_prompt TEXT NOT NULL",
            "end_frame_prompt TEXT NOT NULL",
            "video_motion_prompt TEXT NOT NULL",
            "transition_notes TEXT",
            "status VARCHAR(50) NOT NULL",
        ],
        ["PRIMARY KEY (id)", "FOREIGN KEY(project_id) REFERENCES projects (id)"],
        ["project_id"],
    ),
    "pipeline_runs": (
        [
            "id CHAR(32) NOT NULL",
            "project_id CHAR(32) NOT NULL",
            "started_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            "completed_at DATETIME",
            "total_duration_seconds FLOAT",
            "total_api_cost_estimate FLOAT",
            "log JSON",
        ],
        ["PRIMARY KEY (id)", "FOREIGN KEY(project_id) REFERENCES projects (id)"],
        ["project_id"],
    ),
    "keyframes": (
        [
            "id CHAR(32) NOT NULL",
            "scene_id CHAR(32) NOT NULL",
            "position VARCHAR(10) NOT NULL",
            "prompt_used TEXT NOT NULL",
            "file_path VARCHAR(255) NOT NULL",
            "mime_type VARCHAR(20) NOT NULL",
            "source VARCHAR(20) NOT NULL",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        ],
        ["PRIMARY KEY (id)", "FOREIGN KEY(scene_id) REFERENCES scenes (id)"],
        ["scene_id"],
    ),
    "video_clips": (
        [
            "id CHAR(32) NOT NULL",
            "scene_id CHAR(32) NOT NULL",
            "operation_name VARCHAR(255)",
            "source VARCHAR(20) NOT NULL",
            "status VARCHAR(50) NOT NULL",
            "gcs_uri VARCHAR(500)",
            "local_path VARCHAR(255)",
            "duration_seconds FLOAT",
            "poll_count INTEGER NOT NULL",
            "error_message TEXT",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            "completed_at DATETIME",
            "veo_submission_count INTEGER NOT NULL",
            "safety_regen_count INTEGER NOT NULL",
        ],
        ["PRIMARY KEY (id)", "FOREIGN KEY(scene_id) REFERENCES scenes (id)"],
        ["scene_id"],
    ),
}

#: What ``create_all`` added once the scene manifest models existed (no version table yet).
MANIFEST_TABLES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "scene_manifests": (
        [
            "project_id CHAR(32) NOT NULL",
            "scene_index INTEGER NOT NULL",
            "manifest_json JSON NOT NULL",
            "composition_shot_type VARCHAR(50)",
            "composition_camera_movement VARCHAR(50)",
            "asset_tags JSON",
            "new_asset_count INTEGER NOT NULL",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        ],
        [
            "PRIMARY KEY (project_id, scene_index)",
            "FOREIGN KEY(project_id) REFERENCES projects (id)",
        ],
        [],
    ),
    "scene_audio_manifests": (
        [
            "project_id CHAR(32) NOT NULL",
            "scene_index INTEGER NOT NULL",
            "dialogue_json JSON",
            "sfx_json JSON",
            "ambient_json JSON",
            "music_json JSON",
            "audio_continuity_json JSON",
            "speaker_tags JSON",
            "has_dialogue BOOLEAN NOT NULL",
            "has_music BOOLEAN NOT NULL",
            "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        ],
        [
            "PRIMARY KEY (project_id, scene_index)",
            "FOREIGN KEY(project_id) REFERENCES projects (id)",
        ],
        [],
    ),
}

#: Columns that only later versions of the models had; ``create_all`` never adds them.
LATE_PROJECT_COLUMNS = (
    "target_scene_count",
    "total_duration",
    "text_model",
    "image_model",
    "video_model",
    "audio_enabled",
    "seed",
)

#: The hand-run ALTERs, with their looser declarations, appended at the end of each table.
ALTERED_COLUMNS = {
    "projects": [
        "forked_from_id TEXT REFERENCES projects(id)",
        "manifest_id TEXT REFERENCES manifests(id)",
        "manifest_version INTEGER",
    ],
    "video_clips": [
        "source VARCHAR(20) DEFAULT 'generated'",
        "veo_submission_count INTEGER DEFAULT 0",
        "safety_regen_count INTEGER DEFAULT 0",
    ],
    "assets": [
        "reverse_prompt TEXT",
        "visual_description TEXT",
        "detection_class VARCHAR(50)",
        "detection_confidence REAL",
        "is_face_crop INTEGER DEFAULT 0",
        "crop_bbox TEXT",
        "face_embedding BLOB",
        "quality_score REAL",
        "source_asset_id TEXT REFERENCES assets(id)",
    ],
}

MANIFEST_ID = "6f1c0d6b0e7a4a8c9a3e2b1d4c5f6a7b"
ASSET_ID = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
PROJECT_ID = "d2a7e5b1c3f44e0a8b9c1d2e3f4a5b6c"
SCENE_ID = "5e8c1a2b3d4f4a6b8c0d2e4f6a8b0c1d"

#: One row per table. Values are spelled the way the old backend wrote them: UUID hex without
#: dashes, JSON with its original spacing and key order, timestamps with microseconds.
ROWS: dict[str, dict[str, object]] = {
    "manifests": {
        "id": MANIFEST_ID,
        "name": "Harbour town",
        "category": "CHARACTERS",
        "tags": '["sea", "night"]',
        "status": "READY",
        "processing_progress": '{"step": 3,  "of": 4}',
        "asset_count": 1,
        "total_processing_cost": 0.125,
        "times_used": 2,
        "version": 3,
        "created_at": "2025-06-01 10:00:00.123456",
        "updated_at": "2025-06-02 11:30:00.654321",
    },
    "assets": {
        "id": ASSET_ID,
        "manifest_id": MANIFEST_ID,
        "asset_type": "CHARACTER",
        "name": "Captain",
        "manifest_tag": "CHAR_01",
        "user_tags": '["lead"]',
        "source": "uploaded",
        "sort_order": 0,
        "created_at": "2025-06-01 10:05:00",
        "detection_confidence": 0.875,
        "is_face_crop": True,
        "crop_bbox": '{"x": 1, "y": 2, "w": 30, "h": 40}',
        "face_embedding": b"\x00\x01\xfe\xff",
        "quality_score": 0.5,
        "source_asset_id": ASSET_ID,
    },
    "projects": {
        "id": PROJECT_ID,
        "prompt": "A lighthouse keeper's last night",
        "style": "cinematic",
        "aspect_ratio": "16:9",
        "target_clip_duration": 8,
        "target_scene_count": 4,
        "audio_enabled": True,
        "seed": 42,
        "forked_from_id": None,
        "manifest_id": MANIFEST_ID,
        "manifest_version": 3,
        "status": "complete",
        "style_guide": '{"visual_style": "noir", "palette": ["grey", "amber"]}',
        "storyboard_raw": '{"scenes": [{"scene_index": 0}]}',
        "created_at": "2025-06-03 09:00:00.000001",
        "updated_at": "2025-06-03 09:45:12",
    },
    "manifest_snapshots": {
        "id": "7b6a5c4d3e2f41a0b9c8d7e6f5a4b3c2",
        "manifest_id": MANIFEST_ID,
        "project_id": PROJECT_ID,
        "version_at_snapshot": 3,
        "snapshot_data": '{"assets": [{"tag": "CHAR_01"}], "version": 3}',
        "created_at": "2025-06-03 09:00:01",
    },
    "scenes": {
        "id": SCENE_ID,
        "project_id": PROJECT_ID,
        "scene_index": 0,
        "scene_description": "The lamp flickers",
        "start_frame_prompt": "wide shot, dusk",
        "end_frame_prompt": "close-up, lamp",
        "video_motion_prompt": "slow push-in",
        "status": "done",
    },
    "pipeline_runs": {
        "id": "9c8b7a6d5e4f40312a1b0c9d8e7f6a5b",
        "project_id": PROJECT_ID,
        "started_at": "2025-06-03 09:01:00",
        "completed_at": "2025-06-03 09:44:00",
        "total_duration_seconds": 2580.5,
        "log": '[{"event": "start"}, {"event": "done"}]',
    },
    "keyframes": {
        "id": "1f2e3d4c5b6a47988796a5b4c3d2e1f0",
        "scene_id": SCENE_ID,
        "position": "start",
        "prompt_used": "wide shot, dusk",
        "file_path": "out/kf0.png",
        "mime_type": "image/png",
        "source": "generated",
        "created_at": "2025-06-03 09:10:00",
    },
    "video_clips": {
        "id": "3c2b1a0f9e8d47c6b5a4938271605f4e",
        "scene_id": SCENE_ID,
        "source": "generated",
        "status": "complete",
        "duration_seconds": 8.0,
        "poll_count": 5,
        "created_at": "2025-06-03 09:20:00",
        "veo_submission_count": 1,
        "safety_regen_count": 0,
    },
    "scene_manifests": {
        "project_id": PROJECT_ID,
        "scene_index": 0,
        "manifest_json": '{"scene_index": 0, "placements": []}',
        "asset_tags": '["CHAR_01"]',
        "new_asset_count": 0,
        "created_at": "2025-06-03 09:05:00",
    },
    "scene_audio_manifests": {
        "project_id": PROJECT_ID,
        "scene_index": 0,
        "dialogue_json": '[{"speaker": "CHAR_01", "line": "Lights out."}]',
        "has_dialogue": True,
        "has_music": False,
        "created_at": "2025-06-03 09:05:00",
    },
}


#: The histories a file in the field can have had.
#: ``before_alters``: a file from before the ALTER list existed, never started by a version that
#: ran it: it lacks every ALTER-added column (some of them foreign keys) altogether.
VARIANTS = ("create_all", "lacking_columns", "altered", "oldest", "with_manifests", "before_alters")

#: How ``create_all`` spelled the SQLite types on the other dialects (SQLAlchemy's Uuid, JSON,
#: DateTime and LargeBinary there).
_DIALECT_TYPES = {
    "postgresql": {"CHAR(32)": "UUID", "DATETIME": "TIMESTAMP WITHOUT TIME ZONE", "BLOB": "BYTEA"},
    "mariadb": {"CHAR(32)": "UUID"},
}


def _name(definition: str) -> str:
    return definition.split()[0]


def _tables(variant: str) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """The CREATE TABLE material of ``variant`` (the ALTERs come after, see :func:`statements`)."""
    tables = dict(PRE_MANIFEST)
    if variant == "with_manifests":
        tables |= MANIFEST_TABLES
    late = set(LATE_PROJECT_COLUMNS) if variant in ("lacking_columns", "oldest") else set()
    altered = set()
    if variant in ("altered", "oldest", "before_alters"):
        altered = {(t, _name(c)) for t, cs in ALTERED_COLUMNS.items() for c in cs}
    result = {}
    for table, (columns, constraints, indexes) in tables.items():
        gone = {c for c in map(_name, columns) if (table, c) in altered}
        gone |= late if table == "projects" else set()
        result[table] = (
            [c for c in columns if _name(c) not in gone],
            [c for c in constraints if not any(f"KEY({g})" in c for g in gone)],
            # create_all skips a table that exists, so a later column never got its index.
            [c for c in indexes if c not in gone],
        )
    return result


def statements(variant: str, dialect: str = "sqlite") -> list[str]:
    """The DDL that built ``variant``: CREATE TABLE/INDEX as create_all wrote them, then ALTERs."""
    ddl = []
    for table, (columns, constraints, indexes) in _tables(variant).items():
        body = ",\n    ".join(columns + constraints)
        ddl.append(f"CREATE TABLE {table} (\n    {body}\n)")
        ddl.extend(f"CREATE INDEX ix_{table}_{c} ON {table} ({c})" for c in indexes)
    if variant in ("altered", "oldest"):
        ddl.extend(
            f"ALTER TABLE {table} ADD COLUMN {column}"
            for table, columns in ALTERED_COLUMNS.items()
            for column in columns
        )
    for sqlite_type, spelled in _DIALECT_TYPES.get(dialect, {}).items():
        ddl = [statement.replace(f" {sqlite_type}", f" {spelled}") for statement in ddl]
    return ddl


def build(engine: sa.Engine, variant: str) -> dict[str, list[str]]:
    """Build ``variant`` on ``engine``'s empty database with one row per table.

    Returns each table's columns, in order, as built (what the adoption must keep).
    """
    dialect = "sqlite" if engine.dialect.name == "sqlite" else engine.dialect.name
    dialect = "mariadb" if dialect in ("mysql", "mariadb") else dialect
    with engine.begin() as connection:
        for statement in statements(variant, dialect):
            connection.exec_driver_sql(statement)
        inspector = sa.inspect(connection)
        built = {
            t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()
        }
        for table in (t for t in ROWS if t in built):  # parents before children
            row = {k: v for k, v in ROWS[table].items() if k in built[table]}
            names = ", ".join(row)
            values = ", ".join(f":{k}" for k in row)
            connection.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({values})"), row)
    return built


def quoted_rows(path: Path, built: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every legacy value of a SQLite file as SQLite's own literal (``quote()``): type and bytes."""
    with sqlite3.connect(path) as connection:
        return {
            table: connection.execute(
                f"SELECT {', '.join(f'quote({c})' for c in columns)} FROM {table} ORDER BY rowid"
            ).fetchall()
            for table, columns in built.items()
        }
