"""Finding scenes by the tags their manifests hold, with each dialect's JSON operators."""

import uuid
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from vidpipe.db.store.rows import audio_table, manifests_table

__all__ = ["SceneKey", "scenes_with_asset", "scenes_with_speaker"]


class SceneKey(NamedTuple):
    """A scene's identity across the storyboard tables."""

    project_id: uuid.UUID
    scene_index: int


def scenes_with_asset(
    session: Session, asset_tag: str, project_id: uuid.UUID | None = None
) -> list[SceneKey]:
    """The scenes whose manifest places ``asset_tag``, optionally within one project, sorted."""
    return _scenes_with_tag(session, manifests_table.c.asset_tags, asset_tag, project_id)


def scenes_with_speaker(
    session: Session, speaker_tag: str, project_id: uuid.UUID | None = None
) -> list[SceneKey]:
    """The scenes in which ``speaker_tag`` speaks a line, optionally within one project, sorted."""
    return _scenes_with_tag(session, audio_table.c.speaker_tags, speaker_tag, project_id)


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
