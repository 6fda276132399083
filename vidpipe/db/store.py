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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.models import Keyframe, Project, Scene, SceneAudioManifest, SceneManifest, VideoClip
from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedSceneSchema, EnhancedStoryboardOutput

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

_BATCH_KEY = "vidpipe.storyboard_batch"
_projects = Project.__table__
_scenes = Scene.__table__
_manifests = SceneManifest.__table__
_audio = SceneAudioManifest.__table__
_RAW_JSON_TEXT = sa.Column("storyboard_raw", sa.Text())
#: Children first: the order their old rows are deleted in.
_STORYBOARD_TABLES = (_audio, _manifests, _scenes)


def _string_width(column: sa.Column[Any]) -> int:
    if not isinstance(column.type, sa.String) or column.type.length is None:
        raise TypeError(f"{column} is not a String of fixed width")
    return column.type.length


#: The widths of the denormalised composition columns, read once from the model.
_COMPOSITION_LIMITS = {
    field: _string_width(_manifests.c[f"composition_{field}"])
    for field in ("shot_type", "camera_movement")
}


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

    Inside :func:`storyboard_batch` the writes wait for the end of the batch, where every
    storyboard saved in it is written together.
    """
    prepared = _prepare(project_id, storyboard, schema)
    pending = session.info.get(_BATCH_KEY)
    if pending is None:
        _write(session, [prepared])
    else:
        pending[project_id] = prepared  # saved twice in one batch: the later one wins
    return prepared.model


@contextmanager
def storyboard_batch(session: Session) -> Iterator[None]:
    """Defer the writes of every ``save_storyboard`` in the block to its end, then do them at once.

    Saving many storyboards (a backfill, a regeneration of many projects) then costs one look-up,
    one UPDATE, the DELETEs of what is replaced and three INSERT executemanys in all, instead of
    that many per storyboard.
    Validation errors still raise at the ``save_storyboard`` call; database errors (an unknown
    project, scenes whose keyframes block a replacement) raise when the block ends, and then
    nothing of the batch is written. An exception inside the block discards the batch.
    """
    if _BATCH_KEY in session.info:
        raise StoryboardError("storyboard_batch blocks cannot be nested")
    pending: dict[uuid.UUID, _Prepared] = {}
    session.info[_BATCH_KEY] = pending
    try:
        yield
    finally:
        del session.info[_BATCH_KEY]
    if pending:
        _write(session, list(pending.values()))


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
    """The scenes whose manifest places ``asset_tag``, optionally within one project, sorted."""
    return _scenes_with_tag(session, _manifests.c.asset_tags, asset_tag, project_id)


def scenes_with_speaker(
    session: Session, speaker_tag: str, project_id: uuid.UUID | None = None
) -> list[SceneKey]:
    """The scenes in which ``speaker_tag`` speaks a line, optionally within one project, sorted."""
    return _scenes_with_tag(session, _audio.c.speaker_tags, speaker_tag, project_id)


class _Prepared(NamedTuple):
    """A validated storyboard and the rows that store it."""

    project_id: uuid.UUID
    model: Storyboard
    project_values: dict[str, Any]
    scene_rows: list[dict[str, Any]]
    manifest_rows: list[dict[str, Any]]
    audio_rows: list[dict[str, Any]]


def _prepare(
    project_id: uuid.UUID,
    storyboard: Storyboard | Mapping[str, Any] | str | bytes,
    schema: StoryboardSchema | None,
) -> _Prepared:
    """Validate and check the storyboard and compute its rows; touches no database."""
    model = _validated(storyboard, schema)
    data = model.model_dump(mode="json")
    raw_json = _storable_json(model)
    _check_scene_indexes(model)
    enhanced = isinstance(model, EnhancedStoryboardOutput)
    project_values = {
        "project_key": project_id,
        "style_guide": data["style_guide"],
        "characters": data["characters"],
        "storyboard_kind": KINDS[type(model)],
        "storyboard_raw": raw_json,
    }
    return _Prepared(
        project_id, model, project_values, *_rows(project_id, data["scenes"], enhanced)
    )


def _write(session: Session, storyboards: list[_Prepared]) -> None:
    """Replace the storyboards of these projects: set-based statements inside one SAVEPOINT."""
    session.flush()  # projects added but not yet flushed must be visible below
    project_ids = [prepared.project_id for prepared in storyboards]
    try:
        with session.begin_nested():
            connection = session.connection()
            # One query says which projects exist and which tables hold rows of theirs, so a
            # first save (the common case) sends no DELETE at all.
            holds = [
                sa.exists().where(table.c.project_id == _projects.c.id).label(table.name)
                for table in _STORYBOARD_TABLES
            ]
            found = connection.execute(
                sa.select(_projects.c.id, *holds).where(_projects.c.id.in_(project_ids))
            ).all()
            missing = set(project_ids) - {row.id for row in found}
            if missing:
                raise UnknownProjectError(
                    f"No project with id {', '.join(map(str, sorted(missing)))}: nothing was saved"
                )
            _update_projects(connection, [prepared.project_values for prepared in storyboards])
            for table in _STORYBOARD_TABLES:
                if any(row._mapping[table.name] for row in found):
                    connection.execute(sa.delete(table).where(table.c.project_id.in_(project_ids)))
            for table, rows in (
                (_scenes, [row for p in storyboards for row in p.scene_rows]),
                (_manifests, [row for p in storyboards for row in p.manifest_rows]),
                (_audio, [row for p in storyboards for row in p.audio_rows]),
            ):
                if rows:
                    _insert_many(connection, table, rows)
    except IntegrityError as exc:
        raise _explain_integrity_error(session, project_ids, exc) from exc
    _expire_projects(session, set(project_ids))


def _insert_many(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    names = list(rows[0])
    statement = sa.insert(table).values({name: sa.bindparam(name) for name in names})
    _executemany(connection, statement, {name: table.c[name] for name in names}, rows)


def _update_projects(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    names = [name for name in rows[0] if name != "project_key"]
    statement = (
        sa.update(_projects)
        .where(_projects.c.id == sa.bindparam("project_key"))
        .values({name: sa.bindparam(name) for name in names})
    )
    columns = {
        "project_key": _projects.c.id,
        **{name: _projects.c[name] for name in names},
        # Already JSON text (_storable_json): bound as text, into the column's own SQL (with its
        # ::JSONB cast on PostgreSQL), so the largest document is not serialised a second time.
        "storyboard_raw": _RAW_JSON_TEXT,
    }
    _executemany(connection, statement, columns, rows)


def _executemany(
    connection: sa.Connection,
    statement: sa.Insert | sa.Update,
    columns: dict[str, sa.Column[Any]],
    rows: list[dict[str, Any]],
) -> None:
    """One driver-level executemany, values converted by SQLAlchemy's own type processors.

    Core's per-row parameter handling cost more than the database's work for these rows; the
    processors (UUID, JSON, booleans, per dialect) are looked up once per column instead.
    """
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)
    names = list(compiled.positiontup or []) if compiled.positional else list(columns)
    # Column by column with map() and zip(): C loops, where row-by-row Python dominated.
    values = []
    for name in names:
        column = list(map(itemgetter(name), rows))
        process = columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        values.append(list(map(process, column)) if process else column)
    parameters: list[Any] = list(zip(*values, strict=True))
    if not compiled.positional:
        parameters = [dict(zip(names, row, strict=True)) for row in parameters]
    connection.exec_driver_sql(compiled.string, parameters)


def _expire_projects(session: Session, project_ids: set[uuid.UUID]) -> None:
    """Loaded Project objects re-read the columns the store changed behind the ORM's back."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Project) and obj.id in project_ids:
            session.expire(obj, ["style_guide", "characters", "storyboard_kind", "storyboard_raw"])


