"""Manifest-aware storyboards: the base schemas plus per-scene asset and audio manifests.

Used when a project has an asset manifest (``projects.manifest_id`` is set): Gemini then also
says which registered assets appear in each scene, how the shot is composed, and what is heard.
``EnhancedStoryboardOutput`` is deliberately not a subclass of ``StoryboardOutput``: its scenes
have a different type. Every field carries a ``description`` because Gemini reads them.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from vidpipe.schemas.storyboard import CharacterDescription, SceneSchema, StyleGuide


class AssetPlacement(BaseModel):
    """Where one registered asset appears in a scene and what it does there."""

    asset_tag: str = Field(description="Manifest tag e.g. CHAR_01, ENV_02")
    role: str = Field(description="subject | background | prop | interaction_target | environment")
    position: str = Field(description="Spatial hint: center, left, right, foreground, background")
    action: str | None = Field(default=None, description="What asset does in scene")
    expression: str | None = Field(
        default=None, description="For characters: facial expression, body language"
    )
    wardrobe_note: str | None = Field(
        default=None, description="Clothing/appearance notes for continuity"
    )


class SceneComposition(BaseModel):
    """How the shot is framed."""

    shot_type: str = Field(
        description="wide_shot | medium_shot | close_up | two_shot | establishing"
    )
    camera_movement: str = Field(
        description="static | slow_pan_left | dolly_forward | crane_up | tracking"
    )
    focal_point: str = Field(description="What camera focuses on (asset tag or description)")


def _ask_for_every_key(schema: dict[str, Any]) -> None:
    """Gemini is asked for all four keys, as strings, and no others."""
    schema.pop("additionalProperties", None)  # Gemini refuses it; extra keys are still accepted
    for spec in schema["properties"].values():
        spec.pop("anyOf", None)
        spec.pop("default", None)
        spec["type"] = "string"
    schema["required"] = list(schema["properties"])


# Asked strictly, accepted as vidpipe's backend accepts it: the backend declares a list of free
# dicts and reads ``tag``/``asset_tag`` and ``type``/``asset_type`` from each entry. So any key
# may be missing, extra keys are kept, and the dump holds exactly the keys that were given:
# what was saved is what ``load_storyboard`` returns. A typed model rather than a free ``dict``
# because Gemini refuses an object schema without properties.
class NewAssetDeclaration(BaseModel):
    """An asset the scene needs that the manifest does not hold yet."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_ask_for_every_key)

    name: str | None = Field(default=None, description="Short name of the new asset")
    tag: str | None = Field(
        default=None,
        description="Tag for the new asset in the manifest's style, e.g. CHAR_03, PROP_02",
    )
    type: str | None = Field(
        default=None, description="Kind of asset, e.g. character, environment, prop"
    )
    description: str | None = Field(
        default=None, description="What the asset looks like, enough to generate it"
    )

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        declared = type(self).model_fields
        return {
            key: value
            for key, value in handler(self).items()
            if key in self.model_fields_set or key not in declared
        }


class DialogueLine(BaseModel):
    """One spoken line."""

    speaker_tag: str = Field(description="Character asset tag e.g. CHAR_01")
    speaker_name: str = Field(description="Character name for readability")
    line: str = Field(description="Exact dialogue text")
    delivery: str | None = Field(default=None, description="How said: muttered, shouted, whispered")
    timing: str = Field(description="When in scene: start | mid-scene | end")
    emphasis: list[str] | None = Field(default=None, description="Words to emphasize")


class SFXEntry(BaseModel):
    """One sound effect."""

    effect: str = Field(description="The sound itself, e.g. 'door slams', 'glass shatters'")
    trigger: str = Field(description="What causes the sound")
    timing: str = Field(description="Relative timing e.g. mid-scene, throughout, 0:02-0:04")
    volume: str = Field(description="subtle | prominent | background")


class AmbientAudio(BaseModel):
    """The background sound bed of a scene."""

    base_layer: str = Field(description="The constant background sound, e.g. 'city traffic hum'")
    environmental: str | None = Field(
        default=None, description="Sounds of the place, e.g. birds, machinery, crowd murmur"
    )
    weather: str | None = Field(default=None, description="Weather sounds, e.g. rain, wind")
    time_cues: str | None = Field(
        default=None, description="Sounds that tell the time of day, e.g. morning birdsong"
    )


class MusicDirection(BaseModel):
    """The score under a scene."""

    style: str = Field(description="Musical genre or style, e.g. 'orchestral', 'lo-fi'")
    mood: str = Field(description="Emotion the music carries, e.g. 'tense', 'hopeful'")
    tempo: str = Field(description="slow | moderate | fast | accelerating")
    instruments: list[str] | None = Field(default=None, description="Instruments to feature")
    transition: str = Field(description="How music enters/exits: fade in, cut, swell")


class AudioContinuity(BaseModel):
    """Which sounds carry over from the previous scene, start here, or stop here."""

    carries_from_previous: list[str] = Field(
        default_factory=list, description="Sounds continuing from the previous scene"
    )
    new_in_this_scene: list[str] = Field(
        default_factory=list, description="Sounds that start in this scene"
    )
    cuts_from_previous: list[str] = Field(
        default_factory=list, description="Sounds of the previous scene that stop at the cut"
    )


class SceneManifestSchema(BaseModel):
    """The visual manifest of one scene: composition and asset placements."""

    scene_index: int = Field(description="Index of the scene this manifest belongs to, from 0")
    composition: SceneComposition = Field(description="How the shot is framed")
    placements: list[AssetPlacement] = Field(description="All assets in this scene")
    continuity_notes: str | None = Field(
        default=None, description="What must match the neighbouring scenes"
    )
    new_asset_declarations: list[NewAssetDeclaration] | None = Field(
        default=None, description="Assets not in registry: [{name, type, description}]"
    )


class SceneAudioManifestSchema(BaseModel):
    """The audio manifest of one scene: dialogue, effects, ambience and music."""

    scene_index: int = Field(description="Index of the scene this manifest belongs to, from 0")
    dialogue_lines: list[DialogueLine] = Field(
        default_factory=list, description="Spoken lines in order"
    )
    sfx: list[SFXEntry] = Field(default_factory=list, description="Sound effects in the scene")
    ambient: AmbientAudio | None = Field(default=None, description="Background sound bed")
    music: MusicDirection | None = Field(default=None, description="Music under the scene")
    audio_continuity: AudioContinuity | None = Field(
        default=None, description="Sounds carried over from, or cut from, the previous scene"
    )


class EnhancedSceneSchema(SceneSchema):
    """A scene with its visual and audio manifests."""

    scene_manifest: SceneManifestSchema = Field(description="Asset placements and composition")
    audio_manifest: SceneAudioManifestSchema = Field(description="Dialogue, effects and music")


class EnhancedStoryboardOutput(BaseModel):
    """A manifest-aware storyboard: style guide, characters and enhanced scenes."""

    style_guide: StyleGuide = Field(description="The visual style shared by every scene")
    characters: list[CharacterDescription] = Field(
        description="Every recurring character, described once"
    )
    scenes: list[EnhancedSceneSchema] = Field(description="The scenes in playing order")
