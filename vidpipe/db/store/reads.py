"""Rebuilding a project's storyboard from its rows."""

import uuid

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.models import Project
from vidpipe.db.store.kinds import SCHEMAS, Storyboard
from vidpipe.db.store.rows import (
    AUDIO_JSON_COLUMNS,
    audio_table,
    manifests_table,
    same_scene,
    scene_from_row,
    scenes_table,
)
from vidpipe.db.store.validation import describe_errors

__all__ = ["load_storyboard"]


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
            scenes_table,
            manifests_table.c.manifest_json,
            audio_table.c.scene_index.label("audio_scene_index"),
            *(audio_table.c[name] for name in AUDIO_JSON_COLUMNS),
        )
        .outerjoin(manifests_table, same_scene(manifests_table))
        .outerjoin(audio_table, same_scene(audio_table))
        .where(scenes_table.c.project_id == project_id)
        .order_by(scenes_table.c.scene_index)
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
        "scenes": [scene_from_row(row, enhanced, project_id) for row in rows],
    }
    try:
        return SCHEMAS[kind].model_validate(payload)
    except ValidationError as exc:
        raise StoryboardError(
            f"The stored rows of project {project_id} do not form a valid storyboard: "
            f"{describe_errors(exc, payload)}"
        ) from None
