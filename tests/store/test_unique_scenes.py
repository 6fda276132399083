"""vidpipe_0005: the database refuses a second scenes row for the same scene, and databases
that already hold such duplicates are refused, named and left unchanged."""

import uuid

import pytest
import sqlalchemy as sa

from tests.support.revisions import HEAD
from tests.support.rows import PROJECT_ID, insert_rows, read_rows
from tests.support.schema_snapshot import snapshot
from vidpipe.db import DuplicateRows, current_revision, upgrade
from vidpipe.db.models import Scene

BEFORE_UNIQUENESS = "vidpipe_0004"


def _scene_row(index: int, description: str) -> dict:
    return {
        "id": uuid.uuid4(),
        "project_id": PROJECT_ID,
        "scene_index": index,
        "scene_description": description,
        "start_frame_prompt": "s",
        "end_frame_prompt": "e",
        "video_motion_prompt": "m",
        "status": "pending",
    }


@pytest.mark.usefixtures("engine_at_head")
def test_a_second_row_for_the_same_scene_is_refused(engine: sa.Engine) -> None:
    insert_rows(engine, ("manifests", "projects", "scenes"))  # scene 0 of PROJECT_ID
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.insert(Scene), _scene_row(0, "a second storyboard's scene 0"))
    with engine.begin() as connection:  # another index of the same project is fine
        connection.execute(sa.insert(Scene), _scene_row(1, "scene 1"))


def test_a_database_holding_duplicate_scenes_is_refused_and_left_as_it_was(
    engine: sa.Engine,
) -> None:
    upgrade(engine, BEFORE_UNIQUENESS)
    insert_rows(engine, ("manifests", "projects", "scenes"))
    with engine.begin() as connection:
        connection.execute(
            sa.insert(Scene),
            [_scene_row(0, "mixed in"), _scene_row(2, "two"), _scene_row(2, "two again")],
        )
    schema_before = snapshot(engine)
    rows_before = read_rows(engine, ("scenes",))

    with pytest.raises(DuplicateRows) as refused:
        upgrade(engine)

    assert refused.value.table == "scenes"
    assert refused.value.columns == ("project_id", "scene_index")
    assert refused.value.duplicates == [(PROJECT_ID, 0), (PROJECT_ID, 2)]
    message = str(refused.value)
    assert f"project_id {PROJECT_ID}, scene_index 0 (2 rows)" in message
    assert f"project_id {PROJECT_ID}, scene_index 2 (2 rows)" in message
    assert current_revision(engine) == BEFORE_UNIQUENESS
    assert snapshot(engine) == schema_before
    assert read_rows(engine, ("scenes",)) == rows_before


def test_once_the_duplicates_are_removed_the_upgrade_completes(engine: sa.Engine) -> None:
    upgrade(engine, BEFORE_UNIQUENESS)
    insert_rows(engine, ("manifests", "projects", "scenes"))
    extra = _scene_row(0, "mixed in")
    with engine.begin() as connection:
        connection.execute(sa.insert(Scene), extra)
    with pytest.raises(DuplicateRows):
        upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.delete(Scene).where(Scene.id == extra["id"]))
    upgrade(engine)
    assert current_revision(engine) == HEAD
