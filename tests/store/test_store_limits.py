"""The bound that spares most saves on MariaDB the row-by-row packet count holds for every row.

vidpipe.db.store.limits counts each row's size only for a storyboard whose bound
(``largest_row_bound``, linear in its JSON text) does not fit in ``max_allowed_packet``; a row
larger than the bound would be sent unchecked, and the server would drop the connection. No
database is needed: the sizes are counted with the MariaDB dialect's own bind processors.
"""

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given

from tests.support.storyboard_strategies import EXAMPLES, any_storyboard
from tests.support.storyboards import enhanced_storyboard
from vidpipe.db.store.limits import (
    ROW_BYTES_PER_JSON_BYTE,
    ROW_CONSTANT_BYTES,
    largest_row_bound,
    row_sizes,
)
from vidpipe.db.store.rows import Prepared, prepare
from vidpipe.schemas.storyboard import StoryboardOutput
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

MARIADB = sa.create_engine("mariadb+pymysql://").dialect


def largest_row(prepared: Prepared) -> int:
    return max(size for _, size in row_sizes(MARIADB, prepared))


@EXAMPLES
@given(storyboard=any_storyboard)
def test_no_row_of_any_storyboard_exceeds_the_bound(
    storyboard: StoryboardOutput | EnhancedStoryboardOutput,
) -> None:
    prepared = prepare(uuid.uuid4(), storyboard, None)
    assert largest_row(prepared) <= largest_row_bound(prepared)


def with_tags(tag_text: str, where: str) -> dict[str, Any]:
    """One scene whose text is almost all long, distinct tags of ``tag_text`` in the manifest's
    placements or the audio's dialogue lines: written twice in their row (the JSON and the tags
    column), once in the storyboard's JSON text."""
    payload = enhanced_storyboard(0).model_dump(mode="json")
    payload["style_guide"] = dict.fromkeys(payload["style_guide"], "")
    payload["characters"] = []
    scene = payload["scenes"][0]
    tags = [f"{position}{tag_text * 20_000}" for position in range(5)]
    if where == "placements":
        scene["scene_manifest"]["placements"] = [
            {"asset_tag": tag, "role": "", "position": ""} for tag in tags
        ]
    else:
        scene["audio_manifest"]["dialogue_lines"] = [
            {"speaker_tag": tag, "speaker_name": "", "line": "", "timing": ""} for tag in tags
        ]
    return payload


@pytest.mark.parametrize("where", ["placements", "dialogue_lines"])
@pytest.mark.parametrize(
    "tag_text",
    [
        pytest.param("é", id="two-byte"),
        pytest.param("😀", id="astral"),
        pytest.param('"\\', id="escaped-twice"),
        pytest.param("a", id="ASCII"),
    ],
)
def test_the_bound_holds_for_rows_that_repeat_their_text_in_the_widest_form(
    tag_text: str, where: str
) -> None:
    prepared = prepare(uuid.uuid4(), with_tags(tag_text, where), EnhancedStoryboardOutput)
    bound = largest_row_bound(prepared)
    assert largest_row(prepared) <= bound
    if tag_text in ("é", "😀"):
        # The factor is needed: \u escapes, written twice, take nearly 7 times the text.
        text_bytes = (bound - ROW_CONSTANT_BYTES) / ROW_BYTES_PER_JSON_BYTE
        assert largest_row(prepared) > (ROW_BYTES_PER_JSON_BYTE - 0.5) * text_bytes
