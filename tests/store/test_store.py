"""The storyboard store on every dialect: exact round trips, replacement, errors, look-ups."""

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from tests.support.databases import as_async, dialect_params
from tests.support.storyboards import (
    base_storyboard,
    enhanced_storyboard,
    new_project,
    stored_rows,
)
from vidpipe.db import create_async_engine
from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.models import Keyframe, Project, Scene, SceneAudioManifest, SceneManifest
from vidpipe.db.store import (
    SceneKey,
    load_storyboard,
    save_storyboard,
    scenes_with_asset,
    scenes_with_speaker,
)
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput


@pytest.mark.parametrize("make", [base_storyboard, enhanced_storyboard])
def test_a_saved_storyboard_loads_back_equal(session: Session, make: Callable) -> None:
    project_id = new_project(session)
    storyboard = make(0, 1, 5)
    save_storyboard(session, project_id, storyboard)
    session.commit()
    session.expunge_all()

    loaded = load_storyboard(session, project_id)
    assert type(loaded) is type(storyboard)
    assert loaded == storyboard
    assert loaded.model_dump() == storyboard.model_dump()


def test_an_enhanced_storyboard_with_no_scenes_stays_enhanced(session: Session) -> None:
    project_id = new_project(session)
    empty = EnhancedStoryboardOutput.model_validate(
        {**enhanced_storyboard().model_dump(), "scenes": []}
    )
    save_storyboard(session, project_id, empty)
    assert load_storyboard(session, project_id) == empty


def test_rows_and_denormalised_columns(session: Session) -> None:
    project_id = new_project(session)
    storyboard = enhanced_storyboard(0, 1)
    save_storyboard(session, project_id, storyboard)
    session.commit()

    project = session.get(Project, project_id)
    assert project.style_guide["color_palette"] == "teal and amber"
    assert project.storyboard_raw == storyboard.model_dump(mode="json")
    assert project.storyboard_kind == "enhanced"
    scenes = session.scalars(sa.select(Scene).order_by(Scene.scene_index)).all()
    assert [(s.scene_index, s.status) for s in scenes] == [(0, "pending"), (1, "pending")]
    assert scenes[0].key_details == ["Mara", "brass lantern", "spiral stairs"]
    first, second = session.scalars(sa.select(SceneManifest).order_by("scene_index")).all()
    assert (
        first.composition_shot_type,
        first.composition_camera_movement,
        first.asset_tags,
        first.new_asset_count,
    ) == ("wide_shot", "crane_up", ["CHAR_01", "ENV_02"], 1)
    assert (second.composition_shot_type, second.asset_tags, second.new_asset_count) == (
        "close_up",
        ["CHAR_10"],
        0,
    )
    talk, quiet = session.scalars(sa.select(SceneAudioManifest).order_by("scene_index")).all()
    assert (talk.speaker_tags, talk.has_dialogue, talk.has_music) == (
        ["CHAR_01", "CHAR_02"],
        True,
        True,
    )
    assert (quiet.speaker_tags, quiet.has_dialogue, quiet.has_music) == ([], False, False)
    assert talk.dialogue_json[1]["delivery"] == "muttered"


def test_saving_again_replaces_that_projects_rows_only(session: Session) -> None:
    project_id, other_id = new_project(session), new_project(session)
    save_storyboard(session, project_id, enhanced_storyboard(0, 1, 2))
    save_storyboard(session, other_id, enhanced_storyboard(0, 1))
    session.commit()
    others_rows = session.execute(
        sa.select(Scene.id, Scene.scene_index).where(Scene.project_id == other_id)
    ).all()

    regenerated = base_storyboard(0, 3)
    save_storyboard(session, project_id, regenerated)
    session.commit()

    assert load_storyboard(session, project_id) == regenerated
    assert load_storyboard(session, other_id) == enhanced_storyboard(0, 1)
    assert (
        session.execute(
            sa.select(Scene.id, Scene.scene_index).where(Scene.project_id == other_id)
        ).all()
        == others_rows
    )
    assert (
        session.scalar(sa.select(sa.func.count()).where(SceneManifest.project_id == project_id))
        == 0
    )


def enhanced_payload(*indexes: int) -> dict[str, Any]:
    return enhanced_storyboard(*indexes).model_dump()


def with_scene(payload: dict[str, Any], position: int, **changes: Any) -> dict[str, Any]:
    payload["scenes"][position].update(changes)
    return payload


def renumbered(indexes: tuple[int, ...], position: int, index: int) -> dict[str, Any]:
    """Scene ``position`` (and both its manifests) given ``index``."""
    payload = enhanced_payload(*indexes)
    scene = payload["scenes"][position]
    scene["scene_index"] = scene["scene_manifest"]["scene_index"] = index
    scene["audio_manifest"]["scene_index"] = index
    return payload


def missing_volume() -> dict[str, Any]:
    payload = enhanced_payload(0, 1)
    del payload["scenes"][1]["audio_manifest"]["sfx"][0]["volume"]
    return payload


