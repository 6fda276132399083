"""The two kinds of storyboard the store keeps, and the schema each is rebuilt with."""

from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

__all__ = ["KINDS", "SCHEMAS", "Storyboard", "StoryboardSchema"]

Storyboard = StoryboardOutput | EnhancedStoryboardOutput

StoryboardSchema = type[StoryboardOutput] | type[EnhancedStoryboardOutput]

#: ``projects.storyboard_kind`` per schema: which model ``load_storyboard`` rebuilds.
KINDS: dict[StoryboardSchema, str] = {
    StoryboardOutput: "base",
    EnhancedStoryboardOutput: "enhanced",
}

SCHEMAS: dict[str, StoryboardSchema] = {kind: schema for schema, kind in KINDS.items()}
