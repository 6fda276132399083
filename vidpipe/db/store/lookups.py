"""Finding scenes by the tags their manifests hold, with each dialect's JSON operators.

A tag matches whole, exactly and case-sensitively, whatever its characters: accents, emoji,
right-to-left text, quotes, backslashes, trailing spaces. ``HoldsTag`` is the one construct
that says so; each dialect compiles it its own way (``tags_contain``, vidpipe.db.dialects).
"""

import uuid
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import StoryboardError
from vidpipe.db.store.rows import audio_table, manifests_table
from vidpipe.db.store.validation import UNSTORABLE_CHARACTERS, project_uuid

__all__ = ["HoldsTag", "SceneKey", "scenes_with_asset", "scenes_with_speaker"]


class SceneKey(NamedTuple):
    """A scene's identity across the storyboard tables."""

    project_id: uuid.UUID
    scene_index: int


def scenes_with_asset(
    session: Session, asset_tag: str, project_id: uuid.UUID | str | None = None
) -> list[SceneKey]:
    """The scenes whose manifest places ``asset_tag``, optionally within one project, sorted.

    A match is whole, exact and case-sensitive, whatever the tag's characters, on every
    dialect (each compiles ``HoldsTag`` its own way).

    Args:
        session: A sync ``Session``.
        asset_tag: The tag, e.g. ``"CHAR_01"``.
        project_id: Only this project's scenes; None: every project's.

    Returns:
        ``SceneKey(project_id, scene_index)`` of each scene, sorted.

    Raises:
        TypeError: The tag is not a string.
        StoryboardError: The tag holds NUL or a lone surrogate (no stored tag can); raised
            before anything is sent.
    """
    return _scenes_with_tag(session, manifests_table.c.asset_tags, asset_tag, project_id)


def scenes_with_speaker(
    session: Session, speaker_tag: str, project_id: uuid.UUID | str | None = None
) -> list[SceneKey]:
    """The scenes in which ``speaker_tag`` speaks a line, optionally within one project, sorted.

    Takes the same arguments, returns and raises as ``scenes_with_asset``.
    """
    return _scenes_with_tag(session, audio_table.c.speaker_tags, speaker_tag, project_id)


def _scenes_with_tag(
    session: Session, column: sa.Column[Any], tag: str, project_id: uuid.UUID | str | None
) -> list[SceneKey]:
    _check_tag(tag)
    table = column.table
    query = sa.select(table.c.project_id, table.c.scene_index).where(HoldsTag(column, tag))
    if project_id is not None:
        query = query.where(table.c.project_id == project_uuid(project_id))
    # Sorted here, not by the database: MariaDB orders native UUIDs by their time fields, so
    # ORDER BY would give each dialect its own order.
    return sorted(SceneKey(*row) for row in session.execute(query))


def _check_tag(tag: object) -> None:
    """Refuse before sending: on PostgreSQL a NUL in a JSONB value aborts the whole transaction."""
    if not isinstance(tag, str):
        raise TypeError(f"A tag is a str, not {type(tag).__name__}")
    if UNSTORABLE_CHARACTERS.search(tag):
        raise StoryboardError(
            f"Tag {tag!r} contains a NUL character or a lone surrogate, which no stored tag can "
            "hold; nothing was looked up"
        )


class HoldsTag(ColumnElement[bool]):
    """``column``, a JSON array of strings, holds ``tag`` as one of its elements.

    Compiled by the dialect (``tags_contain``); a dialect vidpipe has no module for raises
    ``NotImplementedError`` rather than guessing.
    """

    type = sa.Boolean()
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's cache-key protocol
        ("column", InternalTraversal.dp_clauseelement),
        ("tag", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: sa.ColumnElement[Any], tag: str) -> None:
        self.column = column
        self.tag = sa.bindparam(None, tag, type_=sa.String(), unique=True)


@compiles(HoldsTag)
def _holds_tag(element: HoldsTag, compiler: SQLCompiler, **kw: Any) -> str:
    return dialect_for(compiler.dialect).tags_contain(element.column, element.tag, compiler, **kw)
