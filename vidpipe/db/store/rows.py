"""A storyboard as the rows of its three tables, and one scene's rows back as a scene.

The denormalised columns (shot type, camera movement, tags, counts, flags) are derived here
from the dumped model, so they can never disagree with the JSON they sit beside. A shot type
or camera movement longer than its VARCHAR(50) column (the backend's models declare that
width, and SQLite alone would store more) is kept whole in ``manifest_json``; the column holds
its first 49 characters and "…", on every dialect: equality queries on the usual short values
are unaffected, a cut value says that it is cut, and no dialect refuses the save.

What the rows do not hold is read from ``projects.storyboard_raw``, the copy of what was
saved (:class:`SavedCopy`): a manifest's own ``scene_index`` when it differs from its
scene's, and the characters and key details of rows written before vidpipe_0004.
"""

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa

from vidpipe.db.errors import StoryboardError
from vidpipe.db.models import Project, Scene, SceneAudioManifest, SceneManifest
from vidpipe.db.store.kinds import KINDS, Storyboard, StoryboardSchema
from vidpipe.db.store.validation import (
    check_scene_indexes,
    project_uuid,
    storable_json,
    validated,
)
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

__all__ = [
    "AUDIO_JSON_COLUMNS",
    "STORYBOARD_TABLES",
    "Prepared",
    "SavedCopy",
    "audio_table",
    "manifests_table",
    "prepare",
    "projects_table",
    "same_scene",
    "scene_from_row",
    "scenes_table",
]

#: The status of a freshly stored scene: nothing has been rendered for it yet.
NEW_SCENE_STATUS = "pending"

#: The scene_audio_manifests columns a SceneAudioManifestSchema is rebuilt from.
AUDIO_JSON_COLUMNS = (
    "dialogue_json",
    "sfx_json",
    "ambient_json",
    "music_json",
    "audio_continuity_json",
)

projects_table = Project.__table__

scenes_table = Scene.__table__

manifests_table = SceneManifest.__table__

audio_table = SceneAudioManifest.__table__

#: Children first: the order their old rows are deleted in.
STORYBOARD_TABLES = (audio_table, manifests_table, scenes_table)


class Prepared(NamedTuple):
    """A validated storyboard and the rows that store it."""

    project_id: uuid.UUID
    model: Storyboard
    project_values: dict[str, Any]
    scene_rows: list[dict[str, Any]]
    manifest_rows: list[dict[str, Any]]
    audio_rows: list[dict[str, Any]]


def prepare(
    project_id: uuid.UUID | str,
    storyboard: Storyboard | Mapping[str, Any] | str | bytes,
    schema: StoryboardSchema | None,
) -> Prepared:
    """Validate and check the storyboard and compute its rows; touches no database."""
    project_id = project_uuid(project_id)
    model = validated(storyboard, schema)
    data = model.model_dump(mode="json")
    raw_json = storable_json(model)
    check_scene_indexes(model)
    enhanced = isinstance(model, EnhancedStoryboardOutput)
    project_values = {
        "project_key": project_id,
        "style_guide": data["style_guide"],
        "characters": data["characters"],
        "storyboard_kind": KINDS[type(model)],
        "storyboard_raw": raw_json,
    }
    return Prepared(
        project_id, model, project_values, *storyboard_rows(project_id, data["scenes"], enhanced)
    )


