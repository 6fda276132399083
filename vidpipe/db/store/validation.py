"""Checks a storyboard passes before any row is written: schema, scene indexes, storable text.

Everything here is pure: no session, no database. Each refusal is a ``StoryboardError`` naming
the scene and field, raised before the store sends anything.
"""

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.store.kinds import KINDS, Storyboard, StoryboardSchema

__all__ = [
    "UNSTORABLE_CHARACTERS",
    "check_scene_indexes",
    "describe_errors",
    "project_uuid",
    "storable_json",
    "validated",
]

#: scene_index is an INTEGER column: 32 bits on every dialect.
MAX_SCENE_INDEX = 2**31 - 1

#: NUL (PostgreSQL text and JSONB refuse it) and lone surrogates (not encodable as UTF-8).
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def project_uuid(project_id: uuid.UUID | str) -> uuid.UUID:
    """A project id as a UUID: the ``uuid.UUID`` itself, or any string form ``UUID()`` reads.

    Converted before any query, so every dialect treats a string id the same way (unconverted,
    PostgreSQL and MariaDB missed the project and SQLite's UUID type failed on it).
    """
    if isinstance(project_id, uuid.UUID):
        return project_id
    if not isinstance(project_id, str):
        raise TypeError(
            f"A project id is a uuid.UUID or its string form, not {type(project_id).__name__}"
        )
    try:
        return uuid.UUID(project_id)
    except ValueError:
        raise UnknownProjectError(
            f"No project with id {project_id!r}: it is not a UUID; nothing was done"
        ) from None


def validated(
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
            f"Invalid {schema.__name__}, nothing was saved: {describe_errors(exc, payload)}"
        ) from None


def describe_errors(exc: ValidationError, payload: Any) -> str:
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


def storable_json(model: Storyboard) -> str:
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


def check_scene_indexes(model: Storyboard) -> None:
    """Scene indexes are distinct, in playing order and fit the column.

    A manifest's own ``scene_index`` may differ from its scene's (Gemini's output does this):
    its rows are keyed by the scene's index, as the backend stores them, and it loads back as
    given.
    """
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
