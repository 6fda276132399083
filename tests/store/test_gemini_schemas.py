"""The storyboard schemas are response schemas Gemini accepts, on the Gemini API and on Vertex.

The conversion is the google-genai SDK's own (the function ``generate_content`` runs on its
config), offline: clients built with a dummy key never connect. (That every field at every depth
has a description is checked in test_schemas.py.)
"""

from enum import Enum
from typing import Any

import pytest
from google import genai
from google.genai import models, types
from pydantic import BaseModel, Field

from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

ROOTS = [StoryboardOutput, EnhancedStoryboardOutput]


def converted(root: type[BaseModel], *, vertex: bool) -> types.Schema:
    """What the SDK would send as ``responseSchema`` for ``root``."""
    client = (
        genai.Client(vertexai=True, api_key="offline")
        if vertex
        else genai.Client(api_key="offline")
    )
    to_request = (
        models._GenerateContentConfig_to_vertex
        if vertex
        else models._GenerateContentConfig_to_mldev
    )
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=root
    )
    return to_request(client._api_client, config, {})["responseSchema"]


def refusals(schema: dict[str, Any], path: str = "root") -> list[str]:
    """What Gemini refuses in a JSON schema (``model_json_schema()`` or the SDK's output)."""
    found = []
    kind = str(schema.get("type", "")).upper()
    if kind == "OBJECT" and not schema.get("properties"):
        found.append(f"{path}: object without properties")
    if schema.get("additionalProperties") or schema.get("additional_properties"):
        found.append(f"{path}: additionalProperties")
    if any(not isinstance(value, str) for value in schema.get("enum") or []):
        found.append(f"{path}: non-string enum")
    for key, value in schema.items():
        if isinstance(value, dict):
            children = value.items() if key in ("properties", "$defs") else [("", value)]
            for name, child in children:
                if isinstance(child, dict):
                    found += refusals(child, f"{path}.{key}{'.' + name if name else ''}")
        elif isinstance(value, list):
            found += [
                problem
                for position, child in enumerate(value)
                if isinstance(child, dict)
                for problem in refusals(child, f"{path}.{key}[{position}]")
            ]
    return found


@pytest.mark.parametrize("root", ROOTS)
def test_model_json_schema_has_nothing_gemini_refuses(root: type[BaseModel]) -> None:
    assert refusals(root.model_json_schema()) == []


class Colour(Enum):
    RED = 1


class Refused(BaseModel):
    """Each field is something Gemini refuses."""

    loose: dict[str, str] = Field(description="becomes additionalProperties")
    anything: dict = Field(description="an object without properties")
    colour: Colour = Field(description="an integer enum")


def test_the_refusal_check_finds_each_kind_of_refusal() -> None:
    problems = refusals(Refused.model_json_schema())
    assert any("loose: additionalProperties" in p for p in problems)
    assert any("anything: object without properties" in p for p in problems)
    assert any("Colour: non-string enum" in p for p in problems)


def schema_properties(schema: types.Schema) -> dict[str, types.Schema]:
    return schema.properties or {}


def assert_matches_model(schema: types.Schema, model: type[BaseModel], path: str) -> None:
    """The converted schema keeps every field of ``model``, what it asks for and its nesting."""
    assert schema.type == types.Type.OBJECT, path
    assert set(schema_properties(schema)) == set(model.model_fields), path
    # What the model asks Gemini for (NewAssetDeclaration asks for keys it does not require).
    asked = set(model.model_json_schema().get("required", []))
    assert set(schema.required or []) == asked, path
    for name, field in model.model_fields.items():
        sub = schema_properties(schema)[name]
        assert sub.description, f"{path}.{name} lost its description"
        nested = _model_in(field.annotation)
        if nested is None:
            continue
        if sub.type == types.Type.ARRAY:
            sub = sub.items
        assert_matches_model(sub, nested, f"{path}.{name}")


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``list[X]``, ``X | None`` or ``list[X] | None``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("vertex", [False, True], ids=["gemini-api", "vertex"])
@pytest.mark.parametrize("root", ROOTS)
def test_the_sdk_converts_the_schema_without_refusals_or_losses(
    root: type[BaseModel], vertex: bool
) -> None:
    schema = converted(root, vertex=vertex)
    assert refusals(schema.model_dump(mode="json", exclude_none=True)) == []
    assert_matches_model(schema, root, root.__name__)


def test_the_sdk_refuses_a_free_dict_on_the_gemini_api() -> None:
    """The conversion is a real check: it does refuse what Gemini refuses."""

    class Loose(BaseModel):
        extra: dict[str, str] = Field(description="free keys")

    with pytest.raises(ValueError, match="additionalProperties"):
        converted(Loose, vertex=False)
