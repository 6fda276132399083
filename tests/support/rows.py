"""Rows in every table, written and read back through plain SQL Core, for data-survival tests.

Values are spelled out here (ids, timestamps, JSON), so a test compares what it wrote with what
the database holds, never with anything computed by the code under test.
"""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vidpipe.db.models import Base

BASELINE_TABLES = (
    "manifests",
    "assets",
    "projects",
    "manifest_snapshots",
    "scenes",
    "pipeline_runs",
    "keyframes",
    "video_clips",
)
MANIFEST_TABLES = ("scene_manifests", "scene_audio_manifests")
#: The tables of the backend's later versions (vidpipe_0006), parents first.
UPSTREAM_TABLES = (
    "asset_clean_references",
    "asset_appearances",
    "generation_candidates",
    "users",
    "user_settings",
    "project_checkpoints",
)

MANIFEST_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
PROJECT_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
SCENE_ID = uuid.UUID("33333333-3333-4333-8333-333333333333")
WHEN = datetime(2026, 11, 25, 12, 30, 45)

ROWS: dict[str, list[dict[str, Any]]] = {
    "manifests": [
        {"id": MANIFEST_ID, "name": "Cast", "category": "CHARACTERS", "status": "READY",
         "tags": ["hero", "villain"], "processing_progress": {"done": 3}, "asset_count": 2,
         "total_processing_cost": 0.25, "times_used": 1, "version": 2,
         "created_at": WHEN, "updated_at": WHEN},
    ],
    "assets": [
        {"id": uuid.UUID(int=0xA1), "manifest_id": MANIFEST_ID, "asset_type": "CHARACTER",
         "name": "Mara", "manifest_tag": "CHAR_01", "user_tags": ["lead"], "source": "uploaded",
         "sort_order": 0, "created_at": WHEN, "is_face_crop": True,
         "crop_bbox": {"x": 1, "y": 2}, "face_embedding": b"\x00\x01\xfe", "quality_score": 0.5},
    ],
    "projects": [
        {"id": PROJECT_ID, "prompt": "a fox at dawn", "style": "cinematic",
         "aspect_ratio": "16:9", "target_clip_duration": 8, "target_scene_count": 3,
         "manifest_id": MANIFEST_ID, "status": "complete",
         "style_guide": {"palette": ["amber"]}, "storyboard_raw": {"scenes": []},
         "created_at": WHEN, "updated_at": WHEN},
        {"id": uuid.UUID(int=0xB2), "prompt": "second", "style": "anime", "aspect_ratio": "9:16",
         "target_clip_duration": 6, "target_scene_count": 2, "forked_from_id": PROJECT_ID,
         "status": "draft", "created_at": WHEN, "updated_at": WHEN},
    ],
    "manifest_snapshots": [
        {"id": uuid.UUID(int=0xC3), "manifest_id": MANIFEST_ID, "project_id": PROJECT_ID,
         "version_at_snapshot": 2, "snapshot_data": {"assets": ["CHAR_01"]}, "created_at": WHEN},
    ],
    "scenes": [
        {"id": SCENE_ID, "project_id": PROJECT_ID, "scene_index": 0, "scene_description": "dawn",
         "start_frame_prompt": "s", "end_frame_prompt": "e", "video_motion_prompt": "m",
         "status": "done"},
    ],
    "pipeline_runs": [
        {"id": uuid.UUID(int=0xD4), "project_id": PROJECT_ID, "started_at": WHEN,
         "total_api_cost_estimate": 1.5, "log": [{"step": "storyboard"}]},
    ],
    "keyframes": [
        {"id": uuid.UUID(int=0xE5), "scene_id": SCENE_ID, "position": "start",
         "prompt_used": "p", "file_path": "/k/0.png", "mime_type": "image/png",
         "source": "generated", "created_at": WHEN},
    ],
    "video_clips": [
        {"id": uuid.UUID(int=0xF6), "scene_id": SCENE_ID, "source": "generated",
         "status": "done", "duration_seconds": 8.0, "poll_count": 4, "created_at": WHEN,
         "veo_submission_count": 1, "safety_regen_count": 0},
    ],
    "scene_manifests": [
        {"project_id": PROJECT_ID, "scene_index": 0, "manifest_json": {"placements": []},
         "composition_shot_type": "wide", "asset_tags": ["CHAR_01"], "new_asset_count": 0,
         "created_at": WHEN},
        {"project_id": PROJECT_ID, "scene_index": 1, "manifest_json": {"placements": [1]},
         "new_asset_count": 1, "created_at": WHEN},
    ],
    "scene_audio_manifests": [
        {"project_id": PROJECT_ID, "scene_index": 0, "dialogue_json": [{"line": "hi"}],
         "has_dialogue": True, "has_music": False, "created_at": WHEN},
    ],
    "asset_clean_references": [
        {"id": uuid.UUID(int=0x1A), "asset_id": uuid.UUID(int=0xA1), "tier": "tier3_gemini",
         "clean_image_url": "/r/a1.png", "face_similarity_score": 0.93, "is_primary": True,
         "generation_cost": 0.04, "created_at": WHEN},
    ],
    "asset_appearances": [
        {"id": uuid.UUID(int=0x2B), "asset_id": uuid.UUID(int=0xA1), "project_id": PROJECT_ID,
         "scene_index": 0, "frame_index": 2, "timestamp_sec": 0.75, "bbox": [1, 2, 3, 4],
         "confidence": 0.8, "source": "face_match", "created_at": WHEN},
    ],
    "generation_candidates": [
        {"id": uuid.UUID(int=0x3C), "project_id": PROJECT_ID, "scene_index": 0,
         "candidate_number": 1, "composite_score": 7.5, "scoring_details": {"visual": 8},
         "is_selected": True, "selected_by": "user", "generation_cost": 0.5,
         "scoring_cost": 0.01, "created_at": WHEN},
    ],
    "users": [
        {"id": uuid.UUID(int=1), "name": "default", "created_at": WHEN, "updated_at": WHEN},
    ],
    "user_settings": [
        {"id": uuid.UUID(int=0x4D), "user_id": uuid.UUID(int=1), "enabled_text_models": ["a"],
         "vertex_api_key": "not-a-real-key", "ollama_use_cloud": True,
         "ollama_models": ["llava"], "created_at": WHEN, "updated_at": WHEN},
    ],
    "project_checkpoints": [
        {"id": uuid.UUID(int=0x5E), "project_id": PROJECT_ID, "sha": "b" * 40,
         "snapshot_data": {"scenes": []}, "message": "first cut", "created_at": WHEN},
    ],
}  # fmt: skip


