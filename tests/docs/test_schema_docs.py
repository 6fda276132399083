"""The schema page tells the truth: its ER diagrams, and what it says each table is for, are
what the models draw (tools/er_diagrams.py)."""

from tests.support.cli import REPO_ROOT
from tools.er_diagrams import COMMAND, PAGE_NAME, differences

PAGE = (REPO_ROOT / PAGE_NAME).read_text()


def test_the_er_diagrams_are_the_ones_the_models_draw() -> None:
    found = differences(PAGE)
    assert not found, "\n".join(f"{PAGE_NAME}: {line}; run `{COMMAND}`" for line in found)


def test_a_stale_diagram_names_the_table_or_column_that_differs() -> None:
    """The check above can fail, and says where: a column dropped from one table's drawing, a
    type changed in another, a table the models do not have, a table described otherwise than
    its model's docstring."""
    stale = (
        PAGE.replace("        text rewritten_video_prompt\n", "", 1)
        .replace("        string head_sha\n", "        text head_sha\n", 1)
        .replace(
            "    users {\n", "    lighting_rigs {\n        uuid id PK\n    }\n    users {\n", 1
        )
        .replace("- `keyframes`: A generated", "- `keyframes`: A painted", 1)
    )
    assert differences(stale) == [
        "table lighting_rigs is in the diagrams but not in the models",
        "column projects.head_sha is drawn as text, the models say string",
        "column scene_manifests.rewritten_video_prompt is in the models but not in the diagrams",
        "table keyframes is described as 'A painted first or last frame of a scene.', its "
        "model's docstring says 'A generated first or last frame of a scene.'",
    ]