BROKEN = {
    "duplicate scene_index": (
        renumbered((0, 1, 2), 2, 1),
        ["scenes[2].scene_index", "duplicate scene_index 1", "scenes[1]"],
    ),
    "validation failure": (
        missing_volume(),
        ["scenes[1] (scene_index 1).audio_manifest.sfx[0].volume", "Field required"],
    ),
    "wrong type": (
        with_scene(enhanced_payload(0, 1), 0, key_details="Mara"),
        ["scenes[0] (scene_index 0).key_details", "list"],
    ),
    "out of playing order": (
        renumbered((0, 1, 2), 1, 3),
        ["scenes[2].scene_index", "comes after scene_index 3", "playing order"],
    ),
    "negative scene_index": (renumbered((0,), 0, -1), ["scenes[0].scene_index", "-1"]),
    "scene_index beyond 32 bits": (
        renumbered((0,), 0, 2**31),
        ["scenes[0].scene_index", "out of range"],
    ),
    "NUL character": (
        with_scene(enhanced_payload(0, 1), 1, transition_notes="cut\x00"),
        ["scenes[1].transition_notes", "NUL"],
    ),
}


@pytest.mark.parametrize(("payload", "expected"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_storyboard_names_scene_and_field_and_writes_nothing(
    session: Session, payload: dict[str, Any], expected: list[str]
) -> None:
    project_id = new_project(session)
    save_storyboard(session, project_id, base_storyboard(0, 1))
    session.commit()
    before = stored_rows(session)

    with pytest.raises(StoryboardError) as raised:
        save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    for fragment in expected:
        assert fragment in str(raised.value)
    session.commit()
    assert stored_rows(session) == before


def test_an_unknown_project_is_named_and_nothing_is_written(session: Session) -> None:
    before = stored_rows(session)
    missing = uuid.uuid4()
    with pytest.raises(UnknownProjectError, match=str(missing)):
        save_storyboard(session, missing, enhanced_storyboard())
    session.commit()
    assert stored_rows(session) == before
    with pytest.raises(UnknownProjectError):
        load_storyboard(session, missing)


def test_a_failed_save_keeps_the_callers_earlier_work(session: Session) -> None:
    """The store rolls back its own SAVEPOINT, not the caller's transaction."""
    project_id = new_project(session)  # flushed, not committed
    with pytest.raises(StoryboardError):
        save_storyboard(
            session,
            project_id,
            with_scene(enhanced_payload(0, 1), 1, scene_index=0),
            schema=EnhancedStoryboardOutput,
        )
    save_storyboard(session, project_id, base_storyboard(0))
    session.commit()
    assert load_storyboard(session, project_id) == base_storyboard(0)


def _add_keyframe(session: Session, project_id: uuid.UUID, scene_index: int) -> None:
    scene_id = session.scalar(
        sa.select(Scene.id).where(Scene.project_id == project_id, Scene.scene_index == scene_index)
    )
    session.add(
        Keyframe(
            scene_id=scene_id,
            position="start",
            prompt_used="p",
            file_path="k.png",
            mime_type="image/png",
            source="generated",
        )
    )


def test_a_storyboard_whose_scenes_have_keyframes_is_not_replaced(session: Session) -> None:
    project_id = new_project(session)
    save_storyboard(session, project_id, enhanced_storyboard(0, 1, 2))
    _add_keyframe(session, project_id, 1)
    session.commit()
    before = stored_rows(session)

    with pytest.raises(StoryboardError, match="scenes 1 have keyframes or video clips"):
        save_storyboard(session, project_id, base_storyboard(0))
    session.commit()
    assert stored_rows(session) == before


def test_a_save_the_database_refuses_keeps_the_callers_earlier_work(session: Session) -> None:
    """The database refuses the save midway (the old scenes' keyframes block their DELETE,
    after the lock and the projects' UPDATE): only the save's SAVEPOINT is undone, and the error
    is the store's, even where the writes after the lock travel in one round trip."""
    project_id = new_project(session)
    save_storyboard(session, project_id, enhanced_storyboard(0, 1))
    _add_keyframe(session, project_id, 0)
    session.commit()
    other = new_project(session)  # the caller's earlier work, not committed
    save_storyboard(session, other, base_storyboard(0))

    with pytest.raises(StoryboardError, match="scenes 0 have keyframes or video clips"):
        save_storyboard(session, project_id, base_storyboard(0, 1))
    save_storyboard(session, other, base_storyboard(0, 1))  # the transaction goes on
    session.commit()
    assert load_storyboard(session, project_id) == enhanced_storyboard(0, 1)
    assert load_storyboard(session, other) == base_storyboard(0, 1)


@pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)
def test_a_save_that_gives_up_waiting_for_a_lock_keeps_the_callers_earlier_work(
    session: Session, engine: sa.Engine
) -> None:
    """The last INSERT of a save waits for a table another connection locked, until the
    caller's lock_timeout. With psycopg the writes after the lock are sent together, and the
    error arrives only as that round trip ends: it must still be SQLAlchemy's error, with the
    save's SAVEPOINT undone and the transaction usable."""
    project_id = new_project(session)
    session.commit()
    other = new_project(session)  # the caller's earlier work, not committed
    save_storyboard(session, other, base_storyboard(0))  # no scene_audio_manifests rows
    session.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
    with engine.connect() as blocker:
        blocker.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        blocker.exec_driver_sql("LOCK TABLE scene_audio_manifests IN SHARE MODE")
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            save_storyboard(session, project_id, enhanced_storyboard(0, 1))
        blocker.rollback()
    save_storyboard(session, project_id, base_storyboard(0))  # the transaction goes on
    session.commit()
    assert load_storyboard(session, other) == base_storyboard(0)
    assert load_storyboard(session, project_id) == base_storyboard(0)


def test_a_project_without_a_storyboard_loads_as_none(session: Session) -> None:
    assert load_storyboard(session, new_project(session)) is None


def test_rows_written_before_0004_load_what_storyboard_raw_kept(session: Session) -> None:
    """Legacy rows: no key details, characters or kind; storyboard_raw still holds the first two."""
    project_id = new_project(session)
    save_storyboard(session, project_id, enhanced_storyboard(0, 1))
    session.execute(sa.update(Project).values(characters=None, storyboard_kind=None))
    session.execute(sa.update(Scene).values(key_details=None))
    session.commit()
    session.expunge_all()

    assert load_storyboard(session, project_id) == enhanced_storyboard(0, 1)


def test_rows_written_before_0004_without_storyboard_raw_load_empty_lists(
    session: Session,
) -> None:
    project_id = new_project(session)
    save_storyboard(session, project_id, enhanced_storyboard(0, 1))
    session.execute(
        sa.update(Project).values(characters=None, storyboard_kind=None, storyboard_raw=None)
    )
    session.execute(sa.update(Scene).values(key_details=None))
    session.commit()
    session.expunge_all()

    loaded = load_storyboard(session, project_id)
    expected = enhanced_storyboard(0, 1).model_dump()
    expected["characters"] = []
    for scene in expected["scenes"]:
        scene["key_details"] = []
    assert loaded == EnhancedStoryboardOutput.model_validate(expected)


def test_look_ups_by_asset_and_speaker(session: Session) -> None:
    first, second = new_project(session), new_project(session)
    save_storyboard(session, first, enhanced_storyboard(0, 1))
    save_storyboard(session, second, enhanced_storyboard(0))
    session.commit()

    both = sorted([SceneKey(first, 0), SceneKey(second, 0)])
    assert scenes_with_asset(session, "CHAR_01") == both
    assert scenes_with_asset(session, "CHAR_01", first) == [SceneKey(first, 0)]
    assert scenes_with_asset(session, "CHAR_10") == [SceneKey(first, 1)]
    assert scenes_with_speaker(session, "CHAR_02") == both
    assert scenes_with_speaker(session, "CHAR_02", second) == [SceneKey(second, 0)]
    # Whole tags only, case and all: no prefix, substring or case-folded matches.
    for near_miss in ("CHAR_1", "CHAR", "char_01", "CHAR_01 ", "%"):
        assert scenes_with_asset(session, near_miss) == []
    assert scenes_with_speaker(session, "CHAR_10") == []


@pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)
def test_postgresql_look_ups_use_the_gin_indexes(session: Session) -> None:
    project_id = new_project(session)
    save_storyboard(session, project_id, enhanced_storyboard(0, 1))
    session.commit()
    statements: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, *_args) -> None:
        statements.append((statement, parameters))

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", record)
    try:
        scenes_with_asset(session, "CHAR_01")
        scenes_with_speaker(session, "CHAR_01")
    finally:
        event.remove(bind, "before_cursor_execute", record)
    plans = []
    with bind.connect() as connection:
        # A handful of rows would be read sequentially whatever the indexes; forbid that to see
        # whether the index can answer the query at all.
        connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements:
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
            plans.append("\n".join(plan))
    assert "Bitmap Index Scan on ix_scene_manifests_asset_tags" in plans[0]
    assert "Bitmap Index Scan on ix_scene_audio_manifests_speaker_tags" in plans[1]


@pytest.mark.usefixtures("engine_at_head")
def test_an_async_session_saves_loads_and_looks_up_through_run_sync(
    engine: sa.Engine, dialect: str
) -> None:
    async def scenario() -> tuple[Any, list[SceneKey], uuid.UUID]:
        async_engine = create_async_engine(as_async(engine.url, dialect))
        try:
            async with AsyncSession(async_engine) as session:
                project_id = await session.run_sync(new_project)
                await session.run_sync(save_storyboard, project_id, enhanced_storyboard(0, 1))
                await session.commit()
            async with AsyncSession(async_engine) as session:
                loaded = await session.run_sync(load_storyboard, project_id)
                found = await session.run_sync(scenes_with_speaker, "CHAR_01", project_id)
            return loaded, found, project_id
        finally:
            await async_engine.dispose()

    loaded, found, project_id = asyncio.run(scenario())
    assert loaded == enhanced_storyboard(0, 1)
    assert found == [SceneKey(project_id, 0)]
