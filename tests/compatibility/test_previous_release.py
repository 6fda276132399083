"""Backwards compatibility: the previous release's own store round trip, run by its own code
(installed from its commit: tests/support/previous_release.py), on a database the current code upgraded
to head, on every dialect (GitLab runs the previous release's tests against the new schema).

During a rolling deploy that release keeps serving on the new schema; this is what it does.
"""

import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.previous_release import (
    PreviousRelease,
    PreviousReleaseUnavailable,
    previous_release,
)
from tests.support.revisions import HEAD
from vidpipe.db import current_revision

#: Run by the previous release's interpreter: its store saves and loads a base and an enhanced
#: storyboard made by its own test helpers (argv: URL, its tests/storyboards.py).
ROUND_TRIP = """
import importlib.util
import sys

from sqlalchemy.orm import Session

import vidpipe.db.store
from vidpipe.db import create_engine
from vidpipe.db.store import load_storyboard, save_storyboard

spec = importlib.util.spec_from_file_location("previous_storyboards", sys.argv[2])
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)
engine = create_engine(sys.argv[1])
for make in (helpers.base_storyboard, helpers.enhanced_storyboard):
    storyboard = make(0, 1, 5)
    with Session(engine) as session:
        project_id = helpers.new_project(session)
        save_storyboard(session, project_id, storyboard)
        session.commit()
        session.expunge_all()
        assert load_storyboard(session, project_id) == storyboard, make.__name__
engine.dispose()
print(vidpipe.db.store.__file__)
"""


@pytest.fixture(scope="session")
def release() -> PreviousRelease:
    try:
        return previous_release()
    except PreviousReleaseUnavailable as exc:
        pytest.fail(str(exc))


def test_the_previous_release_stores_and_loads_on_the_new_head(
    release: PreviousRelease, engine_at_head: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    assert current_revision(engine_at_head) == HEAD
    done = subprocess.run(
        [
            str(release.python),
            "-c",
            ROUND_TRIP,
            database_url.render_as_string(hide_password=False),
            str(release.source / "tests" / "storyboards.py"),
        ],
        cwd=tmp_path,  # not the repository: its vidpipe must not be importable from here
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"vidpipe-data {release.version} ({release.commit[:12]}) cannot save and load a "
        f"storyboard on a database at {HEAD}: a replica of it would fail during a rolling "
        f"deploy. Make the revision that breaks it contract (README, Rolling deploys).\n"
        f"{done.stderr}"
    )
    # Its own code ran, not this checkout's.
    assert Path(done.stdout.strip()).is_relative_to(release.python.parent.parent)
