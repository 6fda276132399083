"""Storyboards and projects for the store's tests, written out by hand."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vidpipe.db.models import Project, Scene, SceneAudioManifest, SceneManifest
from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

STORYBOARD_TABLES = (Project, Scene, SceneManifest, SceneAudioManifest)


def new_project(session: Session) -> uuid.UUID:
    project = Project(
        prompt="A lighthouse keeper finds a map",
        style="cinematic",
        aspect_ratio="16:9",
        target_clip_duration=8,
        status="draft",
    )
    session.add(project)
    session.flush()
    return project.id


def base_scene(index: int) -> dict[str, Any]:
    return {
        "scene_index": index,
        "scene_description": f"Scene {index}: Mara climbs the lighthouse stairs",
        "key_details": ["Mara", "brass lantern", "spiral stairs"],
        "start_frame_prompt": "Mara at the foot of the stairs, lantern raised",
        "end_frame_prompt": "Mara at the top, looking out to sea",
        "video_motion_prompt": "Slow crane up following Mara",
        "transition_notes": "Cut on the lantern flare",
    }


STYLE_GUIDE = {
    "visual_style": "cinematic live action",
    "color_palette": "teal and amber",
    "camera_style": "anamorphic, slow moves",
}
CHARACTERS = [
    {
        "name": "Mara",
        "physical_description": "Sixty, weathered face, grey braid",
        "clothing_description": "Yellow oilskin over a navy sweater",
    }
]


def base_storyboard(*indexes: int) -> StoryboardOutput:
    return StoryboardOutput.model_validate(
        {
            "style_guide": STYLE_GUIDE,
            "characters": CHARACTERS,
            "scenes": [base_scene(i) for i in indexes or (0, 1)],
        }
    )


def enhanced_scene(index: int) -> dict[str, Any]:
    """Scene 0 has dialogue by two speakers (one twice), music and a new asset; others are quiet."""
    talkative = index == 0
    return {
        **base_scene(index),
        "scene_manifest": {
            "scene_index": index,
            "composition": {
                "shot_type": "wide_shot" if talkative else "close_up",
                "camera_movement": "crane_up" if talkative else "static",
                "focal_point": "CHAR_01",
            },
            "placements": [
                {"asset_tag": "CHAR_01", "role": "subject", "position": "center"},
                {"asset_tag": "ENV_02", "role": "environment", "position": "background"},
                {"asset_tag": "CHAR_01", "role": "subject", "position": "left", "action": "waves"},
            ]
            if talkative
            else [{"asset_tag": "CHAR_10", "role": "subject", "position": "center"}],
            "continuity_notes": "Lantern lit" if talkative else None,
            "new_asset_declarations": [
                {"name": "Map", "type": "prop", "description": "A water-stained chart"}
            ]
            if talkative
            else None,
        },
        "audio_manifest": {
            "scene_index": index,
            "dialogue_lines": [
                {
                    "speaker_tag": "CHAR_01",
                    "speaker_name": "Mara",
                    "line": "Who left this here?",
                    "timing": "start",
                },
                {
                    "speaker_tag": "CHAR_02",
                    "speaker_name": "Tom",
                    "line": "Not me.",
                    "delivery": "muttered",
                    "timing": "mid-scene",
                    "emphasis": ["me"],
                },
                {
                    "speaker_tag": "CHAR_01",
                    "speaker_name": "Mara",
                    "line": "Then who?",
                    "timing": "end",
                },
            ]
            if talkative
            else [],
            "sfx": [
                {
                    "effect": "gull cry",
                    "trigger": "gull",
                    "timing": "throughout",
                    "volume": "subtle",
                }
            ],
            "ambient": {"base_layer": "surf"} if talkative else None,
            "music": {
                "style": "orchestral",
                "mood": "uneasy",
                "tempo": "slow",
                "transition": "fade in",
            }
            if talkative
            else None,
            "audio_continuity": {"new_in_this_scene": ["surf"]} if talkative else None,
        },
    }


def enhanced_storyboard(*indexes: int) -> EnhancedStoryboardOutput:
    return EnhancedStoryboardOutput.model_validate(
        {
            "style_guide": STYLE_GUIDE,
            "characters": CHARACTERS,
            "scenes": [enhanced_scene(i) for i in indexes or (0, 1)],
        }
    )


def stored_rows(session: Session) -> dict[str, list[str]]:
    """Every row of the storyboard tables, as comparable text, read through ``session``."""
    return {
        model.__tablename__: sorted(
            repr(tuple(row)) for row in session.execute(sa.select(model.__table__))
        )
        for model in STORYBOARD_TABLES
    }


def store_as_the_backend_did(session: Session, project_id: uuid.UUID, payload: dict) -> None:
    """Rows as vidpipe's backend wrote an enhanced storyboard before vidpipe_0004 existed.

    No ``characters``, ``storyboard_kind`` or ``key_details``; the audio rows keyed by the
    scene's index without the manifest's own; the whole output in ``storyboard_raw``.
    """
    session.execute(
        sa.update(Project)
        .where(Project.id == project_id)
        .values(style_guide=payload["style_guide"], storyboard_raw=payload)
    )
    for scene in payload["scenes"]:
        key = {"project_id": project_id, "scene_index": scene["scene_index"]}
        manifest, audio = scene["scene_manifest"], scene["audio_manifest"]
        session.add(
            Scene(
                **key,
                scene_description=scene["scene_description"],
                start_frame_prompt=scene["start_frame_prompt"],
                end_frame_prompt=scene["end_frame_prompt"],
                video_motion_prompt=scene["video_motion_prompt"],
                transition_notes=scene["transition_notes"],
                status="pending",
            )
        )
        session.add(
            SceneManifest(
                **key,
                manifest_json=manifest,
                composition_shot_type=manifest["composition"]["shot_type"][:50],
                composition_camera_movement=manifest["composition"]["camera_movement"][:50],
                asset_tags=[placement["asset_tag"] for placement in manifest["placements"]],
                new_asset_count=len(manifest.get("new_asset_declarations") or []),
            )
        )
        session.add(
            SceneAudioManifest(
                **key,
                dialogue_json=audio["dialogue_lines"],
                sfx_json=audio["sfx"],
                ambient_json=audio["ambient"],
                music_json=audio["music"],
                audio_continuity_json=audio["audio_continuity"],
                speaker_tags=[line["speaker_tag"] for line in audio["dialogue_lines"]],
                has_dialogue=bool(audio["dialogue_lines"]),
                has_music=audio["music"] is not None,
            )
        )
    session.flush()


def as_gemini_and_the_backend_send_it(*indexes: int) -> dict[str, Any]:
    """An enhanced storyboard in the shapes real output takes, each once.

    A style-guide field as a list; free-form new asset declarations (the backend's own keys,
    keys missing, extra keys); manifests whose own scene_index differs from their scene's; a
    shot type and camera movement longer than their 50-character columns.
    """
    payload = enhanced_storyboard(*indexes).model_dump()
    payload["style_guide"]["color_palette"] = ["teal", "amber", "bone white"]
    first, last = payload["scenes"][0], payload["scenes"][-1]
    first["scene_manifest"]["new_asset_declarations"] = [
        {"name": "Map", "tag": "PROP_03", "type": "prop", "description": "A water-stained chart"},
        {"asset_tag": "CHAR_07", "asset_type": "CHARACTER", "name": "Ferryman"},
        {"name": "Gull"},
        {"tag": "ENV_09", "notes": ["seen at dusk", {"lit": True}], "priority": 2, "x": None},
    ]
    first["scene_manifest"]["scene_index"] = first["scene_index"] + 1
    last["audio_manifest"]["scene_index"] = 0 if last["scene_index"] else 9
    last["scene_manifest"]["composition"]["shot_type"] = (
        "extreme wide establishing shot over the harbour at dusk, then slowly closing in"
    )
    last["scene_manifest"]["composition"]["camera_movement"] = "très lent " * 8
    return payload