def _validated(
    storyboard: Storyboard | Mapping[str, Any] | str | bytes, schema: StoryboardSchema | None
) -> Storyboard:
    """The storyboard as a model of its schema: raw output is validated, a model is taken as is.

    A model instance is trusted as Pydantic itself trusts one (its default is never to
    revalidate instances): revalidating every saved storyboard cost more than writing it.
    """
    if isinstance(storyboard, BaseModel):
        if schema in (None, type(storyboard)) and type(storyboard) in KINDS:
            return storyboard
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


def _storable_json(model: Storyboard) -> str:
    """The storyboard as JSON text, after refusing text that some dialect cannot store.

    pydantic-core writes NUL as \\u0000 and fails on a lone surrogate, so one serialisation
    both finds the (rare) storyboard that needs the walk naming the field, the same way on
    every dialect, and gives ``storyboard_raw`` its text, which is stored as it is.
    """
    try:
        text = model.model_dump_json()
    except PydanticSerializationError:
        text = None
    if text is None or "\\u0000" in text:
        _find_unstorable(model.model_dump(mode="json"), "")
    if text is None:  # the walk found nothing; only a lone surrogate stops pydantic-core
        raise StoryboardError("storyboard: cannot be serialised as JSON; nothing was saved")
    return text


def _find_unstorable(data: Any, path: str) -> None:
    if isinstance(data, str):
        if UNSTORABLE_CHARACTERS.search(data):
            raise StoryboardError(
                f"{path}: contains a NUL character or a lone surrogate, which cannot be stored; "
                "nothing was saved"
            )
    elif isinstance(data, dict):
        for key, value in data.items():
            _find_unstorable(value, f"{path}.{key}" if path else key)
    elif isinstance(data, list):
        for position, value in enumerate(data):
            _find_unstorable(value, f"{path}[{position}]")


