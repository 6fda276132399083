"""Pydantic schemas that Gemini fills as structured output (its ``response_schema``)."""
