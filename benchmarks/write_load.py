"""Application writes during ``alembic upgrade head``: how long does any write wait?

``python -m benchmarks write-load [--tiny] [--rows N]`` (PostgreSQL). A database at
``vidpipe_0002`` gets ``rows`` rows in each table the later revisions change (``manifests``,
``assets``, ``projects``, ``scenes``, ``video_clips``, ``scene_manifests``,
``scene_audio_manifests``), generated server-side. A writer process then inserts and updates
rows of all those tables in short transactions, one after another, and times each transaction,
twice: for a while with nothing else running (the baseline), and while ``alembic upgrade head``
runs in its own process. The upgrade's log lines are timestamped as they arrive, so each write
is charged to the revision that was running when it started; and while the upgrade runs, a
sampler reads ``pg_locks`` every 10 ms for the writer's lock waits and the migration's lock and
statement behind each: a revision that still blocks writes shows up by name, table and lock.
"""

import itertools
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from multiprocessing.synchronize import Event

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.report import Row
from vidpipe.db import create_engine, upgrade

__all__ = ["PROJECTS", "SCENE_WRITES", "TABLE_WRITES", "WriteLoad", "fill", "write_load"]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Projects the generated rows are spread over (a project holds ``rows / PROJECTS`` scenes).
PROJECTS = 1_000
#: The revision the upgrade starts from: the manifest tables exist, nothing indexes their tags.
START = "vidpipe_0002"
#: Scene indexes the writers use start above this, above every generated one (the second
#: writer above twice this).
WRITER_SCENE_INDEX = 10_000_000


