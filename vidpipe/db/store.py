"""The storyboard store: Gemini's structured output into rows, rows back into the same model.

``save_storyboard`` writes a ``StoryboardOutput`` or an ``EnhancedStoryboardOutput`` as the
project's ``scenes`` rows (and, when enhanced, its ``scene_manifests`` and
``scene_audio_manifests`` rows with their denormalised columns); ``load_storyboard`` rebuilds the
very same model from those rows, which are the source of truth (``projects.storyboard_raw`` is
an audit copy of what was saved, never read back). ``scenes_with_asset`` and
``scenes_with_speaker`` find scenes by tag with each dialect's JSON operators.

Every function takes a sync ``Session`` and works inside its transaction without committing, like
``Session.add``: the caller commits. With an ``AsyncSession``, call them through ``run_sync``:
``await session.run_sync(save_storyboard, project_id, storyboard)``.
"""

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.models import Keyframe, Project, Scene, SceneAudioManifest, SceneManifest, VideoClip
from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

Storyboard = StoryboardOutput | EnhancedStoryboardOutput
StoryboardSchema = type[StoryboardOutput] | type[EnhancedStoryboardOutput]

#: ``projects.storyboard_kind`` per schema: which model ``load_storyboard`` rebuilds.
KINDS: dict[StoryboardSchema, str] = {
    StoryboardOutput: "base",
    EnhancedStoryboardOutput: "enhanced",
}
SCHEMAS: dict[str, StoryboardSchema] = {kind: schema for schema, kind in KINDS.items()}
#: The status of a freshly stored scene: nothing has been rendered for it yet.
NEW_SCENE_STATUS = "pending"
#: scene_index is an INTEGER column: 32 bits on every dialect.
MAX_SCENE_INDEX = 2**31 - 1
#: NUL (PostgreSQL text and JSONB refuse it) and lone surrogates (not encodable as UTF-8).
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")

#: The scene_audio_manifests columns a SceneAudioManifestSchema is rebuilt from.
AUDIO_JSON_COLUMNS = (
    "dialogue_json",
    "sfx_json",
    "ambient_json",
    "music_json",
    "audio_continuity_json",
)

_scenes = Scene.__table__
_manifests = SceneManifest.__table__
_audio = SceneAudioManifest.__table__


class SceneKey(NamedTuple):
    """A scene's identity across the storyboard tables."""

    project_id: uuid.UUID
    scene_index: int


def save_storyboard(
    session: Session,
    project_id: uuid.UUID,
    storyboard: Storyboard | Mapping[str, Any] | str | bytes,
    *,
    schema: StoryboardSchema | None = None,
) -> Storyboard:
    """Store ``storyboard`` as the project's storyboard, replacing any earlier one.

    ``storyboard`` is a model, or Gemini's raw output (a dict or JSON text) together with the
    ``schema`` it was asked for. It is validated and checked first; then, inside a SAVEPOINT,
    the project's old storyboard rows are deleted and the new ones inserted in bulk (one
    executemany per table). Any problem raises :class:`StoryboardError` naming the scene and
    field, and leaves the database as it was. Returns the validated storyboard.
    """
    model = _validated(storyboard, schema)
    data = model.model_dump(mode="json")
    _check_storable(data)
    _check_scene_indexes(model)
    enhanced = isinstance(model, EnhancedStoryboardOutput)
    scene_rows, manifest_rows, audio_rows = _rows(project_id, data["scenes"], enhanced)

    session.flush()  # a project added but not yet flushed must be visible to the UPDATE below
    try:
        with session.begin_nested():
            updated = session.execute(
                sa.update(Project)
                .where(Project.id == project_id)
                .values(
                    style_guide=data["style_guide"],
                    characters=data["characters"],
                    storyboard_kind=KINDS[type(model)],
                    storyboard_raw=data,
                )
            )
            if updated.rowcount == 0:
                raise UnknownProjectError(f"No project with id {project_id}: nothing was saved")
            for model_class in (SceneAudioManifest, SceneManifest, Scene):
                session.execute(sa.delete(model_class).where(model_class.project_id == project_id))
            for table, rows in (
                (_scenes, scene_rows),
                (_manifests, manifest_rows),
                (_audio, audio_rows),
            ):
                if rows:
                    session.execute(sa.insert(table), rows)
    except IntegrityError as exc:
        raise _explain_integrity_error(session, project_id, exc) from exc
    return model


