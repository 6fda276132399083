"""The storyboard schemas keep the seed plan's contract: names, types, defaults, descriptions."""

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.support.cli import python
from vidpipe.schemas import storyboard, storyboard_enhanced
from vidpipe.schemas.storyboard import SceneSchema, StoryboardOutput, StyleGuide
from vidpipe.schemas.storyboard_enhanced import (
    AudioContinuity,
    DialogueLine,
    EnhancedSceneSchema,
    EnhancedStoryboardOutput,
    SceneAudioManifestSchema,
    SceneManifestSchema,
)

# The seed plan's field lists, in its order: the contract, written out by hand.
SCENE_FIELDS = [
    "scene_index",
    "scene_description",
    "key_details",
    "start_frame_prompt",
    "end_frame_prompt",
    "video_motion_prompt",
    "transition_notes",
]
SEED_FIELDS = {
    "StyleGuide": ["visual_style", "color_palette", "camera_style"],
    "CharacterDescription": ["name", "physical_description", "clothing_description"],
    "SceneSchema": SCENE_FIELDS,
    "StoryboardOutput": ["style_guide", "characters", "scenes"],
    "AssetPlacement": ["asset_tag", "role", "position", "action", "expression", "wardrobe_note"],
    "SceneComposition": ["shot_type", "camera_movement", "focal_point"],
    "DialogueLine": ["speaker_tag", "speaker_name", "line", "delivery", "timing", "emphasis"],
    "SFXEntry": ["effect", "trigger", "timing", "volume"],
    "AmbientAudio": ["base_layer", "environmental", "weather", "time_cues"],
    "MusicDirection": ["style", "mood", "tempo", "instruments", "transition"],
    "AudioContinuity": ["carries_from_previous", "new_in_this_scene", "cuts_from_previous"],
    "SceneManifestSchema": [
        "scene_index",
        "composition",
        "placements",
        "continuity_notes",
        "new_asset_declarations",
    ],
    "SceneAudioManifestSchema": [
        "scene_index",
        "dialogue_lines",
        "sfx",
        "ambient",
        "music",
        "audio_continuity",
    ],
    "EnhancedSceneSchema": [*SCENE_FIELDS, "scene_manifest", "audio_manifest"],
    "EnhancedStoryboardOutput": ["style_guide", "characters", "scenes"],
}
# Fields the seed gives a default: None unless listed with [] (default_factory=list).
SEED_DEFAULTS = {
    "AssetPlacement": {"action": None, "expression": None, "wardrobe_note": None},
    "DialogueLine": {"delivery": None, "emphasis": None},
    "AmbientAudio": {"environmental": None, "weather": None, "time_cues": None},
    "MusicDirection": {"instruments": None},
    "AudioContinuity": {
        "carries_from_previous": [],
        "new_in_this_scene": [],
        "cuts_from_previous": [],
    },
    "SceneManifestSchema": {"continuity_notes": None, "new_asset_declarations": None},
    "SceneAudioManifestSchema": {
        "dialogue_lines": [],
        "sfx": [],
        "ambient": None,
        "music": None,
        "audio_continuity": None,
    },
}
# Descriptions the seed spells out word for word.
SEED_DESCRIPTIONS = {
    ("AssetPlacement", "asset_tag"): "Manifest tag e.g. CHAR_01, ENV_02",
    (
        "SceneComposition",
        "shot_type",
    ): "wide_shot | medium_shot | close_up | two_shot | establishing",
    ("DialogueLine", "timing"): "When in scene: start | mid-scene | end",
    ("SFXEntry", "volume"): "subtle | prominent | background",
    ("MusicDirection", "tempo"): "slow | moderate | fast | accelerating",
    ("SceneManifestSchema", "placements"): "All assets in this scene",
    (
        "SceneManifestSchema",
        "new_asset_declarations",
    ): "Assets not in registry: [{name, type, description}]",
}


def model(name: str) -> type[BaseModel]:
    return getattr(storyboard_enhanced, name, None) or getattr(storyboard, name)


@pytest.mark.parametrize("name", SEED_FIELDS)
def test_fields_are_the_seeds_in_its_order(name: str) -> None:
    assert list(model(name).model_fields) == SEED_FIELDS[name]


@pytest.mark.parametrize("name", SEED_FIELDS)
def test_defaults_are_the_seeds_and_the_rest_are_required(name: str) -> None:
    defaults = SEED_DEFAULTS.get(name, {})
    for field_name, field in model(name).model_fields.items():
        if field_name in defaults:
            assert not field.is_required(), field_name
            assert field.get_default(call_default_factory=True) == defaults[field_name]
        else:
            assert field.is_required(), f"{name}.{field_name} should be required"


@pytest.mark.parametrize(("name", "field"), list(SEED_DESCRIPTIONS))
def test_seed_descriptions_are_kept_word_for_word(name: str, field: str) -> None:
    assert model(name).model_fields[field].description == SEED_DESCRIPTIONS[(name, field)]


