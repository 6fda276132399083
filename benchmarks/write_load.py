"""Application writes during ``alembic upgrade head``: how long does any write wait?

``python -m benchmarks write-load [--tiny] [--rows N]`` (PostgreSQL). A database at
``vidpipe_0002`` gets ``rows`` rows in each table the later revisions touch (``scenes``,
``scene_manifests``, ``scene_audio_manifests``; 1,000 ``projects``), generated server-side.
A writer process then inserts and updates rows of those tables in short transactions, one after
another, and times each transaction, twice: for a while with nothing else running (the
baseline), and while ``alembic upgrade head`` runs in its own process. The upgrade's log lines
are timestamped as they arrive, so each write is charged to the revision that was running when
it started: a revision that still blocks writes shows up by name.
"""

import itertools
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from multiprocessing.synchronize import Event

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.report import Row
from vidpipe.db import create_engine, upgrade

__all__ = ["PROJECTS", "WriteLoad", "fill", "write_load"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Projects the generated rows are spread over (a project holds ``rows / PROJECTS`` scenes).
PROJECTS = 1_000
#: The revision the upgrade starts from: the manifest tables exist, nothing indexes their tags.
START = "vidpipe_0002"
#: Scene indexes the writers use start above this, above every generated one (the second
#: writer above twice this).
WRITER_SCENE_INDEX = 10_000_000


def fill(connection: sa.Connection, rows: int) -> None:
    """Insert ``rows`` scenes, scene manifests and audio manifests (and PROJECTS projects) into a
    PostgreSQL database at ``vidpipe_0002``, generated inside the server."""
    per_project = f"i / {PROJECTS}"
    project = f"md5('p' || mod(i, {PROJECTS}))::uuid"
    statements = (
        "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
        "target_scene_count, status) SELECT md5('p' || i)::uuid, 'prompt', 'cinematic', '16:9', "
        f"8, 3, 'done' FROM generate_series(0, {PROJECTS - 1}) AS i",
        "INSERT INTO scenes (id, project_id, scene_index, scene_description, start_frame_prompt, "
        f"end_frame_prompt, video_motion_prompt, status) SELECT md5(i::text)::uuid, {project}, "
        f"{per_project}, 'a scene', 'start', 'end', 'motion', 'done' "
        "FROM generate_series(0, :last) AS i",
        "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, asset_tags, "
        f"new_asset_count) SELECT {project}, {per_project}, "
        "jsonb_build_object('scene', i), jsonb_build_array('CHAR_' || mod(i, 50), "
        "'LOC_' || mod(i, 20)), 0 FROM generate_series(0, :last) AS i",
        "INSERT INTO scene_audio_manifests (project_id, scene_index, speaker_tags, has_dialogue, "
        f"has_music) SELECT {project}, {per_project}, jsonb_build_array('CHAR_' || mod(i, 50)), "
        "true, false FROM generate_series(0, :last) AS i",
    )
    for statement in statements:
        connection.execute(sa.text(statement), {"last": rows - 1})
    connection.exec_driver_sql("ANALYZE")


@dataclass
class WriteLoad:
    """What the writer saw: each write's start (monotonic clock) and duration, and errors."""

    starts: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def longest(self, start: float = 0.0, end: float = float("inf")) -> tuple[float, int]:
        """The longest write that started in [start, end), and how many did."""
        inside = [s for t, s in zip(self.starts, self.seconds, strict=True) if start <= t < end]
        return (max(inside, default=0.0), len(inside))


def _write(url: str, rows: int, first: int, stop: Event, ready: Event, results: Pipe) -> None:
    """The application: one transaction after another, each inserting a scene and its
    manifest (scene indexes from ``first`` on) and updating an existing manifest and scene,
    until ``stop``."""
    engine = create_engine(url, poolclass=NullPool)
    load = WriteLoad()
    project = "md5('p' || :project)::uuid"
    statements = [
        sa.text(
            "INSERT INTO scenes (id, project_id, scene_index, scene_description, "
            "start_frame_prompt, end_frame_prompt, video_motion_prompt, status) VALUES "
            f"(gen_random_uuid(), {project}, :index, 'new', 's', 'e', 'm', 'new')"
        ),
        sa.text(
            "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, asset_tags, "
            f"new_asset_count) VALUES ({project}, :index, '{{}}', '[\"CHAR_01\"]', 0)"
        ),
        sa.text(
            "UPDATE scene_manifests SET new_asset_count = new_asset_count + 1 "
            f"WHERE project_id = {project} AND scene_index = :existing"
        ),
        sa.text(
            f"UPDATE scenes SET status = 'edited' WHERE project_id = {project} "
            "AND scene_index = :existing"
        ),
    ]
    count = 0
    with engine.connect() as connection:
        ready.set()
        while not stop.is_set():
            count += 1
            values = {
                "project": count % PROJECTS,
                "index": first + count,
                "existing": (count * 7919) % max(1, rows // PROJECTS),
            }
            started = time.monotonic()
            try:
                with connection.begin():
                    for statement in statements:
                        connection.execute(statement, values)
            except sa.exc.DBAPIError as exc:
                load.errors.append(str(exc.orig).splitlines()[0])
            load.starts.append(started)
            load.seconds.append(time.monotonic() - started)
    engine.dispose()
    results.send(load)


class _Writer:
    """The writer process, started and stopped around a block."""

    def __init__(self, url: sa.URL, rows: int, first: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        ready = context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_write,
            args=(url.render_as_string(hide_password=False), rows, first, self._stop, ready, send),
        )
        self._process.start()
        if not ready.wait(60):
            raise RuntimeError("the writer process did not start")

    def stop(self) -> WriteLoad:
        self._stop.set()
        load: WriteLoad = self._receive.recv()
        self._process.join(60)
        return load


def _upgrade_head(url: sa.URL) -> list[tuple[float, str]]:
    """``alembic upgrade head`` in its own process; its "Running upgrade" lines, timestamped."""
    env = {**os.environ, "VIDPIPE_DATABASE_URL": url.render_as_string(hide_password=False)}
    command = [sys.executable, "-m", "alembic", "-c", os.path.join(REPO_ROOT, "alembic.ini")]
    process = subprocess.Popen(
        [*command, "upgrade", "head"], env=env, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    assert process.stderr is not None
    marks = [(time.monotonic(), "start")]
    log = []
    for line in process.stderr:
        log.append(line)
        if "Running upgrade" in line:
            step = line.split("Running upgrade", 1)[1].split(",", 1)[0].strip()
            marks.append((time.monotonic(), step))
    if process.wait() != 0:
        raise RuntimeError("alembic upgrade head failed:\n" + "".join(log))
    marks.append((time.monotonic(), "end"))
    return marks


def write_load(url: sa.URL, rows: int, baseline_seconds: float) -> list[Row]:
    """The longest application write with no migration, and during each revision's part of
    ``alembic upgrade head`` from ``vidpipe_0002``, on a database holding ``rows`` rows."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        upgrade(engine, START)
        with engine.begin() as connection:
            fill(connection, rows)
    finally:
        engine.dispose()

    writer = _Writer(url, rows, WRITER_SCENE_INDEX)
    time.sleep(baseline_seconds)
    baseline = writer.stop()

    writer = _Writer(url, rows, 2 * WRITER_SCENE_INDEX)
    try:
        time.sleep(min(1.0, baseline_seconds))
        marks = _upgrade_head(url)
        time.sleep(min(1.0, baseline_seconds))
    finally:
        during = writer.stop()

    quiet, quiet_count = baseline.longest()
    upgrade_wait, upgrade_count = during.longest(marks[0][0], marks[-1][0])
    errors = len(baseline.errors) + len(during.errors)
    rows_out = [
        Row(
            f"longest application write during alembic upgrade head, {rows:,} rows",
            "postgresql",
            f"{upgrade_count} writes in {marks[-1][0] - marks[0][0]:.1f} s of upgrade",
            upgrade_wait,
            f"no migration ({quiet_count} writes)",
            quiet,
            target="at most 1 s, no error",
            note=f"{errors} application errors"
            + (f": {sorted(set(baseline.errors + during.errors))[:3]}" if errors else ""),
        )
    ]
    for (start, step), (end, _) in itertools.pairwise(marks[1:]):
        longest, count = during.longest(start, end)
        rows_out.append(
            Row(
                f"  of which {step}",
                "postgresql",
                f"{count} writes in {end - start:.1f} s",
                longest,
                "no migration",
                quiet,
            )
        )
    return rows_out