def load_storyboard(session: Session, project_id: uuid.UUID) -> Storyboard | None:
    """Rebuild the project's storyboard from its rows; None if it has none.

    Rows written before revision vidpipe_0004 lack characters and key details (read as empty
    lists) and the storyboard's kind (read as enhanced when its scenes have manifests).
    """
    project = session.execute(
        sa.select(Project.style_guide, Project.characters, Project.storyboard_kind).where(
            Project.id == project_id
        )
    ).one_or_none()
    if project is None:
        raise UnknownProjectError(f"No project with id {project_id}")
    rows = session.execute(
        sa.select(
            _scenes,
            _manifests.c.manifest_json,
            _audio.c.scene_index.label("audio_scene_index"),
            *(_audio.c[name] for name in AUDIO_JSON_COLUMNS),
        )
        .outerjoin(_manifests, _same_scene(_manifests))
        .outerjoin(_audio, _same_scene(_audio))
        .where(_scenes.c.project_id == project_id)
        .order_by(_scenes.c.scene_index)
    ).all()
    if project.style_guide is None and not rows:
        return None
    kind = project.storyboard_kind or (
        "enhanced" if any(row.manifest_json is not None for row in rows) else "base"
    )
    enhanced = kind == "enhanced"
    payload = {
        "style_guide": project.style_guide,
        "characters": project.characters or [],
        "scenes": [_scene_from_row(row, enhanced, project_id) for row in rows],
    }
    try:
        return SCHEMAS[kind].model_validate(payload)
    except ValidationError as exc:
        raise StoryboardError(
            f"The stored rows of project {project_id} do not form a valid storyboard: "
            f"{_describe_errors(exc, payload)}"
        ) from None


def scenes_with_asset(
    session: Session, asset_tag: str, project_id: uuid.UUID | None = None
) -> list[SceneKey]:
    """The scenes whose manifest places ``asset_tag``, optionally within one project."""
    return _scenes_with_tag(session, _manifests.c.asset_tags, asset_tag, project_id)


def scenes_with_speaker(
    session: Session, speaker_tag: str, project_id: uuid.UUID | None = None
) -> list[SceneKey]:
    """The scenes in which ``speaker_tag`` speaks a line, optionally within one project."""
    return _scenes_with_tag(session, _audio.c.speaker_tags, speaker_tag, project_id)


def _validated(
    storyboard: Storyboard | Mapping[str, Any] | str | bytes, schema: StoryboardSchema | None
) -> Storyboard:
    """The storyboard validated afresh: a model may have been changed since it was built."""
    if isinstance(storyboard, BaseModel):
        schema = schema or type(storyboard)
        payload: Any = storyboard.model_dump()
    else:
        payload = storyboard
    if schema not in KINDS:
        raise TypeError(
            "save_storyboard needs a StoryboardOutput or EnhancedStoryboardOutput, or raw output "
            "with schema=StoryboardOutput or schema=EnhancedStoryboardOutput"
        )
    try:
        if isinstance(payload, str | bytes):
            return schema.model_validate_json(payload)
        return schema.model_validate(payload)
    except ValidationError as exc:
        raise StoryboardError(
            f"Invalid {schema.__name__}, nothing was saved: {_describe_errors(exc, payload)}"
        ) from None


def _describe_errors(exc: ValidationError, payload: Any) -> str:
    """Pydantic's errors as ``scenes[2] (scene_index 2).audio_manifest.sfx[0].volume: ...``."""
    return "; ".join(
        f"{_path(error['loc'], payload)}: {error['msg']}" for error in exc.errors()[:5]
    ) + (f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else "")


def _path(loc: Iterable[int | str], payload: Any) -> str:
    text = ""
    node = payload
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if text.startswith("scenes[") and text.count("[") == 1 and isinstance(node, Mapping):
                index = node.get("scene_index")
                if isinstance(index, int):
                    text += f" (scene_index {index})"
        else:
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
    return text or "storyboard"


def _check_storable(data: Any, path: str = "") -> None:
    """Refuse text that some dialect cannot store, the same way on every dialect."""
    if isinstance(data, str):
        if UNSTORABLE_CHARACTERS.search(data):
            raise StoryboardError(
                f"{path}: contains a NUL character or a lone surrogate, which cannot be stored; "
                "nothing was saved"
            )
    elif isinstance(data, dict):
        for key, value in data.items():
            _check_storable(value, f"{path}.{key}" if path else key)
    elif isinstance(data, list):
        for position, value in enumerate(data):
            _check_storable(value, f"{path}[{position}]")


