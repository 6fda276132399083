"""What the store accepts, on every dialect: real output shapes, any tag, string ids, sizes."""

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from tests.support.databases import dialect_params
from tests.support.storyboards import (
    as_gemini_and_the_backend_send_it,
    enhanced_storyboard,
    new_project,
    store_as_the_backend_did,
    stored_rows,
)
from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.models import Project, SceneAudioManifest, SceneManifest
from vidpipe.db.store import (
    SceneKey,
    load_storyboard,
    save_storyboard,
    scenes_with_asset,
    scenes_with_speaker,
    storyboard_batch,
)
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput


def reloaded(session: Session, project_id: uuid.UUID) -> EnhancedStoryboardOutput:
    session.commit()
    session.expunge_all()
    loaded = load_storyboard(session, project_id)
    assert isinstance(loaded, EnhancedStoryboardOutput)
    return loaded


def test_output_as_gemini_and_the_backend_send_it_loads_back_as_saved(session: Session) -> None:
    project_id = new_project(session)
    payload = as_gemini_and_the_backend_send_it(0, 1, 2)
    saved = save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    loaded = reloaded(session, project_id)

    assert loaded == saved
    assert loaded.model_dump(mode="json") == saved.model_dump(mode="json")
    dumped = loaded.model_dump(mode="json")
    assert dumped["style_guide"]["color_palette"] == "teal, amber, bone white"
    for position, scene in enumerate(payload["scenes"]):
        for field in ("scene_manifest", "audio_manifest"):
            assert dumped["scenes"][position][field]["scene_index"] == scene[field]["scene_index"]
        given = scene["scene_manifest"]
        assert dumped["scenes"][position]["scene_manifest"]["composition"] == given["composition"]
        kept = dumped["scenes"][position]["scene_manifest"]["new_asset_declarations"]
        assert kept == given["new_asset_declarations"]


def test_manifests_are_keyed_by_their_scenes_index(session: Session) -> None:
    project_id = new_project(session)
    payload = as_gemini_and_the_backend_send_it(0, 4)
    save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    session.commit()
    for model in (SceneManifest, SceneAudioManifest):
        assert session.scalars(sa.select(model.scene_index).order_by("scene_index")).all() == [
            0,
            4,
        ]
    counts = session.scalars(sa.select(SceneManifest.new_asset_count).order_by("scene_index"))
    assert counts.all() == [4, 0]


def test_a_shot_type_or_camera_movement_too_wide_for_its_column_is_cut_there_only(
    session: Session,
) -> None:
    project_id = new_project(session)
    payload = as_gemini_and_the_backend_send_it(0)
    save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    session.commit()
    composition = payload["scenes"][0]["scene_manifest"]["composition"]
    row = session.execute(sa.select(SceneManifest)).scalar_one()
    width = SceneManifest.__table__.c.composition_shot_type.type.length
    for field in ("shot_type", "camera_movement"):
        value = composition[field]
        assert len(value) > width
        stored = getattr(row, f"composition_{field}")
        assert stored == value[: width - 1] + "…"
        assert row.manifest_json["composition"][field] == value


def test_rows_the_backend_wrote_before_0004_load_whole(session: Session) -> None:
    project_id = new_project(session)
    storyboard = EnhancedStoryboardOutput.model_validate(as_gemini_and_the_backend_send_it(0, 1))
    store_as_the_backend_did(session, project_id, storyboard.model_dump(mode="json"))
    assert session.get(Project, project_id).characters is None

    assert reloaded(session, project_id) == storyboard


# Each scene of the look-up storyboard places one of these tags and gives it one line.
TAGS = [
    "CAFÉ",
    "café",
    "Cafe\u0301",  # the same word decomposed: another string, another tag
    "😀",
    "שלום עולם",
    'say "hi"',
    "back\\slash",
    "it's",
    "CHAR_01",
    "CHAR_01 ",
    "CHAR_0",
    "Straße",
    "STRASSE",
    "%",
    "_",
]


