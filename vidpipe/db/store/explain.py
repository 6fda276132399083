"""Database errors of a save, translated into errors that name the scenes and what to do."""

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidpipe.db.errors import StoryboardError
from vidpipe.db.models import Keyframe, Scene, VideoClip

__all__ = ["explain_integrity_error"]


def explain_integrity_error(
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