def _check_scene_indexes(model: Storyboard) -> None:
    """Scene indexes are distinct, in playing order, fit the column and match the manifests."""
    seen: dict[int, int] = {}
    for position, scene in enumerate(model.scenes):
        where = f"scenes[{position}].scene_index"
        index = scene.scene_index
        if not 0 <= index <= MAX_SCENE_INDEX:
            raise StoryboardError(
                f"{where}: {index} is out of range (scene indexes count from 0 and fit in 32 "
                "bits); nothing was saved"
            )
        if index in seen:
            raise StoryboardError(
                f"{where}: duplicate scene_index {index} (also scenes[{seen[index]}]); "
                "nothing was saved"
            )
        if seen and index < max(seen):
            raise StoryboardError(
                f"{where}: {index} comes after scene_index {max(seen)}; scenes must be listed "
                "in playing order; nothing was saved"
            )
        seen[index] = position
        if isinstance(model, EnhancedStoryboardOutput):
            for field in ("scene_manifest", "audio_manifest"):
                own = getattr(scene, field).scene_index
                if own != index:
                    raise StoryboardError(
                        f"scenes[{position}] (scene_index {index}).{field}.scene_index: {own} "
                        f"differs from the scene's scene_index {index}; nothing was saved"
                    )
            _check_length(scene.scene_manifest.composition.shot_type, position, "shot_type")
            _check_length(
                scene.scene_manifest.composition.camera_movement, position, "camera_movement"
            )


def _check_length(value: str, position: int, field: str) -> None:
    limit = _manifests.c[f"composition_{field}"].type.length
    if len(value) > limit:
        raise StoryboardError(
            f"scenes[{position}].scene_manifest.composition.{field}: {len(value)} characters, "
            f"at most {limit} fit; nothing was saved"
        )


def _rows(
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
                "composition_shot_type": manifest["composition"]["shot_type"],
                "composition_camera_movement": manifest["composition"]["camera_movement"],
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


def _distinct(tags: Iterable[str]) -> list[str]:
    """Each tag once, in order of first appearance."""
    return list(dict.fromkeys(tags))


def _same_scene(table: sa.Table) -> sa.ColumnElement[bool]:
    return sa.and_(
        table.c.project_id == _scenes.c.project_id, table.c.scene_index == _scenes.c.scene_index
    )


def _scene_from_row(row: sa.Row, enhanced: bool, project_id: uuid.UUID) -> dict[str, Any]:
    scene: dict[str, Any] = {
        "scene_index": row.scene_index,
        "scene_description": row.scene_description,
        "key_details": row.key_details or [],
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
        "scene_index": row.scene_index,
        "dialogue_lines": row.dialogue_json or [],
        "sfx": row.sfx_json or [],
        "ambient": row.ambient_json,
        "music": row.music_json,
        "audio_continuity": row.audio_continuity_json,
    }
    return scene


def _explain_integrity_error(
    session: Session, project_id: uuid.UUID, exc: IntegrityError
) -> StoryboardError | IntegrityError:
    """Name the scenes whose keyframes or clips kept the old storyboard from being replaced."""
    in_use = session.scalars(
        sa.select(Scene.scene_index)
        .where(
            Scene.project_id == project_id,
            sa.or_(
                sa.exists().where(Keyframe.scene_id == Scene.id),
                sa.exists().where(VideoClip.scene_id == Scene.id),
            ),
        )
        .order_by(Scene.scene_index)
    ).all()
    if not in_use:
        return exc
    return StoryboardError(
        f"Project {project_id}'s stored scenes {', '.join(map(str, in_use))} have keyframes or "
        "video clips, which belong to the old storyboard: delete them (and their files) before "
        "saving a new storyboard; nothing was saved"
    )


def _scenes_with_tag(
    session: Session, column: sa.Column, tag: str, project_id: uuid.UUID | None
) -> list[SceneKey]:
    table = column.table
    query = sa.select(table.c.project_id, table.c.scene_index).where(
        _contains_tag(session.get_bind().dialect.name, column, tag)
    )
    if project_id is not None:
        query = query.where(table.c.project_id == project_id)
    rows = session.execute(query.order_by(table.c.project_id, table.c.scene_index))
    return [SceneKey(*row) for row in rows]


def _contains_tag(dialect: str, column: sa.Column, tag: str) -> sa.ColumnElement[bool]:
    """``column`` (a JSON array of strings) holds ``tag``, in the dialect's own terms."""
    if dialect == "postgresql":
        # jsonb @> '["TAG"]': the operator the GIN index (jsonb_path_ops) answers.
        return sa.type_coerce(column, JSONB).contains([tag])
    if dialect == "sqlite":
        element = sa.func.json_each(column).table_valued("value").alias("tag")
        return sa.exists().select_from(element).where(element.c.value == tag)
    if dialect in ("mysql", "mariadb"):
        return sa.func.json_contains(column, sa.func.json_quote(tag)) == 1
    raise NotImplementedError(f"No tag look-up for the {dialect} dialect")
