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
