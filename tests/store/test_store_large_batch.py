"""A batch larger than PostgreSQL's bind-parameter limit (65,535 per statement) is looked up,
locked and replaced in chunks, and succeeds.

PostgreSQL only: PyMySQL renders parameters into the SQL text (no limit but the packet size),
and Python's SQLite here is built with a limit far above what a test can reach in seconds.
"""

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.support.databases import dialect_params
from tests.support.storyboards import base_storyboard
from vidpipe.db.models import Project, Scene
from vidpipe.db.store import load_storyboard, save_storyboard, storyboard_batch

#: Just past the limit, in ids of one IN list.
PROJECTS = 66_000


@pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)
def test_a_batch_larger_than_the_parameter_limit_replaces_every_storyboard(
    engine_at_head: sa.Engine,
) -> None:
    project_ids = [uuid.uuid4() for _ in range(PROJECTS)]
    old, new = base_storyboard(0), base_storyboard(1)
    with engine_at_head.begin() as connection:  # every project already holds a one-scene storyboard
        connection.execute(
            sa.insert(Project),
            [
                {
                    "id": project_id,
                    "prompt": "p",
                    "style": "cinematic",
                    "aspect_ratio": "16:9",
                    "target_clip_duration": 8,
                    "status": "draft",
                    "storyboard_kind": "base",
                }
                for project_id in project_ids
            ],
        )
        scene = old.scenes[0].model_dump(mode="json")
        connection.execute(
            sa.insert(Scene),
            [{**scene, "project_id": project_id, "status": "pending"} for project_id in project_ids],
        )
    with Session(engine_at_head) as session:
        with storyboard_batch(session):
            for project_id in project_ids:
                save_storyboard(session, project_id, new)
        session.commit()
    with Session(engine_at_head) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Scene)) == len(project_ids)
        for project_id in (project_ids[0], project_ids[len(project_ids) // 2], project_ids[-1]):
            assert load_storyboard(session, project_id) == new
