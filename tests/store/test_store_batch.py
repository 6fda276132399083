"""storyboard_batch: many saves written at once, all or nothing, on every dialect."""

import uuid

import pytest
from sqlalchemy.orm import Session

from tests.support.storyboards import base_storyboard, enhanced_storyboard, new_project, stored_rows
from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.store import load_storyboard, save_storyboard, storyboard_batch


def test_a_batch_stores_every_storyboard(session: Session) -> None:
    projects = [new_project(session) for _ in range(3)]
    storyboards = [enhanced_storyboard(0, 1, 2), base_storyboard(0), enhanced_storyboard(4)]
    with storyboard_batch(session):
        for project_id, storyboard in zip(projects, storyboards, strict=True):
            save_storyboard(session, project_id, storyboard)
        assert stored_rows(session)["scenes"] == []  # nothing written before the block ends
    session.commit()
    assert [load_storyboard(session, p) for p in projects] == storyboards


def test_the_later_save_of_a_project_in_a_batch_wins(session: Session) -> None:
    project_id = new_project(session)
    with storyboard_batch(session):
        save_storyboard(session, project_id, enhanced_storyboard(0, 1))
        save_storyboard(session, project_id, base_storyboard(3))
    assert load_storyboard(session, project_id) == base_storyboard(3)


def test_an_unknown_project_fails_the_whole_batch(session: Session) -> None:
    known = new_project(session)
    save_storyboard(session, known, base_storyboard(0))
    before = stored_rows(session)
    stranger = uuid.uuid4()
    with pytest.raises(UnknownProjectError, match=str(stranger)), storyboard_batch(session):
        save_storyboard(session, known, enhanced_storyboard(5, 6))
        save_storyboard(session, stranger, base_storyboard(0))
    assert stored_rows(session) == before


def test_an_error_inside_the_block_discards_the_batch(session: Session) -> None:
    project_id = new_project(session)
    before = stored_rows(session)
    with pytest.raises(RuntimeError, match="caller"), storyboard_batch(session):
        save_storyboard(session, project_id, base_storyboard(0))
        raise RuntimeError("the caller gave up")
    assert stored_rows(session) == before
    save_storyboard(session, project_id, base_storyboard(1))  # the session is usable again
    assert load_storyboard(session, project_id) == base_storyboard(1)


def test_batches_do_not_nest(session: Session) -> None:
    with (
        pytest.raises(StoryboardError, match="nested"),
        storyboard_batch(session),
        storyboard_batch(session),
    ):
        pass