def test_look_ups_match_whole_exact_tags_whatever_their_characters(session: Session) -> None:
    project_id = new_project(session)
    payload = enhanced_storyboard(*range(len(TAGS))).model_dump()
    for scene, tag in zip(payload["scenes"], TAGS, strict=True):
        scene["scene_manifest"]["placements"] = [
            {"asset_tag": tag, "role": "subject", "position": "center"}
        ]
        scene["audio_manifest"]["dialogue_lines"] = [
            {"speaker_tag": tag, "speaker_name": "n", "line": "l", "timing": "start"}
        ]
    save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    session.commit()

    for index, tag in enumerate(TAGS):
        assert scenes_with_asset(session, tag) == [SceneKey(project_id, index)], tag
        assert scenes_with_speaker(session, tag, project_id) == [SceneKey(project_id, index)], tag
    for absent in ("CAF", "AFÉ", "cafÉ", "😀😀", "שלום", "say", "CHAR_01  ", "strasse", "", "\\"):
        assert scenes_with_asset(session, absent) == [], absent
        assert scenes_with_speaker(session, absent) == [], absent


# JSON texts of one tag list, spelled as different writers spell it: escaped as SQLAlchemy's
# default serialiser writes it, raw UTF-8, escapes in upper case and for ASCII letters too.
SPELLINGS = [
    '["CAF\\u00c9", "x"]',
    '["CAFÉ", "x"]',
    '["\\u0043AF\\u00C9", "\\u0078"]',
    '["x", "CAF\\u00c9"]',
]


def test_look_ups_match_a_tag_however_the_stored_json_spells_it(
    session: Session, dialect: str
) -> None:
    project_id = new_project(session)
    save_storyboard(session, project_id, enhanced_storyboard(*range(len(SPELLINGS))))
    tags = sa.bindparam("tags", type_=sa.Text())
    for index, spelling in enumerate(SPELLINGS):
        session.execute(
            sa.update(SceneManifest)
            .where(SceneManifest.project_id == project_id, SceneManifest.scene_index == index)
            .values(asset_tags=sa.cast(tags, JSONB) if dialect == "postgresql" else tags),
            {"tags": spelling},
        )
    session.commit()

    every_scene = [SceneKey(project_id, index) for index in range(len(SPELLINGS))]
    assert scenes_with_asset(session, "CAFÉ") == every_scene
    assert scenes_with_asset(session, "x") == every_scene
    for absent in ("CAFE", "café", "CAF\\u00c9", "u0078"):
        assert scenes_with_asset(session, absent) == [], absent


@pytest.mark.parametrize("tag", ["CHAR\x0001", "\x00", "\ud800"])
def test_a_tag_no_stored_tag_can_hold_is_refused_and_the_transaction_goes_on(
    session: Session, tag: str
) -> None:
    project_id = new_project(session)  # flushed, not committed
    save_storyboard(session, project_id, enhanced_storyboard(0))
    for look_up in (scenes_with_asset, scenes_with_speaker):
        with pytest.raises(StoryboardError, match="NUL character or a lone surrogate"):
            look_up(session, tag)
    session.commit()
    assert load_storyboard(session, project_id) == enhanced_storyboard(0)


def test_a_tag_that_is_not_a_string_is_a_type_error(session: Session) -> None:
    with pytest.raises(TypeError, match="not int"):
        scenes_with_asset(session, 1)  # type: ignore[arg-type]


def test_a_project_id_may_be_given_as_a_string(session: Session) -> None:
    project_id = new_project(session)
    session.commit()
    for form in (str(project_id), str(project_id).upper(), project_id.hex):
        save_storyboard(session, form, enhanced_storyboard(0, 1))
        session.commit()
        assert load_storyboard(session, form) == enhanced_storyboard(0, 1)
        assert scenes_with_asset(session, "CHAR_01", form) == [SceneKey(project_id, 0)]
        assert scenes_with_speaker(session, "CHAR_02", form) == [SceneKey(project_id, 0)]


