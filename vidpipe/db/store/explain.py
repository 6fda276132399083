"""Database errors of a save, translated into errors that name the scenes and what to do."""

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vidpipe.db.errors import StoryboardError
from vidpipe.db.models import Keyframe, Scene, VideoClip

__all__ = ["explain_integrity_error", "explain_lost_race"]

#: SQLSTATEs of a transaction that lost to a concurrent one: PostgreSQL's serialization failure
#: (REPEATABLE READ, SERIALIZABLE) and deadlock.
_POSTGRESQL_LOST_RACE = {"40001", "40P01"}
#: MariaDB/MySQL's deadlock: InnoDB then rolls back the victim's whole transaction, SAVEPOINT and
#: all, so the savepoint's own rollback fails next (1305, "SAVEPOINT ... does not exist").
_MYSQL_DEADLOCK = 1213
#: Duplicate key: PostgreSQL's SQLSTATE, MariaDB/MySQL's error number, SQLite's message.
_POSTGRESQL_UNIQUE_VIOLATION = "23505"
_MYSQL_DUPLICATE_KEY = 1062
_SQLITE_UNIQUE_VIOLATION = "UNIQUE constraint failed"


def explain_integrity_error(
    session: Session, project_ids: list[uuid.UUID], exc: IntegrityError
) -> StoryboardError | IntegrityError:
    """Name the scenes whose keyframes or clips kept an old storyboard from being replaced,
    or the projects whose scenes another transaction wrote at the same time."""
    if _is_duplicate_key(exc):
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
    dialect: str, project_ids: list[uuid.UUID], exc: OperationalError
) -> StoryboardError | OperationalError:
    """Say that another transaction saved first, when the database refused this one for that.

    PostgreSQL refuses to lock a row changed after a REPEATABLE READ or SERIALIZABLE snapshot;
    SQLite refuses the write lock to a transaction that read before another one wrote (or
    after the busy timeout). Anything else is returned as it is.
    """
    if dialect == "postgresql" and getattr(exc.orig, "sqlstate", None) in _POSTGRESQL_LOST_RACE:
        return _lost_race(project_ids)
    if dialect in ("mysql", "mariadb") and _in_chain(exc, _MYSQL_DEADLOCK):
        return StoryboardError(
            f"MariaDB/MySQL found a deadlock between the save of project {_named(project_ids)} "
            "and another transaction (InnoDB's gap locks: concurrent saves that replace "
            "stored storyboards can meet in them) and rolled back this whole transaction, "
            "including the caller's earlier work. Nothing was saved: roll back the session and "
            "retry the transaction"
        )
    if dialect == "sqlite" and "database is locked" in str(exc.orig):
        return StoryboardError(
            f"Another connection was writing to the SQLite database while the storyboard of "
            f"project {_named(project_ids)} was being saved, and this transaction could not wait "
            "for it: it had read before saving (or waited longer than the busy timeout). "
            "Nothing was saved: roll back and retry, saving before reading in the same "
            "transaction or beginning it with BEGIN IMMEDIATE (README: Storing storyboards)"
        )
    return exc


def _lost_race(project_ids: list[uuid.UUID]) -> StoryboardError:
    return StoryboardError(
        f"Another save of project {_named(project_ids)} won: it committed a storyboard after "
        "this transaction began. Nothing was saved: roll back, and retry to replace it"
    )


def _named(project_ids: list[uuid.UUID], shown: int = 5) -> str:
    """The projects of a save; a large batch by its first few ids and a count."""
    ids = sorted(project_ids)
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(map(str, ids[:shown])) + more


def _in_chain(exc: BaseException, errno: int) -> bool:
    """Whether a driver error with MariaDB/MySQL error number ``errno`` caused ``exc``."""
    seen: BaseException | None = exc
    while seen is not None:
        orig = getattr(seen, "orig", seen)
        if (getattr(orig, "args", None) or [None])[0] == errno:
            return True
        seen = seen.__context__
    return False


def _is_duplicate_key(exc: IntegrityError) -> bool:
    orig = exc.orig
    return (
        getattr(orig, "sqlstate", None) == _POSTGRESQL_UNIQUE_VIOLATION
        or (getattr(orig, "args", None) or [None])[0] == _MYSQL_DUPLICATE_KEY
        or _SQLITE_UNIQUE_VIOLATION in str(orig)
    )