def storyboard_rows(
    project_id: uuid.UUID, scenes: list[dict[str, Any]], enhanced: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of the three tables, denormalised columns derived from the dumped scenes."""
    scene_rows, manifest_rows, audio_rows = [], [], []
    for scene in scenes:
        key = {"project_id": project_id, "scene_index": scene["scene_index"]}
        scene_rows.append(
            {
                **key,
                "id": uuid.uuid4(),
                "scene_description": scene["scene_description"],
                "key_details": scene["key_details"],
                "start_frame_prompt": scene["start_frame_prompt"],
                "end_frame_prompt": scene["end_frame_prompt"],
                "video_motion_prompt": scene["video_motion_prompt"],
                "transition_notes": scene["transition_notes"],
                "status": NEW_SCENE_STATUS,
            }
        )
        if not enhanced:
            continue
        manifest, audio = scene["scene_manifest"], scene["audio_manifest"]
        manifest_rows.append(
            {
                **key,
                "manifest_json": manifest,
                "composition_shot_type": _fitted(manifest["composition"]["shot_type"]),
                "composition_camera_movement": _fitted(manifest["composition"]["camera_movement"]),
                "asset_tags": _distinct(p["asset_tag"] for p in manifest["placements"]),
                "new_asset_count": len(manifest["new_asset_declarations"] or []),
            }
        )
        audio_rows.append(
            {
                **key,
                "dialogue_json": audio["dialogue_lines"],
                "sfx_json": audio["sfx"],
                "ambient_json": audio["ambient"],
                "music_json": audio["music"],
                "audio_continuity_json": audio["audio_continuity"],
                "speaker_tags": _distinct(line["speaker_tag"] for line in audio["dialogue_lines"]),
                "has_dialogue": bool(audio["dialogue_lines"]),
                "has_music": audio["music"] is not None,
            }
        )
    return scene_rows, manifest_rows, audio_rows


def _string_width(column: sa.Column[Any]) -> int:
    if not isinstance(column.type, sa.String) or column.type.length is None:
        raise TypeError(f"{column} is not a String of fixed width")
    return column.type.length


#: The width of the denormalised composition columns (both VARCHAR(50)), read from the model.
COMPOSITION_WIDTH = _string_width(manifests_table.c.composition_shot_type)


def _fitted(value: str) -> str:
    """The value, or its start and "…" when it is wider than the composition columns."""
    if len(value) <= COMPOSITION_WIDTH:
        return value
    return value[: COMPOSITION_WIDTH - 1] + "…"


def _distinct(tags: Iterable[str]) -> list[str]:
    """Each tag once, in order of first appearance."""
    return list(dict.fromkeys(tags))


def same_scene(table: sa.Table) -> sa.ColumnElement[bool]:
    return sa.and_(
        table.c.project_id == scenes_table.c.project_id,
        table.c.scene_index == scenes_table.c.scene_index,
    )


class SavedCopy:
    """The parts of ``projects.storyboard_raw`` that fill in what the rows do not hold.

    Anything missing or malformed there (a project saved without it, a hand-edited copy) falls
    back to what the rows alone say.
    """

    def __init__(self, raw: object) -> None:
        raw = raw if isinstance(raw, dict) else {}
        characters = raw.get("characters")
        self.characters: list[Any] = characters if isinstance(characters, list) else []
        scenes = raw.get("scenes")
        self._scenes: dict[object, dict[str, Any]] = {
            scene.get("scene_index"): scene
            for scene in (scenes if isinstance(scenes, list) else [])
            if isinstance(scene, dict)
        }

    def key_details(self, scene_index: int) -> list[Any]:
        details = self._scenes.get(scene_index, {}).get("key_details")
        return details if isinstance(details, list) else []

    def audio_scene_index(self, scene_index: int) -> int:
        """The audio manifest's own ``scene_index`` as saved (its table keys it by the scene's)."""
        audio = self._scenes.get(scene_index, {}).get("audio_manifest")
        own = audio.get("scene_index") if isinstance(audio, dict) else None
        return own if isinstance(own, int) else scene_index


def scene_from_row(
    row: sa.Row[Any], enhanced: bool, project_id: uuid.UUID, saved: SavedCopy
) -> dict[str, Any]:
    key_details = row.key_details
    scene: dict[str, Any] = {
        "scene_index": row.scene_index,
        "scene_description": row.scene_description,
        "key_details": saved.key_details(row.scene_index) if key_details is None else key_details,
        "start_frame_prompt": row.start_frame_prompt,
        "end_frame_prompt": row.end_frame_prompt,
        "video_motion_prompt": row.video_motion_prompt,
        "transition_notes": row.transition_notes,
    }
    if not enhanced:
        return scene
    if row.manifest_json is None or row.audio_scene_index is None:
        raise StoryboardError(
            f"Project {project_id}'s storyboard is enhanced but scene_index {row.scene_index} "
            "has no scene_manifests or scene_audio_manifests row"
        )
    scene["scene_manifest"] = row.manifest_json
    scene["audio_manifest"] = {
        "scene_index": saved.audio_scene_index(row.scene_index),
        "dialogue_lines": row.dialogue_json or [],
        "sfx": row.sfx_json or [],
        "ambient": row.ambient_json,
        "music": row.music_json,
        "audio_continuity": row.audio_continuity_json,
    }
    return scene
