"""Start-up check, cold upgrade, and upgrading a database that has grown large."""

import os
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.report import Row
from benchmarks.timing import median_seconds, process_seconds
from tests.support.databases import fresh_database
from vidpipe.db import VERSION_TABLE, create_engine, downgrade, upgrade

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECTS = 1_000


def startup_check(url: sa.URL, dialect: str, calls: int) -> Row:
    """``upgrade()`` on a database already at head, in a warm process, against one SELECT."""
    engine = create_engine(url)  # pooled, as an application's engine is
    try:
        upgrade(engine)

        def bare_select() -> None:
            with engine.connect() as connection:
                connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()

        def check_many() -> None:
            for _ in range(calls):
                upgrade(engine)

        def select_many() -> None:
            for _ in range(calls):
                bare_select()

        ours = median_seconds(check_many, repeat=3) / calls
        baseline = median_seconds(select_many, repeat=3) / calls
    finally:
        engine.dispose()
    return Row(
        "start-up check at head",
        dialect,
        "upgrade()",
        ours,
        "one SELECT of the version row",
        baseline,
    )


def cold_upgrade(dialect: str, workdir: Path, repeat: int) -> Row:
    """``alembic upgrade head`` in a fresh process against ``create_all`` in a fresh process."""
    create_all = (
        "import os; from vidpipe.db import create_engine; from vidpipe.db.models import Base; "
        "Base.metadata.create_all(create_engine(os.environ['VIDPIPE_DATABASE_URL']))"
    )
    commands = {
        "alembic": [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(REPO_ROOT / "alembic.ini"),
            "upgrade",
            "head",
        ],
        "create_all": [sys.executable, "-c", create_all],
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for attempt in range(repeat):
        for name, command in commands.items():
            with fresh_database(dialect, workdir / f"cold-{name}-{attempt}") as url:
                env = {**os.environ, "VIDPIPE_DATABASE_URL": url.render_as_string(False)}
                seconds[name].append(process_seconds(command, env))
    return Row(
        "cold upgrade of a fresh database",
        dialect,
        "alembic upgrade head",
        sorted(seconds["alembic"])[repeat // 2],
        "metadata.create_all",
        sorted(seconds["create_all"])[repeat // 2],
        note="each in a fresh process",
    )


def upgrade_grown_database(dialect: str, workdir: Path, scenes: int, repeat: int) -> Row:
    """vidpipe_0001 -> head with ``scenes`` scenes, against the same upgrade of an empty one."""
    seconds = {}
    for label, count in (("full", scenes), ("empty", 0)):
        with fresh_database(dialect, workdir / f"grown-{label}") as url:
            engine = create_engine(url, poolclass=NullPool)
            try:
                upgrade(engine, "vidpipe_0001")
                if count:
                    _fill_scenes(engine, dialect, count)
                seconds[label] = median_seconds(
                    lambda engine=engine: upgrade(engine),
                    repeat=repeat,
                    # vidpipe_0006 fills NOT NULL columns with their defaults: values to drop.
                    setup=lambda engine=engine: downgrade(
                        engine, "vidpipe_0001", allow_data_loss=True
                    ),
                )
            finally:
                engine.dispose()
    return Row(
        f"upgrade vidpipe_0001 -> head, {scenes:,} scenes",
        dialect,
        f"{scenes:,} scenes",
        seconds["full"],
        "empty database",
        seconds["empty"],
        target="near 1x",
    )


def _fill_scenes(engine: sa.Engine, dialect: str, count: int) -> None:
    """Insert ``count`` scenes spread over PROJECTS projects, generated inside the database."""
    if dialect == "postgresql":
        project_id = "md5('p' || i)::uuid"
        scene_id, scene_project = "md5(i::text)::uuid", f"md5('p' || mod(i, {PROJECTS}))::uuid"
        series = "generate_series(0, {n}) AS i"
    else:
        project_id = "printf('%032x', i + 1000000000)"
        scene_id, scene_project = (
            "printf('%032x', i)",
            f"printf('%032x', i % {PROJECTS} + 1000000000)",
        )
        series = (
            "(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
            "SELECT i FROM n)"
        )
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
            f"target_scene_count, status) SELECT {project_id}, 'prompt', 'cinematic', '16:9', 8, "
            f"3, 'done' FROM {series.format(n=PROJECTS - 1)}"
        )
        connection.exec_driver_sql(
            "INSERT INTO scenes (id, project_id, scene_index, scene_description, "
            "start_frame_prompt, end_frame_prompt, video_motion_prompt, status) "
            f"SELECT {scene_id}, {scene_project}, i / {PROJECTS}, 'a scene', 'start', 'end', "
            f"'motion', 'done' FROM {series.format(n=count - 1)}"
        )
