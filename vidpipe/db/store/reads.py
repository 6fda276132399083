"""Rebuilding a project's storyboard from its rows."""

import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.store.kinds import SCHEMAS, Storyboard
from vidpipe.db.store.rows import (
    AUDIO_JSON_COLUMNS,
    SavedCopy,
    audio_table,
    manifests_table,
    projects_table,
    same_scene,
    scene_from_row,
    scenes_table,
)
from vidpipe.db.store.validation import describe_errors, project_uuid

__all__ = ["load_storyboard"]

#: The first row of a load (its project's first scene, or the project alone): the project's
#: documents come back on that row only, not once per scene.
_FIRST_ROW = sa.func.row_number().over(order_by=scenes_table.c.scene_index) == 1


def _once(column: sa.Column[Any]) -> sa.Label[Any]:
    return sa.case((_FIRST_ROW, column)).label(column.name)


def load_storyboard(session: Session, project_id: uuid.UUID | str) -> Storyboard | None:
    """Rebuild the project's storyboard from its rows; None if it has none.

    Rows written before revision vidpipe_0004 lack characters and key details (read from
    ``projects.storyboard_raw``, else empty) and the storyboard's kind (read as enhanced when
    its scenes have manifests). ``project_id`` may be a UUID's string form.
    """
    project_id = project_uuid(project_id)
    # One statement, so one snapshot on every dialect: two (the project, then its scenes) could
    # straddle another transaction's commit under PostgreSQL's READ COMMITTED and mix the
    # style guide of one storyboard with the scenes of the next.
    rows = session.execute(
        sa.select(
            _once(projects_table.c.style_guide),
            _once(projects_table.c.characters),
            _once(projects_table.c.storyboard_raw),
            projects_table.c.storyboard_kind,
            projects_table.c.storyboard_raw,
            scenes_table,
            manifests_table.c.manifest_json,
            audio_table.c.scene_index.label("audio_scene_index"),
            *(audio_table.c[name] for name in AUDIO_JSON_COLUMNS),
        )
        .select_from(projects_table)
        .outerjoin(scenes_table, scenes_table.c.project_id == projects_table.c.id)
        .outerjoin(manifests_table, same_scene(manifests_table))
        .outerjoin(audio_table, same_scene(audio_table))
        .where(projects_table.c.id == project_id)
        .order_by(scenes_table.c.scene_index)
    ).all()
    if not rows:
        raise UnknownProjectError(f"No project with id {project_id}")
    project = rows[0]
    # A project without scenes comes back as one row whose scene columns are all NULL.
    rows = [row for row in rows if row.scene_index is not None]
    if project.style_guide is None and not rows:
        return None
    kind = project.storyboard_kind or (
        "enhanced" if any(row.manifest_json is not None for row in rows) else "base"
    )
    enhanced = kind == "enhanced"
    saved = SavedCopy(project.storyboard_raw)
    characters = project.characters
    payload = {
        "style_guide": project.style_guide,
        "characters": saved.characters if characters is None else characters,
        "scenes": [scene_from_row(row, enhanced, project_id, saved) for row in rows],
    }
    try:
        return SCHEMAS[kind].model_validate(payload)
    except ValidationError as exc:
        raise StoryboardError(
            f"The stored rows of project {project_id} do not form a valid storyboard: "
            f"{describe_errors(exc, payload)}"
        ) from None