def fill(connection: sa.Connection, rows: int) -> None:
    """Insert ``rows`` rows into each table the revisions after ``vidpipe_0002`` change
    (manifests, assets, projects, scenes, video_clips, scene_manifests, scene_audio_manifests)
    of a PostgreSQL database at ``vidpipe_0002``, generated inside the server.

    The first PROJECTS projects hold the scenes, ``rows / PROJECTS`` each; every scene has a
    manifest, an audio manifest and a video clip, every manifest an asset."""
    project = f"md5('p' || mod(i, {PROJECTS}))::uuid"
    scene_index = f"i / {PROJECTS}"
    statements = (
        "INSERT INTO manifests (id, name, category, status, asset_count, total_processing_cost, "
        "times_used, version) SELECT md5('m' || i)::uuid, 'manifest', 'CUSTOM', 'READY', 1, 0, "
        "0, 1 FROM generate_series(0, :last) AS i",
        "INSERT INTO assets (id, manifest_id, asset_type, name, manifest_tag, source, "
        "sort_order, is_face_crop) SELECT md5('a' || i)::uuid, md5('m' || i)::uuid, "
        "'CHARACTER', 'asset', 'CHAR_' || mod(i, 50), 'uploaded', 0, false "
        "FROM generate_series(0, :last) AS i",
        "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
        "target_scene_count, status) SELECT md5('p' || i)::uuid, 'prompt', 'cinematic', '16:9', "
        f"8, 3, 'done' FROM generate_series(0, greatest(:last, {PROJECTS - 1})) AS i",
        "INSERT INTO scenes (id, project_id, scene_index, scene_description, start_frame_prompt, "
        f"end_frame_prompt, video_motion_prompt, status) SELECT md5(i::text)::uuid, {project}, "
        f"{scene_index}, 'a scene', 'start', 'end', 'motion', 'done' "
        "FROM generate_series(0, :last) AS i",
        "INSERT INTO video_clips (id, scene_id, source, status, poll_count, "
        "veo_submission_count, safety_regen_count) SELECT md5('v' || i)::uuid, "
        "md5(i::text)::uuid, 'generated', 'done', 0, 0, 0 FROM generate_series(0, :last) AS i",
        "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, asset_tags, "
        f"new_asset_count) SELECT {project}, {scene_index}, "
        "jsonb_build_object('scene', i), jsonb_build_array('CHAR_' || mod(i, 50), "
        "'LOC_' || mod(i, 20)), 0 FROM generate_series(0, :last) AS i",
        "INSERT INTO scene_audio_manifests (project_id, scene_index, speaker_tags, has_dialogue, "
        f"has_music) SELECT {project}, {scene_index}, jsonb_build_array('CHAR_' || mod(i, 50)), "
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


#: What the writer's sessions call themselves, so the lock-wait sampler finds them.
WRITER_NAME = "vidpipe-write-load"
_PROJECT = "md5('p' || :project)::uuid"
#: The writer's main transaction: a new scene and its manifest, an existing manifest and scene.
SCENE_WRITES = (
    "INSERT INTO scenes (id, project_id, scene_index, scene_description, "
    "start_frame_prompt, end_frame_prompt, video_motion_prompt, status) VALUES "
    f"(gen_random_uuid(), {_PROJECT}, :index, 'new', 's', 'e', 'm', 'new')",
    "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, asset_tags, "
    f"new_asset_count) VALUES ({_PROJECT}, :index, '{{}}', '[\"CHAR_01\"]', 0)",
    "UPDATE scene_manifests SET new_asset_count = new_asset_count + 1 "
    f"WHERE project_id = {_PROJECT} AND scene_index = :existing",
    f"UPDATE scenes SET status = 'edited' WHERE project_id = {_PROJECT} "
    "AND scene_index = :existing",
)
#: After each main transaction, one of these in its own transaction, in turn: every other table
#: a revision changes gets written too. One table each, as an application's request would.
TABLE_WRITES = (
    "UPDATE projects SET status = 'edited' WHERE id = md5('p' || :row)::uuid",
    "UPDATE manifests SET times_used = times_used + 1 WHERE id = md5('m' || :row)::uuid",
    "UPDATE assets SET sort_order = sort_order + 1 WHERE id = md5('a' || :row)::uuid",
    "UPDATE video_clips SET poll_count = poll_count + 1 WHERE id = md5('v' || :row)::uuid",
    "UPDATE scene_audio_manifests SET has_music = NOT has_music "
    f"WHERE project_id = {_PROJECT} AND scene_index = :existing",
)


def _write(url: str, rows: int, first: int, stop: Event, ready: Event, results: Pipe) -> None:
    """The application, until ``stop``: one short transaction after another, alternately the
    scene writes (scene indexes from ``first`` on) and one of the other tables' updates."""
    engine = create_engine(url, poolclass=NullPool)
    load = WriteLoad()
    scene_writes = [sa.text(statement) for statement in SCENE_WRITES]
    other_writes = [sa.text(statement) for statement in TABLE_WRITES]
    count = 0
    with engine.connect() as connection:
        connection.exec_driver_sql(f"SET application_name = '{WRITER_NAME}'")
        connection.commit()
        ready.set()
        while not stop.is_set():
            count += 1
            values = {
                "project": count % PROJECTS,
                "index": first + count,
                "existing": (count * 7919) % max(1, rows // PROJECTS),
                "row": (count * 7919) % rows,
            }
            for statements in (scene_writes, [other_writes[count % len(other_writes)]]):
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


#: What the writer waits behind, whenever it waits for a table lock: the migration's lock on that
#: table (held, or queued ahead of the writer) that conflicts with a write, and the statement the
#: migration runs (or last ran) at that moment. A wait is told apart by the writer's statement
#: start.
_WAITS = sa.text(
    "SELECT a.query_start, c.relname, w.mode, h.mode, h.granted, b.query, "
    "extract(epoch FROM clock_timestamp() - a.query_start) "
    "FROM pg_stat_activity a "
    "JOIN pg_locks w ON w.pid = a.pid AND NOT w.granted AND w.locktype = 'relation' "
    "JOIN pg_class c ON c.oid = w.relation "
    "JOIN pg_locks h ON h.relation = w.relation AND h.pid = ANY(pg_blocking_pids(a.pid)) "
    "AND h.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', "
    "'AccessExclusiveLock') "
    "JOIN pg_stat_activity b ON b.pid = h.pid "
    "WHERE a.application_name = :writer AND a.datname = current_database()"
)
#: How often the sampler looks (seconds), the shortest wait it reports, and how many at most.
_SAMPLE_EVERY = 0.01
_REPORTED_WAIT = 0.05
_REPORTED_BLOCKERS = 5


@dataclass(frozen=True)
class _Blocker:
    """A lock the writer waited for, and the migration's lock it waited behind."""

    table: str
    wanted: str
    blocking: str
    held: bool


@dataclass
class _Wait:
    """One wait of the writer: the migration's statement when it was first seen (the one that
    took the lock, or soon after), how long it lasted, and when (monotonic clock)."""

    statement: str
    seconds: float = 0.0
    seen: float = 0.0


class _LockWaits(threading.Thread):
    """Samples the writer's lock waits while the upgrade runs."""

    def __init__(self, url: sa.URL) -> None:
        super().__init__(daemon=True)
        self._engine = create_engine(url, poolclass=NullPool)
        self._done = threading.Event()
        self._waits: dict[tuple[object, _Blocker], _Wait] = {}

    def run(self) -> None:
        with self._engine.connect() as connection:
            while not self._done.wait(_SAMPLE_EVERY):
                found = connection.execute(_WAITS, {"writer": WRITER_NAME}).all()
                connection.rollback()
                for began, table, wanted, blocking, held, statement, seconds in found:
                    key = (began, _Blocker(table, wanted, blocking, held))
                    wait = self._waits.setdefault(key, _Wait(" ".join(statement.split())))
                    wait.seconds, wait.seen = float(seconds), time.monotonic()

    def stop(self) -> None:
        self._done.set()
        self.join(60)
        self._engine.dispose()

    def longest(self) -> list[tuple[_Blocker, _Wait]]:
        """The longest wait behind each blocker, longest first."""
        longest: dict[_Blocker, _Wait] = {}
        for (_began, blocker), wait in self._waits.items():
            if wait.seconds > longest.get(blocker, _Wait("")).seconds:
                longest[blocker] = wait
        return sorted(longest.items(), key=lambda item: -item[1].seconds)


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
    waits = _LockWaits(url)
    waits.start()
    try:
        time.sleep(min(1.0, baseline_seconds))
        marks = _upgrade_head(url)
        time.sleep(min(1.0, baseline_seconds))
    finally:
        during = writer.stop()
        waits.stop()

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
    return rows_out + _blocker_rows(waits.longest(), marks, quiet)


def _blocker_rows(
    waits: list[tuple[_Blocker, _Wait]], marks: list[tuple[float, str]], quiet: float
) -> list[Row]:
    """The writer's longest lock waits, each with the revision it fell in and what blocked it."""
    rows = []
    for blocker, wait in waits[:_REPORTED_BLOCKERS]:
        if wait.seconds < _REPORTED_WAIT:
            break
        step = next((step for at, step in reversed(marks) if at <= wait.seen), "start")
        statement = wait.statement if len(wait.statement) <= 80 else wait.statement[:77] + "..."
        rows.append(
            Row(
                f"  lock wait on {blocker.table} during {step}",
                "postgresql",
                f"{blocker.wanted} behind the migration's {blocker.blocking} "
                f"({'held' if blocker.held else 'queued'}; its statement: {statement})",
                wait.seconds,
                "no migration",
                quiet,
            )
        )
    return rows
