"""A large storyboard loads with work proportional to its scenes, counted rather than timed.

A load once selected ``projects.storyboard_raw`` (the whole storyboard) on every row and
decoded it there: 1,000 scenes decoded a 1,000-scene document 1,000 times. The counts here (the
statements sent, the JSON documents decoded and the characters decoded) catch any return of
per-row work on the project's documents, whatever the machine's speed; the time itself is a
benchmark row (``python -m benchmarks save``).
"""

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.support.storyboards import enhanced_storyboard, new_project, store_as_the_backend_did
from vidpipe.db import create_engine
from vidpipe.db.store import load_storyboard, save_storyboard

SCENES = 1_000


class CountingDecoder:
    """``json.loads`` that counts what it decodes: documents, characters, and each of the
    project's own documents by name when it comes by."""

    def __init__(self, project_documents: dict[str, Any]) -> None:
        self.project_documents = project_documents
        self.reset()

    def reset(self) -> None:
        self.documents = 0
        self.characters = 0
        self.decoded: Counter[str] = Counter()

    def __call__(self, text: str | bytes) -> Any:
        value = json.loads(text)
        self.documents += 1
        self.characters += len(text)
        for name, document in self.project_documents.items():
            if value == document:
                self.decoded[name] += 1
        return value


@pytest.fixture
def counted(
    engine_at_head: sa.Engine, database_url: sa.URL
) -> Iterator[tuple[sa.Engine, CountingDecoder, list[str]]]:
    """An engine on the test's database whose JSON decoder counts, and the statements it sends.

    The decoder is the engine's ``json_deserializer``: SQLAlchemy's JSON type calls it on SQLite
    and MariaDB, and hands it to psycopg for PostgreSQL's JSONB.
    """
    data = enhanced_storyboard(*range(SCENES)).model_dump(mode="json")
    decoder = CountingDecoder(
        {
            "storyboard_raw": data,
            "style_guide": data["style_guide"],
            "characters": data["characters"],
        }
    )
    engine = create_engine(database_url, poolclass=NullPool, json_deserializer=decoder)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    yield engine, decoder, statements
    engine.dispose()


def _stored(engine: sa.Engine, how: str) -> uuid.UUID:
    """A project holding the 1,000-scene storyboard, saved by the store or as the backend did
    before vidpipe_0004 (no characters or key details in the rows: both come from the saved copy
    on every load)."""
    storyboard = enhanced_storyboard(*range(SCENES))
    with Session(engine) as session, session.begin():
        project_id = new_project(session)
        if how == "save_storyboard":
            save_storyboard(session, project_id, storyboard)
        else:
            store_as_the_backend_did(session, project_id, storyboard.model_dump(mode="json"))
    return project_id


@pytest.mark.parametrize("how", ["save_storyboard", "the backend before vidpipe_0004"])
def test_a_large_storyboard_loads_with_one_statement_and_each_document_decoded_once(
    counted: tuple[sa.Engine, CountingDecoder, list[str]], how: str
) -> None:
    engine, decoder, statements = counted
    project_id = _stored(engine, how)
    storyboard_json = enhanced_storyboard(*range(SCENES)).model_dump_json()
    decoder.reset()  # count the load alone
    statements.clear()

    with Session(engine) as session, session.begin():
        loaded = load_storyboard(session, project_id)

    assert loaded == enhanced_storyboard(*range(SCENES))
    assert [s for s in statements if not s.lstrip().upper().startswith("BEGIN")] == [
        statements[-1]
    ], "a load is one statement"
    decoded = decoder.decoded
    assert decoded["storyboard_raw"] == 1, "the saved copy is decoded once per load, not per row"
    assert decoded["style_guide"] == 1
    assert decoded["characters"] == (1 if how == "save_storyboard" else 0)
    # The rows hold each scene's JSON once and the saved copy holds it once more: decoding the
    # project's documents on every row would multiply this by the number of scenes.
    assert decoder.characters < 3 * len(storyboard_json)
    # Per scene: key details, the manifest and the five audio documents.
    assert decoder.documents <= 7 * SCENES + 3
