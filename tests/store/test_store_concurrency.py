"""Saves and loads that run at once, each on a connection of its own, forced into the
interleavings that used to mix storyboards: saves of one project serialise, a load sees one
storyboard whole, and SQLite writers wait for each other instead of failing."""

import multiprocessing
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.support.concurrent_saves import (
    FirstProjectStatement,
    save_after_barrier,
    storyboard,
    wait_for_decision,
)
from tests.support.databases import dialect_params
from tests.support.storyboards import enhanced_storyboard, new_project
from vidpipe.db import create_engine
from vidpipe.db.errors import StoryboardError
from vidpipe.db.models import Scene, SceneAudioManifest, SceneManifest
from vidpipe.db.store import load_storyboard, save_storyboard, scenes_with_asset
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

PROCESSES = 8


def _rows_of(session: Session, project_id: uuid.UUID) -> dict[str, int]:
    return {
        model.__tablename__: session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.project_id == project_id)
        )
        for model in (Scene, SceneManifest, SceneAudioManifest)
    }


def _expected_rows(board: Any) -> dict[str, int]:
    enhanced = isinstance(board, EnhancedStoryboardOutput)
    return {
        "scenes": len(board.scenes),
        "scene_manifests": len(board.scenes) if enhanced else 0,
        "scene_audio_manifests": len(board.scenes) if enhanced else 0,
    }


@pytest.mark.parametrize(
    ("existing", "first", "second"),
    [
        (None, "base", "base"),
        (None, "enhanced", "enhanced"),
        ("base", "enhanced", "base"),
        ("enhanced", "base", "enhanced"),
    ],
    ids=["first-base", "first-enhanced", "base-over-enhanced", "enhanced-over-base"],
)
@pytest.mark.usefixtures("engine_at_head")
def test_two_saves_of_one_project_serialise(
    engine: sa.Engine, database_url: sa.URL, existing: str | None, first: str, second: str
) -> None:
    """The second save starts while the first is uncommitted and decides (or waits) before the
    first commits: it must replace the first whole, or lose with a StoryboardError."""
    with Session(engine) as session:
        project_id = new_project(session)
        if existing:
            save_storyboard(session, project_id, storyboard(existing, 2))
        session.commit()
    first_board, second_board = storyboard(first, 1), storyboard(second, 2)

    first_saved, commit_first = threading.Event(), threading.Event()
    second_done = threading.Event()
    errors: dict[str, BaseException] = {}

    def save(name: str, board: Any, before_commit: Callable[[], None]) -> None:
        own = create_engine(database_url, poolclass=NullPool)
        if name == "second":
            observer_box.append(FirstProjectStatement(own))
        try:
            with Session(own) as session:
                save_storyboard(session, project_id, board)
                before_commit()
                session.commit()
        except BaseException as exc:  # reported to the test thread
            errors[name] = exc
        finally:
            if name == "second":
                second_done.set()
            first_saved.set()  # a first save that failed must not leave the test waiting
            own.dispose()

    observer_box: list[FirstProjectStatement] = []
    first_thread = threading.Thread(
        target=save,
        args=("first", first_board, lambda: (first_saved.set(), commit_first.wait(60))),
    )
    first_thread.start()
    assert first_saved.wait(60)
    second_thread = threading.Thread(target=save, args=("second", second_board, lambda: None))
    second_thread.start()
    while not observer_box:
        second_done.wait(0.01)
    wait_for_decision(observer_box[0], database_url, second_done)
    commit_first.set()
    first_thread.join(60)
    second_thread.join(60)

    assert "first" not in errors, errors
    second_error = errors.get("second")
    if second_error is not None:
        assert isinstance(second_error, StoryboardError), repr(second_error)
        assert "Another save of project" in str(second_error)
    winner = first_board if second_error else second_board
    with Session(engine) as session:
        assert load_storyboard(session, project_id) == winner
        assert _rows_of(session, project_id) == _expected_rows(winner)
        tagged = scenes_with_asset(session, "CHAR_01", project_id)
        # Every enhanced scene places CHAR_01 or CHAR_10; scene 0 places CHAR_01.
        assert len(tagged) == (1 if isinstance(winner, EnhancedStoryboardOutput) else 0)


@pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)
@pytest.mark.usefixtures("engine_at_head")
def test_a_save_that_lost_under_repeatable_read_says_another_save_won(
    engine: sa.Engine, database_url: sa.URL
) -> None:
    """A REPEATABLE READ transaction cannot lock a project saved after its snapshot."""
    with Session(engine) as session:
        project_id = new_project(session)
        session.commit()
    repeatable = create_engine(database_url, poolclass=NullPool, isolation_level="REPEATABLE READ")
    try:
        with Session(repeatable) as late:
            late.execute(sa.text("SELECT 1 FROM projects"))  # the snapshot starts here
            with Session(engine) as early:
                save_storyboard(early, project_id, storyboard("base", 1))
                early.commit()
            with pytest.raises(StoryboardError, match="Another save of project"):
                save_storyboard(late, project_id, storyboard("enhanced", 2))
    finally:
        repeatable.dispose()
    with Session(engine) as session:
        assert load_storyboard(session, project_id) == storyboard("base", 1)


@pytest.mark.parametrize(("old", "new"), [("base", "enhanced"), ("enhanced", "base")])
@pytest.mark.usefixtures("engine_at_head")
def test_a_load_sees_the_old_storyboard_or_the_new_one_whole(
    engine: sa.Engine, database_url: sa.URL, old: str, new: str
) -> None:
    """Another connection commits a new storyboard right after the load's first statement."""
    old_board = storyboard(old, 1)
    new_board = storyboard(new, 2).model_copy(
        update={
            "style_guide": old_board.style_guide.model_copy(update={"visual_style": "noir"})
        }
    )
    with Session(engine) as session:
        project_id = new_project(session)
        save_storyboard(session, project_id, old_board)
        session.commit()

    def commit_new_storyboard() -> None:
        writer = create_engine(database_url, poolclass=NullPool)
        with Session(writer) as session:
            save_storyboard(session, project_id, new_board)
            session.commit()
        writer.dispose()

    reader = create_engine(database_url, poolclass=NullPool)
    interrupted = []

    @event.listens_for(reader, "after_cursor_execute")
    def interleave(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not interrupted:
            interrupted.append(statement)
            writer = threading.Thread(target=commit_new_storyboard)
            writer.start()
            writer.join(60)

    try:
        with Session(reader) as session:
            loaded = load_storyboard(session, project_id)
    finally:
        reader.dispose()
    assert interrupted
    assert loaded in (old_board, new_board)
    with Session(engine) as session:  # the writer did commit in between
        assert load_storyboard(session, project_id) == new_board


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
@pytest.mark.usefixtures("engine_at_head")
def test_eight_processes_saving_into_one_sqlite_file_wait_their_turn(
    engine: sa.Engine, database_url: sa.URL
) -> None:
    """While another connection holds SQLite's write lock, eight processes (vidpipe's engine,
    plain Sessions) each reach their save; all eight must wait, then succeed."""
    with Session(engine) as session:
        projects = [str(new_project(session)) for _ in range(PROCESSES)]
        session.commit()
    # fork: the children start at once. The holder connects only after the fork, so no child
    # inherits an open SQLite connection (SQLite's lock bookkeeping is per process).
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(PROCESSES + 1)
    reached = fork.Queue()
    url = database_url.render_as_string(hide_password=False)
    processes = [
        fork.Process(target=save_after_barrier, args=(url, p, barrier, reached), daemon=True)
        for p in projects
    ]
    for process in processes:
        process.start()
    holder = sqlite3.connect(database_url.database, isolation_level=None, timeout=60)
    try:
        holder.execute("BEGIN IMMEDIATE")
        barrier.wait(timeout=60)
        arrived = set()
        while len(arrived) < PROCESSES and any(p.is_alive() for p in processes):
            try:
                arrived.add(reached.get(timeout=0.1))
            except queue.Empty:  # keep watching for processes that died
                continue
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.kill()

    assert [process.exitcode for process in processes] == [0] * PROCESSES
    with Session(engine) as session:
        for project_id in projects:
            assert load_storyboard(session, uuid.UUID(project_id)) == enhanced_storyboard(0, 1, 2)


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
@pytest.mark.usefixtures("engine_at_head")
def test_a_sqlite_save_after_a_read_that_cannot_wait_says_why(
    engine: sa.Engine, database_url: sa.URL
) -> None:
    """A transaction that read before saving cannot wait for SQLite's write lock: a clear
    StoryboardError, and the caller's transaction can still roll back and retry."""
    with Session(engine) as session:
        project_id = new_project(session)
        session.commit()
    holder = sqlite3.connect(database_url.database, isolation_level=None, timeout=60)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with Session(engine) as session:
            session.execute(sa.text("SELECT count(*) FROM projects"))  # a read comes first
            with pytest.raises(StoryboardError, match="could not wait"):
                save_storyboard(session, project_id, storyboard("base", 1))
            session.rollback()
            holder.execute("ROLLBACK")
            save_storyboard(session, project_id, storyboard("base", 1))
            session.commit()
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    with Session(engine) as session:
        assert load_storyboard(session, project_id) == storyboard("base", 1)
