"""The backend's versions after the seed plan, as the files they left in the field.

vidpipe's backend (hoyack/video-pipeline) went on from phase 7 (ef91354) to 57b538c. Each
version's start-up (``init_database``) ran ``create_all`` (which only creates missing tables),
then every statement of a growing ALTER list with its errors swallowed, then (from 073bbb6) a
raw-SQL seed of the default user. Everything here is written out from what those versions did
on SQLite, not produced by vidpipe's code, so takeover is tested against the field.

A file is either *fresh* (made by one version's start-up) or *chained* (made by an older
version, then started by each later one in turn: loosely typed ALTER columns, and none of the
columns that never had an ALTER).
"""

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.support import legacy
from tests.support.rows import UPSTREAM_TABLES

Tables = dict[str, tuple[list[str], list[str], list[str]]]


@dataclass(frozen=True)
class Version:
    commit: str
    date: str
    added: str


VERSIONS = (
    Version("ef91354", "2026-02-16", "scene_manifests, scene_audio_manifests"),
    Version("4a88890", "2026-02-16", "asset_clean_references; scene_manifests.selected_reference_tags"),
    Version("dbc4c89", "2026-02-16", "asset_appearances; assets.clip_embedding; scene_manifests.cv_analysis_json, continuity_score"),
    Version("f0762e0", "2026-02-16", "scene_manifests.rewritten_keyframe_prompt, rewritten_video_prompt"),
    Version("1ea06db", "2026-02-16", "generation_candidates; projects.quality_mode, candidate_count"),
    Version("d1267bf", "2026-02-16", "assets.is_inherited, inherited_from_asset, inherited_from_project"),
    Version("270f3af", "2026-02-16", "manifests.source_video_path, source_video_duration"),
    Version("073bbb6", "2026-02-19", "users, user_settings; the default-user seed"),
    Version("78f1899", "2026-02-19", "projects.vision_model; user_settings.ollama_*"),
    Version("0f8c5bd", "2026-02-19", "projects.deleted_at"),
    Version("87f26fb", "2026-02-19", "projects.title, run_through"),
    Version("57b538c", "2026-02-21", "project_checkpoints; projects.head_sha; video_clips.prompt_used"),
)  # fmt: skip
COMMITS = tuple(version.commit for version in VERSIONS)
LATEST = COMMITS[-1]
SEEDING_FROM = "073bbb6"

