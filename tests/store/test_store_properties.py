"""Property-based tests of the store: any valid storyboard round-trips, any broken one is refused.

Example counts are modest: every example runs against a real database, on three dialects.
"""

import copy
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tests.support.storyboard_strategies import EXAMPLES, any_storyboard, storyboards
from tests.support.storyboards import new_project, stored_rows
from vidpipe.db.errors import StoryboardError
from vidpipe.db.store import load_storyboard, save_storyboard
from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput


@EXAMPLES
@given(storyboard=any_storyboard)
def test_any_valid_storyboard_loads_back_equal(
    engine_at_head: sa.Engine, storyboard: StoryboardOutput | EnhancedStoryboardOutput
) -> None:
    with Session(engine_at_head) as session:
        project_id = new_project(session)
        save_storyboard(session, project_id, storyboard)
        session.commit()
    with Session(engine_at_head) as session:
        loaded = load_storyboard(session, project_id)
    assert loaded == storyboard
    assert loaded.model_dump(mode="json") == storyboard.model_dump(mode="json")


def breakages(payload: dict[str, Any]) -> st.SearchStrategy[tuple[str, str, dict[str, Any]]]:
    """(what, where the error must point, broken copy) for a payload with two or more scenes."""
    last = len(payload["scenes"]) - 1

    def broken(change: Any) -> dict[str, Any]:
        copied = copy.deepcopy(payload)
        change(copied["scenes"])
        return copied

    def duplicate(scenes: list) -> None:
        for part in (scenes[last], scenes[last]["scene_manifest"], scenes[last]["audio_manifest"]):
            part["scene_index"] = scenes[0]["scene_index"]

    def drop(scenes: list) -> None:
        del scenes[last]["audio_manifest"]["dialogue_lines"][:]
        del scenes[last]["scene_manifest"]["composition"]["focal_point"]

    def nul(scenes: list) -> None:
        scenes[last]["video_motion_prompt"] += "\x00"

    def not_a_list(scenes: list) -> None:
        scenes[last]["key_details"] = "one detail"

    return st.sampled_from(
        [
            ("duplicate scene_index", f"scenes[{last}].scene_index", broken(duplicate)),
            ("missing field", "scene_manifest.composition.focal_point", broken(drop)),
            ("NUL", f"scenes[{last}].video_motion_prompt", broken(nul)),
            ("wrong type", "key_details", broken(not_a_list)),
        ]
    )


broken_storyboards = storyboards(enhanced=True, min_scenes=2).flatmap(breakages)


@EXAMPLES
@given(case=broken_storyboards)
def test_any_broken_storyboard_is_refused_naming_scene_and_field_and_writes_nothing(
    engine_at_head: sa.Engine, case: tuple[str, str, dict[str, Any]]
) -> None:
    _what, where, payload = case
    last = len(payload["scenes"]) - 1
    with Session(engine_at_head) as session:
        project_id = new_project(session)
        session.commit()
        before = stored_rows(session)
        with pytest.raises(StoryboardError) as raised:
            save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
        session.commit()
        assert f"scenes[{last}]" in str(raised.value)
        assert where in str(raised.value)
        assert stored_rows(session) == before
