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


def _first_row(project_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """The first row of a load: the project's first scene, or the project alone.

    The project's documents come back on that row only. Compared with the first scene's index
    (a scalar subquery the database evaluates once), not numbered with ``row_number()``: a window
    function makes SQLite and MariaDB materialise every row with the project's columns on it,
    copying ``storyboard_raw``, which grows with the scenes, once per scene.
    """
    first_scenes = scenes_table.alias("first_scenes")
    first_index = (
        sa.select(sa.func.min(first_scenes.c.scene_index))
        .where(first_scenes.c.project_id == project_id)
        .scalar_subquery()
    )
    return sa.or_(scenes_table.c.scene_index.is_(None), scenes_table.c.scene_index == first_index)


def _once(column: sa.Column[Any], first_row: sa.ColumnElement[bool]) -> sa.Label[Any]:
    return sa.case((first_row, column)).label(column.name)


def load_storyboard(session: Session, project_id: uuid.UUID | str) -> Storyboard | None:
    """Rebuild the project's storyboard from its rows, in one statement (one snapshot).

    Rows written before revision vidpipe_0004 lack characters and key details (read from
    ``projects.storyboard_raw``, else empty) and the storyboard's kind (read as enhanced when
    its scenes have manifests).

    Args:
        session: A sync ``Session``.
        project_id: The project's id, a ``uuid.UUID`` or its string form.

    Returns:
        A ``StoryboardOutput`` or ``EnhancedStoryboardOutput``, equal to the one saved; None
        if the project has no storyboard.

    Raises:
        UnknownProjectError: No project has that id.
        StoryboardError: The stored rows do not form a valid storyboard.
    """
    project_id = project_uuid(project_id)
    # One statement, so one snapshot on every dialect: two (the project, then its scenes) could
    # straddle another transaction's commit under PostgreSQL's READ COMMITTED and mix the
    # style guide of one storyboard with the scenes of the next.
    first_row = _first_row(project_id)
    rows = session.execute(
        sa.select(
            _once(projects_table.c.style_guide, first_row),
            _once(projects_table.c.characters, first_row),
            _once(projects_table.c.storyboard_raw, first_row),
            projects_table.c.storyboard_kind,
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
