"""The models: the seed's tables, the legacy columns, the dialect types and defaults, no side effects."""

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.support.cli import python
from vidpipe.db import upgrade
from vidpipe.db.models import (
    Asset,
    Base,
    Manifest,
    Project,
    SceneAudioManifest,
    SceneManifest,
    VideoClip,
)


def test_the_seed_plans_model_verify_command_prints_its_done_lines() -> None:
    code = (
        "from vidpipe.db.models import SceneManifest, SceneAudioManifest; "
        "print('SceneManifest columns:', [c.name for c in SceneManifest.__table__.columns]); "
        "print('SceneAudioManifest columns:', [c.name for c in SceneAudioManifest.__table__.columns]); "
        "print('SceneManifest PK:', [c.name for c in SceneManifest.__table__.primary_key.columns]); "
        "print('SceneAudioManifest PK:', [c.name for c in SceneAudioManifest.__table__.primary_key.columns])"
    )
    output = python(code)
    assert output.splitlines() == [
        "SceneManifest columns: ['project_id', 'scene_index', 'manifest_json', "
        "'composition_shot_type', 'composition_camera_movement', 'asset_tags', 'new_asset_count', "
        "'created_at', 'selected_reference_tags', 'cv_analysis_json', 'continuity_score', "
        "'rewritten_keyframe_prompt', 'rewritten_video_prompt']",  # the seed's, then 0006's
        "SceneAudioManifest columns: ['project_id', 'scene_index', 'dialogue_json', 'sfx_json', "
        "'ambient_json', 'music_json', 'audio_continuity_json', 'speaker_tags', 'has_dialogue', "
        "'has_music', 'created_at']",
        "SceneManifest PK: ['project_id', 'scene_index']",
        "SceneAudioManifest PK: ['project_id', 'scene_index']",
    ]


@pytest.mark.parametrize("model", [SceneManifest, SceneAudioManifest])
def test_manifest_tables_reference_projects(model: type[Base]) -> None:
    (fk,) = model.__table__.foreign_keys
    assert fk.parent.name == "project_id"
    assert fk.target_fullname == "projects.id"


def test_naming_convention_names_every_constraint_kind() -> None:
    assert set(Base.metadata.naming_convention) >= {"ix", "uq", "ck", "fk", "pk"}


def test_importing_the_models_has_no_side_effects(tmp_path: Path) -> None:
    """No engine, no config file read, no database opened: checked in a clean interpreter."""
    code = """
import gc, sys
events = []
sys.addaudithook(lambda name, args: events.append((name, str(args[0]) if args else ""))
    if name in ("sqlite3.connect", "open", "socket.connect") else None)
import vidpipe.db.models, vidpipe.db
import sqlalchemy
engines = [o for o in gc.get_objects() if isinstance(o, sqlalchemy.engine.Engine)]
touched = [e for e in events if e[0] != "open" or e[1].endswith((".ini", ".db", ".toml"))]
print(len(engines), touched)
"""
    assert python(code, cwd=tmp_path).strip() == "0 []"
    assert list(tmp_path.iterdir()) == []


def test_column_types_per_dialect(engine: sa.Engine, dialect: str) -> None:
    """The dialect table of DESIGN.md, read back from a migrated database."""
    upgrade(engine)
    columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("scene_manifests")}
    expected = {
        "sqlite": ("CHAR(32)", "JSON"),
        "postgresql": ("UUID", "JSONB"),
        "mariadb": ("UUID", "LONGTEXT"),  # MariaDB's JSON is an alias of LONGTEXT + json_valid()
    }[dialect]
    assert (str(columns["project_id"]), str(columns["asset_tags"])) == expected


def test_python_defaults_and_json_round_trip(engine: sa.Engine) -> None:
    """Rows inserted without values get the defaults the old backend applied."""
    upgrade(engine)
    with Session(engine) as session:
        manifest = Manifest(name="Cast", tags=["a", "b"], processing_progress={"step": 1})
        session.add(manifest)
        session.flush()
        asset = Asset(
            manifest_id=manifest.id, asset_type="character", name="Ana", manifest_tag="CHAR_01"
        )
        project = Project(
            prompt="p",
            style="cinematic",
            aspect_ratio="16:9",
            target_clip_duration=8,
            status="draft",
            manifest_id=manifest.id,
        )
        session.add_all([asset, project])
        session.flush()
        session.add_all(
            [
                SceneManifest(project_id=project.id, scene_index=0, manifest_json={"k": [1, "x"]}),
                SceneAudioManifest(project_id=project.id, scene_index=0, speaker_tags=["CHAR_01"]),
            ]
        )
        session.commit()
        ids = manifest.id, asset.id, project.id

    with Session(engine) as session:
        manifest, asset, project = (
            session.get(m, i) for m, i in zip((Manifest, Asset, Project), ids, strict=True)
        )
        assert isinstance(manifest.id, uuid.UUID)
        assert (
            manifest.category,
            manifest.status,
            manifest.asset_count,
            manifest.version,
            manifest.times_used,
            manifest.total_processing_cost,
        ) == ("CUSTOM", "DRAFT", 0, 1, 0, 0.0)
        assert manifest.tags == ["a", "b"] and manifest.processing_progress == {"step": 1}
        assert (asset.source, asset.sort_order, asset.is_face_crop) == ("uploaded", 0, False)
        assert project.target_scene_count == 3
        assert project.created_at is not None and project.updated_at is not None
        scene_manifest = session.get(SceneManifest, (project.id, 0))
        assert scene_manifest.new_asset_count == 0
        assert scene_manifest.manifest_json == {"k": [1, "x"]}
        audio = session.get(SceneAudioManifest, (project.id, 0))
        assert (audio.has_dialogue, audio.has_music, audio.speaker_tags) == (
            False,
            False,
            ["CHAR_01"],
        )


def test_video_clip_defaults() -> None:
    column = VideoClip.__table__.c
    assert [
        column[n].default.arg
        for n in ("source", "poll_count", "veo_submission_count", "safety_regen_count")
    ] == ["generated", 0, 0, 0]