#: Tables each version's models added: columns, table constraints, index statements.
NEW_TABLES: dict[str, Tables] = {
    "4a88890": {
        "asset_clean_references": (
            [
                "id CHAR(32) NOT NULL",
                "asset_id CHAR(32) NOT NULL",
                "tier VARCHAR(20) NOT NULL",
                "clean_image_url VARCHAR(500) NOT NULL",
                "generation_prompt TEXT",
                "face_similarity_score FLOAT",
                "quality_score FLOAT",
                "is_primary BOOLEAN NOT NULL",
                "generation_cost FLOAT NOT NULL",
                "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            ],
            ["PRIMARY KEY (id)", "FOREIGN KEY(asset_id) REFERENCES assets (id)"],
            [
                "CREATE INDEX ix_asset_clean_references_asset_id "
                "ON asset_clean_references (asset_id)"
            ],
        )
    },
    "dbc4c89": {
        "asset_appearances": (
            [
                "id CHAR(32) NOT NULL",
                "asset_id CHAR(32) NOT NULL",
                "project_id CHAR(32) NOT NULL",
                "scene_index INTEGER NOT NULL",
                "frame_index INTEGER NOT NULL",
                "timestamp_sec FLOAT",
                "bbox JSON",
                "confidence FLOAT NOT NULL",
                "source VARCHAR(20) NOT NULL",
                "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            ],
            [
                "PRIMARY KEY (id)",
                "FOREIGN KEY(asset_id) REFERENCES assets (id)",
                "FOREIGN KEY(project_id) REFERENCES projects (id)",
            ],
            [
                "CREATE INDEX ix_asset_appearances_asset_id ON asset_appearances (asset_id)",
                "CREATE INDEX ix_asset_appearances_project_id ON asset_appearances (project_id)",
            ],
        )
    },
    "1ea06db": {
        "generation_candidates": (
            [
                "id CHAR(32) NOT NULL",
                "project_id CHAR(32) NOT NULL",
                "scene_index INTEGER NOT NULL",
                "candidate_number INTEGER NOT NULL",
                "local_path VARCHAR(255)",
                "thumbnail_path VARCHAR(255)",
                "manifest_adherence_score FLOAT",
                "visual_quality_score FLOAT",
                "continuity_score FLOAT",
                "prompt_adherence_score FLOAT",
                "composite_score FLOAT",
                "scoring_details JSON",
                "is_selected BOOLEAN NOT NULL",
                "selected_by VARCHAR(20) NOT NULL",
                "generation_cost FLOAT NOT NULL",
                "scoring_cost FLOAT NOT NULL",
                "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            ],
            ["PRIMARY KEY (id)", "FOREIGN KEY(project_id) REFERENCES projects (id)"],
            [
                "CREATE INDEX idx_candidates_project_scene "
                "ON generation_candidates (project_id, scene_index)",
                "CREATE INDEX ix_generation_candidates_project_id "
                "ON generation_candidates (project_id)",
            ],
        )
    },
    "073bbb6": {
        "users": (
            [
                "id CHAR(32) NOT NULL",
                "name VARCHAR(100) NOT NULL",
                "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
                "updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            ],
            ["PRIMARY KEY (id)"],
            [],
        ),
        "user_settings": (
            [
                "id CHAR(32) NOT NULL",
                "user_id CHAR(32) NOT NULL",
                "enabled_text_models JSON",
                "enabled_image_models JSON",
                "enabled_video_models JSON",
                "default_text_model VARCHAR(100)",
                "default_image_model VARCHAR(100)",
                "default_video_model VARCHAR(100)",
                "gcp_project_id VARCHAR(200)",
                "gcp_location VARCHAR(100)",
                "vertex_api_key TEXT",
                "comfyui_host VARCHAR(500)",
                "comfyui_api_key TEXT",
                "comfyui_cost_per_second FLOAT",
                "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
                "updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            ],
            ["PRIMARY KEY (id)", "FOREIGN KEY(user_id) REFERENCES users (id)"],
            ["CREATE UNIQUE INDEX ix_user_settings_user_id ON user_settings (user_id)"],
        ),
    },
    "57b538c": {
        "project_checkpoints": (
            [
                "id CHAR(32) NOT NULL",
                "project_id CHAR(32) NOT NULL",
                "sha VARCHAR(40) NOT NULL",
                "parent_sha VARCHAR(40)",
                "snapshot_data JSON NOT NULL",
                "message TEXT NOT NULL",
                "metadata_json JSON",
                "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
            ],
            [
                "PRIMARY KEY (id)",
                "CONSTRAINT uq_checkpoint_project_sha UNIQUE (project_id, sha)",
                "FOREIGN KEY(project_id) REFERENCES projects (id)",
            ],
            [
                "CREATE INDEX idx_checkpoint_project_created "
                "ON project_checkpoints (project_id, created_at)",
                "CREATE INDEX ix_project_checkpoints_project_id ON project_checkpoints (project_id)",
            ],
        )
    },
}

#: Columns each version's models added to existing tables: (table, after column, definition,
#: table constraint or None). create_all puts them inside the table, ALTERs at its end.
NEW_COLUMNS: dict[str, list[tuple[str, str, str, str | None]]] = {
    "4a88890": [("scene_manifests", "new_asset_count", "selected_reference_tags JSON", None)],
    "dbc4c89": [
        ("assets", "face_embedding", "clip_embedding BLOB", None),
        ("scene_manifests", "selected_reference_tags", "cv_analysis_json JSON", None),
        ("scene_manifests", "cv_analysis_json", "continuity_score FLOAT", None),
    ],
    "f0762e0": [
        ("scene_manifests", "continuity_score", "rewritten_keyframe_prompt TEXT", None),
        ("scene_manifests", "rewritten_keyframe_prompt", "rewritten_video_prompt TEXT", None),
    ],
    "1ea06db": [
        ("projects", "manifest_version", "quality_mode BOOLEAN NOT NULL", None),
        ("projects", "quality_mode", "candidate_count INTEGER NOT NULL", None),
    ],
    "d1267bf": [
        ("assets", "source_asset_id", "is_inherited BOOLEAN NOT NULL", None),
        (
            "assets",
            "is_inherited",
            "inherited_from_asset CHAR(32)",
            "FOREIGN KEY(inherited_from_asset) REFERENCES assets (id)",
        ),
        (
            "assets",
            "inherited_from_asset",
            "inherited_from_project CHAR(32)",
            "FOREIGN KEY(inherited_from_project) REFERENCES projects (id)",
        ),
    ],
    "270f3af": [
        ("manifests", "parent_manifest_id", "source_video_path VARCHAR(500)", None),
        ("manifests", "source_video_path", "source_video_duration FLOAT", None),
    ],
    "78f1899": [
        ("projects", "candidate_count", "vision_model VARCHAR(100)", None),
        ("user_settings", "comfyui_cost_per_second", "ollama_use_cloud BOOLEAN NOT NULL", None),
        ("user_settings", "ollama_use_cloud", "ollama_api_key TEXT", None),
        ("user_settings", "ollama_api_key", "ollama_endpoint VARCHAR(500)", None),
        ("user_settings", "ollama_endpoint", "ollama_models JSON", None),
    ],
    "0f8c5bd": [("projects", "vision_model", "deleted_at DATETIME", None)],
    "87f26fb": [
        ("projects", "id", "title VARCHAR(200)", None),
        ("projects", "vision_model", "run_through VARCHAR(20)", None),
    ],
    "57b538c": [
        ("projects", "deleted_at", "head_sha VARCHAR(40)", None),
        ("video_clips", "completed_at", "prompt_used TEXT", None),
    ],
}

_BEFORE_THE_RANGE = "2879bdb"  # the versions before phase 7 ran ALTERs 1-15 already
#: init_database's ALTER list, in order, each with the first version that ran it. The first
#: fifteen are legacy.ALTERED_COLUMNS, which lists them in the backend's order.
ALTERS: list[tuple[str, str]] = [
    *(
        (_BEFORE_THE_RANGE, f"ALTER TABLE {table} ADD COLUMN {column}")
        for table, columns in legacy.ALTERED_COLUMNS.items()
        for column in columns
    ),
    ("dbc4c89", "ALTER TABLE assets ADD COLUMN clip_embedding BLOB"),
    ("dbc4c89", "ALTER TABLE scene_manifests ADD COLUMN cv_analysis_json TEXT"),
    ("dbc4c89", "ALTER TABLE scene_manifests ADD COLUMN continuity_score REAL"),
    ("073bbb6", "ALTER TABLE scene_manifests ADD COLUMN rewritten_keyframe_prompt TEXT"),
    ("073bbb6", "ALTER TABLE scene_manifests ADD COLUMN rewritten_video_prompt TEXT"),
    ("073bbb6", "ALTER TABLE projects ADD COLUMN quality_mode INTEGER DEFAULT 0"),
    ("073bbb6", "ALTER TABLE projects ADD COLUMN candidate_count INTEGER DEFAULT 1"),
    ("073bbb6", "ALTER TABLE user_settings ADD COLUMN comfyui_host VARCHAR(500)"),
    ("073bbb6", "ALTER TABLE user_settings ADD COLUMN comfyui_api_key TEXT"),
    ("073bbb6", "ALTER TABLE user_settings ADD COLUMN comfyui_cost_per_second REAL"),
    ("78f1899", "ALTER TABLE user_settings ADD COLUMN ollama_use_cloud INTEGER DEFAULT 0"),
    ("78f1899", "ALTER TABLE user_settings ADD COLUMN ollama_api_key TEXT"),
    ("78f1899", "ALTER TABLE user_settings ADD COLUMN ollama_endpoint VARCHAR(500)"),
    ("78f1899", "ALTER TABLE user_settings ADD COLUMN ollama_models TEXT"),
    ("78f1899", "ALTER TABLE projects ADD COLUMN vision_model VARCHAR(100)"),
    ("0f8c5bd", "ALTER TABLE projects ADD COLUMN deleted_at TIMESTAMP"),
    ("87f26fb", "ALTER TABLE projects ADD COLUMN run_through VARCHAR(20)"),
    ("87f26fb", "ALTER TABLE projects ADD COLUMN title VARCHAR(200)"),
    ("57b538c", "ALTER TABLE projects ADD COLUMN head_sha VARCHAR(40)"),
    ("57b538c", "ALTER TABLE video_clips ADD COLUMN prompt_used TEXT"),
]

DEFAULT_USER = "00000000000000000000000000000001"
#: The seed, as the backend sends it: two DELETEs of the dashed id, a look-up, two INSERTs.
SEED_DELETES = (
    "DELETE FROM user_settings WHERE user_id = :uid",
    "DELETE FROM users WHERE id = :uid",
)
SEED_LOOKUP = "SELECT id FROM users WHERE id = :uid"
SEED_INSERTS = (
    "INSERT INTO users (id, name) VALUES (:uid, 'default')",
    "INSERT INTO user_settings (id, user_id) VALUES (:sid, :uid)",
)
SEED_SETTINGS_ID = "5eed5eed5eed4eed8eed5eed5eed5eed"

USER_ID = "7d1e2f3a4b5c4d6e8f901a2b3c4d5e6f"
#: One row per later table and the later columns of earlier tables, as the backend's ORM wrote
#: them (the columns a version's file lacks are left out when the row is written).
ROWS: dict[str, dict[str, object]] = {
    "manifests": {"source_video_path": "in/harbour.mp4", "source_video_duration": 12.5},
    "assets": {
        "clip_embedding": b"\x10\x00\xff",
        "is_inherited": 0,
        "inherited_from_asset": None,
    },
    "projects": {
        "title": "Last night",
        "quality_mode": 1,
        "candidate_count": 2,
        "vision_model": "gemini-2.5-flash",
        "run_through": "keyframes",
        "head_sha": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    },
    "video_clips": {"prompt_used": "slow push-in, dusk"},
    "scene_manifests": {
        "selected_reference_tags": '["CHAR_01"]',
        "cv_analysis_json": '{"faces": 1}',
        "continuity_score": 0.75,
        "rewritten_keyframe_prompt": "wide, lamp lit",
    },
    "asset_clean_references": {
        "id": "4c1e0b5a9d2f4e3c8b7a6f5e4d3c2b1a",
        "asset_id": legacy.ASSET_ID,
        "tier": "tier2_rembg",
        "clean_image_url": "refs/char01.png",
        "quality_score": 0.9,
        "is_primary": 1,
        "generation_cost": 0.02,
        "created_at": "2026-02-16 17:40:12.123456",
    },
    "asset_appearances": {
        "id": "8a7b6c5d4e3f42a1b0c9d8e7f6a5b4c3",
        "asset_id": legacy.ASSET_ID,
        "project_id": legacy.PROJECT_ID,
        "scene_index": 0,
        "frame_index": 3,
        "timestamp_sec": 1.5,
        "bbox": "[10, 20, 110, 220]",
        "confidence": 0.88,
        "source": "yolo",
        "created_at": "2026-02-16 17:41:00",
    },
    "generation_candidates": {
        "id": "2b3c4d5e6f704a1b8c9d0e1f2a3b4c5d",
        "project_id": legacy.PROJECT_ID,
        "scene_index": 0,
        "candidate_number": 1,
        "composite_score": 7.25,
        "scoring_details": '{"visual": 8,  "manifest": 6.5}',
        "is_selected": 1,
        "selected_by": "user",
        "generation_cost": 0.5,
        "scoring_cost": 0.01,
        "created_at": "2026-02-16 18:00:00",
    },
    "users": {
        "id": USER_ID,
        "name": "editor",
        "created_at": "2026-02-19 08:00:00",
        "updated_at": "2026-02-19 08:00:00",
    },
    "user_settings": {
        "id": "6e5d4c3b2a1940f8e7d6c5b4a3928170",
        "user_id": USER_ID,
        "enabled_text_models": '["gemini-2.5-pro"]',
        "gcp_project_id": "demo-project",
        "vertex_api_key": "vertex-secret-not-for-logs",
        "comfyui_api_key": "comfy-secret-not-for-logs",
        "ollama_use_cloud": 1,
        "ollama_api_key": "ollama-secret-not-for-logs",
        "ollama_models": '["llava"]',
        "created_at": "2026-02-19 08:00:00",
        "updated_at": "2026-02-19 09:30:00.5",
    },
    "project_checkpoints": {
        "id": "9f8e7d6c5b4a43928170f6e5d4c3b2a1",
        "project_id": legacy.PROJECT_ID,
        "sha": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "snapshot_data": '{"scenes": [],  "title": "Last night"}',
        "message": "first cut",
        "created_at": "2026-02-21 10:00:00",
    },
}
#: The secrets above: nothing vidpipe prints may contain them.
SECRETS = ("vertex-secret-not-for-logs", "comfy-secret-not-for-logs", "ollama-secret-not-for-logs")


def _index(commit: str) -> int:
    return COMMITS.index(commit)


def create_all_tables(commit: str) -> Tables:
    """The tables ``create_all`` builds at ``commit``, in a fresh file."""
    tables: Tables = {
        name: (list(columns), list(constraints), [f"CREATE INDEX ix_{name}_{c} ON {name} ({c})" for c in indexes])
        for name, (columns, constraints, indexes) in (legacy.PRE_MANIFEST | legacy.MANIFEST_TABLES).items()
    }  # fmt: skip
    for version in COMMITS[: _index(commit) + 1]:
        for name, (columns, constraints, indexes) in NEW_TABLES.get(version, {}).items():
            tables[name] = (list(columns), list(constraints), list(indexes))
        for table, after, definition, constraint in NEW_COLUMNS.get(version, []):
            columns, constraints, _indexes = tables[table]
            position = [c.split()[0] for c in columns].index(after) + 1
            columns.insert(position, definition)
            if constraint:
                constraints.append(constraint)
    return tables


def start(connection: sqlite3.Connection, commit: str) -> list[str]:
    """Run ``commit``'s start-up on a SQLite file, as ``init_database`` does; return the
    statements of its ALTER list that succeeded. A failing seed is rolled back and re-raised.
    """
    tables = create_all_tables(commit)
    present = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    for name, (columns, constraints, indexes) in tables.items():
        if name not in present:  # create_all skips a table that exists
            connection.execute(f"CREATE TABLE {name} (\n    {', '.join(columns + constraints)}\n)")
            for index in indexes:
                connection.execute(index)
    succeeded = []
    for first, statement in ALTERS:
        if first != _BEFORE_THE_RANGE and _index(first) > _index(commit):
            break
        try:
            connection.execute(statement)
        except sqlite3.OperationalError:
            continue  # swallowed, as the backend does
        succeeded.append(statement)
    connection.commit()
    if _index(commit) >= _index(SEEDING_FROM):
        seed(connection)
    return succeeded


def seed(connection: sqlite3.Connection) -> None:
    """The default-user seed, in one transaction; raises (after rollback) as the backend does."""
    try:
        for statement in SEED_DELETES:
            connection.execute(_qmark(statement), ("00000000-0000-0000-0000-000000000001",))
        if connection.execute(_qmark(SEED_LOOKUP), (DEFAULT_USER,)).fetchone() is None:
            connection.execute(_qmark(SEED_INSERTS[0]), (DEFAULT_USER,))
            connection.execute(_qmark(SEED_INSERTS[1]), (SEED_SETTINGS_ID, DEFAULT_USER))
        connection.commit()
    except sqlite3.Error:
        connection.rollback()
        raise


def _qmark(statement: str) -> str:
    for name in (":uid", ":sid"):
        statement = statement.replace(name, "?")
    return statement


def write_rows(connection: sqlite3.Connection) -> None:
    """What the backend's ORM wrote: a row in every table, the later columns where they exist."""
    columns = {
        table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    for table, values in legacy.ROWS.items():
        if table not in columns:
            continue
        exists = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        later = {k: v for k, v in ROWS.get(table, {}).items() if k in columns[table]}
        if exists:  # a legacy row: the later version fills in its later columns
            if later:
                sets = ", ".join(f"{k} = ?" for k in later)
                connection.execute(f"UPDATE {table} SET {sets}", tuple(later.values()))
            continue
        row = {k: v for k, v in (values | later).items() if k in columns[table]}
        _insert(connection, table, row)
    for table in UPSTREAM_TABLES:
        row = ROWS[table]
        if table in columns and not connection.execute(
            f"SELECT 1 FROM {table} WHERE id = ?", (row["id"],)
        ).fetchone():  # an earlier version of a chain wrote it already
            _insert(connection, table, {k: v for k, v in row.items() if k in columns[table]})
    connection.commit()




def _insert(connection: sqlite3.Connection, table: str, row: dict[str, object]) -> None:
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    connection.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))


def build_fresh(path: Path, commit: str) -> None:
    """A file made by ``commit`` alone: its start-up, then rows written by its ORM."""
    with sqlite3.connect(path) as connection:
        # The seed fails on a fresh file from 78f1899 on: the app never started.
        with contextlib.suppress(sqlite3.IntegrityError):
            start(connection, commit)
        write_rows(connection)
    connection.close()


def start_and_write(path: Path, commit: str) -> None:
    """``commit``'s start-up on an existing file (its seed may fail), then its ORM's rows."""
    with sqlite3.connect(path) as connection:
        with contextlib.suppress(sqlite3.IntegrityError):
            start(connection, commit)
        write_rows(connection)
    connection.close()


def build_chain(path: Path, first: str, last: str = LATEST) -> None:
    """A file made by ``first`` (or a legacy variant), then started by every later version.

    Rows are written after each start-up, as a user working with each version would.
    """
    if first in legacy.VARIANTS:
        engine = sa.create_engine(f"sqlite:///{path}")
        legacy.build(engine, first)
        engine.dispose()
        versions = COMMITS[: _index(last) + 1]
    else:
        versions = COMMITS[_index(first) : _index(last) + 1]
    with sqlite3.connect(path) as connection:
        for commit in versions:
            with contextlib.suppress(sqlite3.IntegrityError):
                start(connection, commit)
            write_rows(connection)
    connection.close()


def columns_of_latest() -> dict[str, list[str]]:
    """Every column the latest backend's models read, per table."""
    return {
        table: [c.split()[0] for c in columns]
        for table, (columns, _constraints, _indexes) in create_all_tables(LATEST).items()
    }