def test_types_follow_the_seed() -> None:
    assert DialogueLine.model_fields["emphasis"].annotation == list[str] | None
    assert SceneManifestSchema.model_fields["scene_index"].annotation is int
    assert AudioContinuity.model_fields["new_in_this_scene"].annotation == list[str]
    assert SceneSchema.model_fields["key_details"].annotation == list[str]


def test_enhanced_scene_extends_the_base_scene_but_the_output_does_not() -> None:
    assert issubclass(EnhancedSceneSchema, SceneSchema)
    assert not issubclass(EnhancedStoryboardOutput, StoryboardOutput)


def walk_properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every property of every object in a JSON schema, with a dotted path to it."""
    found = []
    definitions = schema.get("$defs", {})
    for owner, body in [("root", schema), *definitions.items()]:
        for prop, spec in body.get("properties", {}).items():
            found.append((f"{owner}.{prop}", spec))
    return found


@pytest.mark.parametrize("root", [StoryboardOutput, EnhancedStoryboardOutput])
def test_every_field_at_every_depth_has_a_description(root: type[BaseModel]) -> None:
    properties = walk_properties(root.model_json_schema())
    assert len(properties) > 3
    missing = [path for path, spec in properties if not spec.get("description")]
    assert missing == []


DECLARATIONS = [
    {"name": "Lantern", "type": "prop", "description": "A brass oil lantern"},
    {"name": "Mara", "tag": "CHAR_03", "type": "CHARACTER", "description": "Grey braid"},
    # The backend's own keys, and entries lacking type or description, as providers send them.
    {"asset_tag": "PROP_05", "asset_type": "PROP", "name": "Map"},
    {"name": "Gull"},
    {"tag": "ENV_09", "description": None, "notes": ["seen at dusk"], "priority": 2},
    {},
]


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_new_asset_declarations_accept_and_dump_the_same_dicts(declaration: dict) -> None:
    manifest = SceneManifestSchema.model_validate(
        {
            "scene_index": 0,
            "composition": {
                "shot_type": "close_up",
                "camera_movement": "static",
                "focal_point": "x",
            },
            "placements": [],
            "new_asset_declarations": [declaration],
        }
    )
    assert manifest.model_dump()["new_asset_declarations"] == [declaration]
    assert json.loads(manifest.model_dump_json())["new_asset_declarations"] == [declaration]
    assert SceneManifestSchema.model_validate(manifest.model_dump()) == manifest


def test_new_asset_declarations_ask_for_name_tag_type_and_description() -> None:
    item = SceneManifestSchema.model_json_schema()["$defs"]["NewAssetDeclaration"]
    assert item["required"] == ["name", "tag", "type", "description"]
    assert {spec["type"] for spec in item["properties"].values()} == {"string"}
    assert "additionalProperties" not in item


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (["warm amber", "teal shadows"], "warm amber, teal shadows"),
        (["noir"], "noir"),
        ([], ""),
        ("teal and amber", "teal and amber"),
    ],
)
def test_a_style_guide_field_sent_as_a_list_is_joined(sent: object, stored: str) -> None:
    guide = StyleGuide.model_validate(
        {"visual_style": sent, "color_palette": sent, "camera_style": sent}
    )
    assert (guide.visual_style, guide.color_palette, guide.camera_style) == (stored,) * 3


@pytest.mark.parametrize("sent", [["noir", 3], [None], {"a": "b"}, 7])
def test_a_style_guide_field_that_is_no_string_or_list_of_strings_is_refused(sent: object) -> None:
    with pytest.raises(ValidationError, match="color_palette"):
        StyleGuide.model_validate({"visual_style": "x", "color_palette": sent, "camera_style": "y"})


def test_the_seed_plans_schema_verify_command_prints_its_done_lines() -> None:
    output = python(
        "from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput, "
        "SceneManifestSchema, SceneAudioManifestSchema, AssetPlacement, DialogueLine, SFXEntry, "
        "AmbientAudio, MusicDirection, AudioContinuity, SceneComposition, EnhancedSceneSchema; "
        "print('All schemas import OK'); "
        "print(f'EnhancedStoryboardOutput fields: {list(EnhancedStoryboardOutput.model_fields.keys())}'); "
        "print(f'SceneManifestSchema fields: {list(SceneManifestSchema.model_fields.keys())}'); "
        "print(f'SceneAudioManifestSchema fields: {list(SceneAudioManifestSchema.model_fields.keys())}')"
    )
    assert output.splitlines() == [
        "All schemas import OK",
        "EnhancedStoryboardOutput fields: ['style_guide', 'characters', 'scenes']",
        "SceneManifestSchema fields: ['scene_index', 'composition', 'placements', "
        "'continuity_notes', 'new_asset_declarations']",
        "SceneAudioManifestSchema fields: ['scene_index', 'dialogue_lines', 'sfx', 'ambient', "
        "'music', 'audio_continuity']",
    ]


def test_schemas_serialise_to_json() -> None:
    assert json.dumps(EnhancedStoryboardOutput.model_json_schema())
    assert SceneAudioManifestSchema(scene_index=2).model_dump()["dialogue_lines"] == []