def _check_scene_indexes(model: Storyboard) -> None:
    """Scene indexes are distinct, in playing order, fit the column and match the manifests."""
    enhanced = isinstance(model, EnhancedStoryboardOutput)
    seen: dict[int, int] = {}
    previous = -1  # scenes must ascend, so the previous index is the largest so far
    for position, scene in enumerate(model.scenes):
        index = scene.scene_index
        if not 0 <= index <= MAX_SCENE_INDEX:
            raise StoryboardError(
                f"scenes[{position}].scene_index: {index} is out of range (scene indexes count "
                "from 0 and fit in 32 bits); nothing was saved"
            )
        if index in seen:
            raise StoryboardError(
                f"scenes[{position}].scene_index: duplicate scene_index {index} (also "
                f"scenes[{seen[index]}]); nothing was saved"
            )
        if index < previous:
            raise StoryboardError(
                f"scenes[{position}].scene_index: {index} comes after scene_index {previous}; "
                "scenes must be listed in playing order; nothing was saved"
            )
        seen[index] = position
        previous = index
        # The isinstance only tells the type checker: an enhanced storyboard's scenes all are.
        if enhanced and isinstance(scene, EnhancedSceneSchema):
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
    limit = _COMPOSITION_LIMITS[field]
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


def _scene_from_row(row: sa.Row[Any], enhanced: bool, project_id: uuid.UUID) -> dict[str, Any]:
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
    session: Session, project_ids: list[uuid.UUID], exc: IntegrityError
) -> StoryboardError | IntegrityError:
    """Name the scenes whose keyframes or clips kept an old storyboard from being replaced."""
    in_use = session.execute(
        sa.select(Scene.project_id, Scene.scene_index)
        .where(
            Scene.project_id.in_(project_ids),
            sa.or_(
                sa.exists().where(Keyframe.scene_id == Scene.id),
                sa.exists().where(VideoClip.scene_id == Scene.id),
            ),
        )
        .order_by(Scene.project_id, Scene.scene_index)
    ).all()
    if not in_use:
        return exc
    by_project: dict[uuid.UUID, list[str]] = {}
    for project_id, scene_index in in_use:
        by_project.setdefault(project_id, []).append(str(scene_index))
    described = "; ".join(
        f"project {project_id}'s stored scenes {', '.join(indexes)}"
        for project_id, indexes in by_project.items()
    )
    return StoryboardError(
        f"{described} have keyframes or video clips, which belong to the old storyboard: "
        "delete them (and their files) before saving a new storyboard; nothing was saved"
    )


def _scenes_with_tag(
    session: Session, column: sa.Column[Any], tag: str, project_id: uuid.UUID | None
) -> list[SceneKey]:
    table = column.table
    query = sa.select(table.c.project_id, table.c.scene_index).where(
        _contains_tag(session.get_bind().dialect.name, column, tag)
    )
    if project_id is not None:
        query = query.where(table.c.project_id == project_id)
    # Sorted here, not by the database: MariaDB orders native UUIDs by their time fields, so
    # ORDER BY would give each dialect its own order.
    return sorted(SceneKey(*row) for row in session.execute(query))


def _contains_tag(dialect: str, column: sa.Column[Any], tag: str) -> sa.ColumnElement[bool]:
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
