"""Database errors of a save, translated into errors that name the scenes and what to do."""

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vidpipe.db.dialects import ANOTHER_SAVE_WON, dialect_for
from vidpipe.db.errors import StoryboardError
from vidpipe.db.models import Keyframe, Scene, VideoClip

__all__ = ["explain_integrity_error", "explain_lost_race"]


def explain_integrity_error(
    session: Session, project_ids: list[uuid.UUID], exc: IntegrityError
) -> StoryboardError | IntegrityError:
    """Name the scenes whose keyframes or clips kept an old storyboard from being replaced,
    or the projects whose scenes another transaction wrote at the same time."""
    if dialect_for(session.get_bind().dialect).is_duplicate_key(exc):
        return _lost_race(project_ids)
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


def explain_lost_race(
    session: Session, project_ids: list[uuid.UUID], exc: OperationalError
) -> StoryboardError | OperationalError:
    """Say that another transaction saved first, when the database refused this one for that
    (each dialect knows how it says so: ``lost_race``); anything else is returned as it is."""
    message = dialect_for(session.get_bind().dialect).lost_race(exc)
    if message is None:
        return exc
    return StoryboardError(message.format(projects=_named(project_ids)))


def _lost_race(project_ids: list[uuid.UUID]) -> StoryboardError:
    return StoryboardError(ANOTHER_SAVE_WON.format(projects=_named(project_ids)))


def _named(project_ids: list[uuid.UUID], shown: int = 5) -> str:
    """The projects of a save; a large batch by its first few ids and a count."""
    ids = sorted(project_ids)
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(map(str, ids[:shown])) + more
