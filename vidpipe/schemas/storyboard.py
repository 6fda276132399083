"""The base storyboard: what Gemini writes for a project without an asset manifest.

Every field carries a ``description`` because Gemini reads them to decide what to write.
"""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field


def _joined(value: Any) -> Any:
    """A list of strings as one string joined with ", ", as vidpipe's backend accepts it.

    Some providers send an array where the schema asks for a string. Only lists of strings
    are joined; anything else reaches validation as it came and is refused there.
    """
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value)
    return value


#: A string that may arrive as a list of strings (joined with ", ").
JoinedStr = Annotated[str, BeforeValidator(_joined)]


class StyleGuide(BaseModel):
    """The look shared by every scene of one video.

    Each field also accepts a list of strings, joined with ", " (see ``JoinedStr``).
    """

    visual_style: JoinedStr = Field(
        description="Overall visual style, e.g. 'cinematic live action' or 'watercolor animation'"
    )
    color_palette: JoinedStr = Field(description="Dominant colors and grading used in every scene")
    camera_style: JoinedStr = Field(
        description="How the camera behaves across the video: lenses, pacing"
    )


class CharacterDescription(BaseModel):
    """A recurring character, described so every frame renders it the same way."""

    name: str = Field(description="The character's name as used in scene descriptions")
    physical_description: str = Field(
        description="Face, body, age and other physical traits that must stay consistent"
    )
    clothing_description: str = Field(
        description="What the character wears, in enough detail to repeat it in every scene"
    )


class SceneSchema(BaseModel):
    """One scene: its content and the prompts that render its first and last frame and motion."""

    scene_index: int = Field(description="Position of the scene in the video, counting from 0")
    scene_description: str = Field(description="What happens in the scene, in one or two sentences")
    key_details: list[str] = Field(
        description="3-6 names or terms (characters, objects, places) the scene must show"
    )
    start_frame_prompt: str = Field(description="Image prompt for the scene's first frame")
    end_frame_prompt: str = Field(description="Image prompt for the scene's last frame")
    video_motion_prompt: str = Field(
        description="How the shot moves from the first frame to the last: action and camera"
    )
    transition_notes: str = Field(description="How this scene hands over to the next one")


class StoryboardOutput(BaseModel):
    """A whole storyboard: style guide, characters and the ordered scenes."""

    style_guide: StyleGuide = Field(description="The visual style shared by every scene")
    characters: list[CharacterDescription] = Field(
        description="Every recurring character, described once"
    )
    scenes: list[SceneSchema] = Field(description="The scenes in playing order")