def test_a_batch_knows_a_project_by_its_id_in_any_form(session: Session) -> None:
    """Saved twice in one batch, once by string and once by UUID: the later save wins whole."""
    project_id = new_project(session)
    with storyboard_batch(session):
        save_storyboard(session, str(project_id), enhanced_storyboard(0, 1, 2))
        save_storyboard(session, project_id, enhanced_storyboard(3))
    assert reloaded(session, project_id) == enhanced_storyboard(3)


def test_a_project_id_that_is_no_uuid_is_refused_the_same_way_everywhere(
    session: Session,
) -> None:
    before = stored_rows(session)
    with pytest.raises(UnknownProjectError, match=r"'lighthouse': it is not a UUID"):
        save_storyboard(session, "lighthouse", enhanced_storyboard(0))
    with pytest.raises(UnknownProjectError, match="not a UUID"):
        load_storyboard(session, "lighthouse")
    with pytest.raises(UnknownProjectError, match="not a UUID"):
        scenes_with_asset(session, "CHAR_01", "lighthouse")
    for wrong in (42, uuid.uuid4().bytes):
        with pytest.raises(TypeError, match=r"uuid\.UUID or its string form"):
            save_storyboard(session, wrong, enhanced_storyboard(0))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"uuid\.UUID or its string form"):
            load_storyboard(session, wrong)  # type: ignore[arg-type]
    missing = str(uuid.uuid4())
    with pytest.raises(UnknownProjectError, match=missing):
        load_storyboard(session, missing)
    session.commit()
    assert stored_rows(session) == before


def with_start_frame_prompt(text: str) -> dict[str, Any]:
    payload = enhanced_storyboard(0, 1).model_dump()
    payload["scenes"][1]["start_frame_prompt"] = text
    return payload


def test_text_longer_than_a_mariadb_text_column_is_refused_there_only(
    session: Session, dialect: str
) -> None:
    """65,536 bytes in 32,768 characters: over MariaDB's TEXT, nothing to the others."""
    project_id = new_project(session)  # the caller's earlier work, not committed
    payload = with_start_frame_prompt("é" * 2**15)
    if dialect != "mariadb":
        saved = save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
        assert reloaded(session, project_id) == saved
        return
    with pytest.raises(StoryboardError) as raised:
        save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    assert "scenes[1] (scene_index 1).start_frame_prompt: 65,536 bytes" in str(raised.value)
    session.commit()
    assert session.get(Project, project_id) is not None
    assert load_storyboard(session, project_id) is None
    fits = with_start_frame_prompt("é" * (2**15 - 1))
    saved = save_storyboard(session, project_id, fits, schema=EnhancedStoryboardOutput)
    assert reloaded(session, project_id) == saved


@pytest.mark.parametrize("dialect", dialect_params("mariadb"), indirect=True)
def test_a_storyboard_over_max_allowed_packet_is_refused_before_it_is_sent(
    session: Session,
) -> None:
    packet = session.connection().exec_driver_sql("SELECT @@max_allowed_packet").scalar()
    project_id = new_project(session)  # the caller's earlier work, not committed
    payload = enhanced_storyboard(0).model_dump()
    payload["scenes"][0]["scene_manifest"]["continuity_notes"] = "a" * packet
    with pytest.raises(StoryboardError, match=f"max_allowed_packet of {packet:,} bytes allows"):
        save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    session.commit()  # the connection survived, and with it the caller's transaction
    assert session.get(Project, project_id) is not None

    payload["scenes"][0]["scene_manifest"]["continuity_notes"] = "a" * (packet - 2**16)
    saved = save_storyboard(session, project_id, payload, schema=EnhancedStoryboardOutput)
    assert reloaded(session, project_id) == saved
