"""Hypothesis strategies for storyboards: any valid storyboard a model may write (plain or
enhanced), and the example budget the store's property tests share."""

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any text a model may write, except what no database stores (NUL, lone surrogates): the store
# refuses those, which the broken-storyboard property covers.
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
texts = st.lists(text, max_size=3)
# Up to 80: past the 50-character composition columns, which keep a cut copy.
composition_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=80
)
# Any JSON value a provider may put under an extra key (no floats: JSONB rewrites their digits).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=6,
)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


def fields(**strategies: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(strategies)


# Some providers send a list of strings for a style-guide string; it is stored joined.
style_text = text | texts
style_guide = fields(visual_style=style_text, color_palette=style_text, camera_style=style_text)
character = fields(name=text, physical_description=text, clothing_description=text)
tag = st.sampled_from(["CHAR_01", "CHAR_02", "ENV_01", "PROP_07"]) | text
placement = fields(
    asset_tag=tag,
    role=text,
    position=text,
    action=optional(text),
    expression=optional(text),
    wardrobe_note=optional(text),
)
dialogue_line = fields(
    speaker_tag=tag,
    speaker_name=text,
    line=text,
    delivery=optional(text),
    timing=text,
    emphasis=optional(texts),
)
sfx = fields(effect=text, trigger=text, timing=text, volume=text)
ambient = fields(
    base_layer=text, environmental=optional(text), weather=optional(text), time_cues=optional(text)
)
music = fields(style=text, mood=text, tempo=text, instruments=optional(texts), transition=text)
continuity = fields(carries_from_previous=texts, new_in_this_scene=texts, cuts_from_previous=texts)


def base_scene(index: int) -> st.SearchStrategy[dict[str, Any]]:
    return fields(
        scene_index=st.just(index),
        scene_description=text,
        key_details=texts,
        start_frame_prompt=text,
        end_frame_prompt=text,
        video_motion_prompt=text,
        transition_notes=text,
    )


# Declared keys, each present or not, and extra keys the backend's free dicts may carry.
DECLARED = ("name", "tag", "type", "description")
declaration = st.tuples(
    st.fixed_dictionaries({}, optional={key: optional(text) for key in DECLARED}),
    st.dictionaries(text.filter(lambda key: key not in DECLARED), json_values, max_size=2),
).map(lambda parts: {**parts[0], **parts[1]})


def own_index(index: int) -> st.SearchStrategy[int]:
    """A manifest's own scene_index: usually its scene's, sometimes another (real output)."""
    return st.just(index) | st.integers(-(2**31), 2**31)


def enhanced_scene(index: int) -> st.SearchStrategy[dict[str, Any]]:
    scene_manifest = fields(
        scene_index=own_index(index),
        composition=fields(
            shot_type=composition_text, camera_movement=composition_text, focal_point=text
        ),
        placements=st.lists(placement, max_size=3),
        continuity_notes=optional(text),
        new_asset_declarations=optional(st.lists(declaration, max_size=2)),
    )
    audio_manifest = fields(
        scene_index=own_index(index),
        dialogue_lines=st.lists(dialogue_line, max_size=3),
        sfx=st.lists(sfx, max_size=2),
        ambient=optional(ambient),
        music=optional(music),
        audio_continuity=optional(continuity),
    )
    return st.tuples(base_scene(index), scene_manifest, audio_manifest).map(
        lambda parts: {**parts[0], "scene_manifest": parts[1], "audio_manifest": parts[2]}
    )


# Distinct scene indexes in playing order, anywhere in the 32-bit column's range.
scene_indexes = st.lists(
    st.integers(min_value=0, max_value=2**31 - 1), unique=True, max_size=4
).map(sorted)


@st.composite
def storyboards(draw: st.DrawFn, enhanced: bool, min_scenes: int = 0) -> dict[str, Any]:
    make_scene = enhanced_scene if enhanced else base_scene
    indexes = draw(scene_indexes.filter(lambda found: len(found) >= min_scenes))
    return {
        "style_guide": draw(style_guide),
        "characters": draw(st.lists(character, max_size=2)),
        "scenes": [draw(make_scene(index)) for index in indexes],
    }


any_storyboard = st.one_of(
    storyboards(enhanced=False).map(StoryboardOutput.model_validate),
    storyboards(enhanced=True).map(EnhancedStoryboardOutput.model_validate),
)