def insert_rows(bind: sa.Engine, tables: tuple[str, ...]) -> None:
    """Insert :data:`ROWS` into ``tables`` (parents first), in one transaction."""
    with bind.begin() as connection:
        for name in tables:
            # Only the columns the database has now (the models' defaults of later columns
            # would be sent too), one by one: the rows do not all name the same columns.
            table = sa.Table(name, sa.MetaData(), *_detached_present_columns(connection, name))
            for row in ROWS[name]:
                connection.execute(table.insert(), row)


def read_rows(
    bind: sa.Engine, tables: tuple[str, ...], columns: dict[str, list[str]] | None = None
) -> dict[str, list[tuple]]:
    """Every row of ``tables``, in primary-key order, every column the database has now.

    ``columns`` (from :func:`column_names`) limits each table to the columns it had then, to
    compare rows from before an upgrade that adds columns with the rows after it.
    """
    with bind.connect() as connection:
        result = {}
        for name in tables:
            table = Base.metadata.tables[name]
            selected = (
                [table.columns[column] for column in columns[name]]
                if columns
                else _present_columns(connection, name)
            )
            query = sa.select(*selected).order_by(*table.primary_key.columns)
            result[name] = [tuple(row) for row in connection.execute(query)]
        return result


def expected_rows(bind: sa.Engine, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    """What :func:`read_rows` must return after :func:`insert_rows`, straight from :data:`ROWS`.

    Limited to the columns the database has now: a downgrade may have dropped later ones.
    """
    result = {}
    with bind.connect() as connection:
        for name in tables:
            table = Base.metadata.tables[name]
            key = [c.name for c in table.primary_key.columns]
            rows = sorted(ROWS[name], key=lambda row: [str(row[k]) for k in key])
            columns = _present_columns(connection, name)
            result[name] = [tuple(_value(column, row) for column in columns) for row in rows]
    return result


def column_names(bind: sa.Engine, tables: tuple[str, ...]) -> dict[str, list[str]]:
    """The columns each of ``tables`` has now that the models also declare."""
    with bind.connect() as connection:
        return {name: [c.name for c in _present_columns(connection, name)] for name in tables}


def _present_columns(connection: sa.Connection, name: str) -> list[sa.Column]:
    present = {column["name"] for column in sa.inspect(connection).get_columns(name)}
    return [column for column in Base.metadata.tables[name].columns if column.name in present]


def _detached_present_columns(connection: sa.Connection, name: str) -> list[sa.Column]:
    return [
        sa.Column(c.name, c.type, primary_key=c.primary_key, default=c.default)
        for c in _present_columns(connection, name)
    ]


def _value(column: sa.Column, row: dict[str, Any]) -> Any:
    """The stored value: the row's, else the model's scalar default, else NULL."""
    if column.name in row:
        return row[column.name]
    if column.default is not None and column.default.is_scalar:
        return column.default.arg
    return None
