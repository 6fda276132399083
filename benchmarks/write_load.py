"""Application writes during ``alembic upgrade head``: how long does any write wait?

``python -m benchmarks write-load [--tiny] [--rows N] [--dialects D,...]`` (PostgreSQL by
default; MariaDB and SQLite too). A database at ``vidpipe_0002`` gets ``rows`` rows in each
table the later revisions change (``manifests``, ``assets``, ``projects``, ``scenes``,
``video_clips``, ``scene_manifests``, ``scene_audio_manifests``), generated inside the
database. A writer process (vidpipe's engine and its settings) then inserts and updates
rows of all those tables in short transactions, one after another, and times each transaction,
twice: for a while with nothing else running (the baseline), and while ``alembic upgrade head``
runs in its own process. The upgrade's log lines are timestamped as they arrive, so each write
is charged to the revision that was running when it started; and while the upgrade runs, a
sampler reads ``pg_locks`` (MariaDB: ``information_schema.processlist``) every 10 ms for the
writer's lock waits and the migration's lock and statement behind each: a revision that still
blocks writes shows up by name, table and lock. On SQLite every writer waits for the one write
lock, in its ``busy_timeout``: the writes' durations are the waits.
"""

import itertools
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
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
#: What the longest write during the upgrade should stay under, per dialect (issue 17): on SQLite
#: every writer waits for the one write lock, so the target is a wait, never an error.
TARGETS = {
    "postgresql": "at most 1 s, no error",
    "mariadb": "at most 1 s, no error",
    "sqlite": "at most 5 s, no error",
}


@dataclass(frozen=True)
class _Sql:
    """The few SQL spellings the generated rows and the writer need, per dialect."""

    #: The ids of a table's rows: a uuid made from a one-letter kind and an integer expression.
    uuid_of: Callable[[str, str], str]
    #: A row source of integers ``i`` from 0 to ``last`` (a literal), and a prefix it needs.
    series: Callable[[int], tuple[str, str]]
    #: Integer division, a JSON object and a JSON array, and a new random uuid.
    div: str
    json_object: str
    json_array: str
    random_uuid: str
    concat: Callable[..., str]
    mod: Callable[[str, int], str]


def _sqlite_series(last: int) -> tuple[str, str]:
    return (
        f"WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {last}) ",
        "g",
    )


def _mariadb_uuid(kind: str, i: str) -> str:
    # MariaDB's UUID type refuses an md5 whose version digit is not a real version: make it 4.
    md5 = f"md5(concat('{kind}', {i}))"
    return f"concat(left({md5}, 12), '4', substr({md5}, 14))"


#: The hexadecimal prefix of each kind's ids on SQLite (which has no md5): 32 hex digits.
_SQLITE_KINDS = {"p": 1, "m": 2, "a": 3, "v": 4, "s": 5}
_SQL = {
    "postgresql": _Sql(
        uuid_of=lambda kind, i: f"md5('{kind}' || {i})::uuid",
        series=lambda last: ("", f"generate_series(0, {last}) AS g(i)"),
        div="/",
        json_object="jsonb_build_object",
        json_array="jsonb_build_array",
        random_uuid="gen_random_uuid()",
        concat=lambda *parts: " || ".join(parts),
        mod=lambda i, n: f"mod({i}, {n})",
    ),
    "mariadb": _Sql(
        uuid_of=_mariadb_uuid,
        series=lambda last: ("", f"(SELECT seq AS i FROM seq_0_to_{last}) AS g"),
        div="DIV",
        json_object="json_object",
        json_array="json_array",
        random_uuid="uuid()",
        concat=lambda *parts: f"concat({', '.join(parts)})",
        mod=lambda i, n: f"mod({i}, {n})",
    ),
    "sqlite": _Sql(
        uuid_of=lambda kind, i: f"printf('%08x%024x', {_SQLITE_KINDS[kind]}, {i})",
        series=_sqlite_series,
        div="/",
        json_object="json_object",
        json_array="json_array",
        random_uuid="lower(hex(randomblob(16)))",
        concat=lambda *parts: " || ".join(parts),
        mod=lambda i, n: f"({i} % {n})",
    ),
}


def fill(connection: sa.Connection, rows: int) -> None:
    """Insert ``rows`` rows into each table the revisions after ``vidpipe_0002`` change
    (manifests, assets, projects, scenes, video_clips, scene_manifests, scene_audio_manifests)
    of a database at ``vidpipe_0002``, generated inside the database.

    The first PROJECTS projects hold the scenes, ``rows / PROJECTS`` each; every scene has a
    manifest, an audio manifest and a video clip, every manifest an asset."""
    sql = _SQL[connection.dialect.name]
    uuid = sql.uuid_of
    project, scene_index = uuid("p", sql.mod("i", PROJECTS)), f"i {sql.div} {PROJECTS}"
    tag, location = sql.concat("'CHAR_'", sql.mod("i", 50)), sql.concat("'LOC_'", sql.mod("i", 20))
    statements = (
        (
            "INSERT INTO manifests (id, name, category, status, asset_count, "
            f"total_processing_cost, times_used, version) SELECT {uuid('m', 'i')}, 'manifest', "
            "'CUSTOM', 'READY', 1, 0, 0, 1 FROM {g}"
        ),
        (
            "INSERT INTO assets (id, manifest_id, asset_type, name, manifest_tag, source, "
            f"sort_order, is_face_crop) SELECT {uuid('a', 'i')}, {uuid('m', 'i')}, 'CHARACTER', "
            f"'asset', {tag}, 'uploaded', 0, false FROM {{g}}"
        ),
        (
            "INSERT INTO scenes (id, project_id, scene_index, scene_description, "
            "start_frame_prompt, end_frame_prompt, video_motion_prompt, status) SELECT "
            f"{uuid('s', 'i')}, {project}, {scene_index}, 'a scene', 'start', 'end', 'motion', "
            "'done' FROM {g}"
        ),
        (
            "INSERT INTO video_clips (id, scene_id, source, status, poll_count, "
            f"veo_submission_count, safety_regen_count) SELECT {uuid('v', 'i')}, {uuid('s', 'i')}, "
            "'generated', 'done', 0, 0, 0 FROM {g}"
        ),
        (
            "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, asset_tags, "
            f"new_asset_count) SELECT {project}, {scene_index}, {sql.json_object}('scene', i), "
            f"{sql.json_array}({tag}, {location}), 0 FROM {{g}}"
        ),
        (
            "INSERT INTO scene_audio_manifests (project_id, scene_index, speaker_tags, "
            f"has_dialogue, has_music) SELECT {project}, {scene_index}, {sql.json_array}({tag}), "
            "true, false FROM {g}"
        ),
    )
    projects = (
        "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
        f"target_scene_count, status) SELECT {uuid('p', 'i')}, 'prompt', 'cinematic', '16:9', "
        "8, 3, 'done' FROM {g}"
    )
    mariadb = connection.dialect.name == "mariadb"
    if mariadb:
        # The rows are consistent by construction; InnoDB checking each key against a table
        # bigger than its buffer pool, in random order, takes most of an hour at 1,000,000.
        connection.exec_driver_sql("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    # Parents first: SQLite checks foreign keys as the rows go in.
    for statement, last in (
        (statements[0], rows - 1),
        (statements[1], rows - 1),
        (projects, max(rows, PROJECTS) - 1),
        *((statement, rows - 1) for statement in statements[2:]),
    ):
        prefix, source = sql.series(last)
        # InnoDB stores rows in key order: inserted in that order, each goes at the end.
        order = " ORDER BY 1, 2" if mariadb else ""
        connection.exec_driver_sql(prefix + statement.format(g=source) + order)
    if mariadb:
        connection.exec_driver_sql("SET SESSION foreign_key_checks = 1, unique_checks = 1")
    if connection.dialect.name != "mariadb":  # InnoDB keeps its statistics up to date itself
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


#: What the writer's sessions call themselves on PostgreSQL, so the lock-wait sampler finds them.
WRITER_NAME = "vidpipe-write-load"


def writes(dialect: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The writer's statements on ``dialect``: its main transaction (a new scene and its
    manifest, an existing manifest and scene), and the one-table updates that follow it in turn
    (one table each, as an application's request would), so every table a revision changes
    gets written too."""
    sql = _SQL[dialect]
    project = sql.uuid_of("p", ":project")
    scene_writes = (
        "INSERT INTO scenes (id, project_id, scene_index, scene_description, "
        "start_frame_prompt, end_frame_prompt, video_motion_prompt, status) VALUES "
        f"({sql.random_uuid}, {project}, :index, 'new', 's', 'e', 'm', 'new')",
        "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, asset_tags, "
        f"new_asset_count) VALUES ({project}, :index, '{{}}', '[\"CHAR_01\"]', 0)",
        "UPDATE scene_manifests SET new_asset_count = new_asset_count + 1 "
        f"WHERE project_id = {project} AND scene_index = :existing",
        f"UPDATE scenes SET status = 'edited' WHERE project_id = {project} "
        "AND scene_index = :existing",
    )
    table_writes = (
        f"UPDATE projects SET status = 'edited' WHERE id = {sql.uuid_of('p', ':row')}",
        f"UPDATE manifests SET times_used = times_used + 1 WHERE id = {sql.uuid_of('m', ':row')}",
        f"UPDATE assets SET sort_order = sort_order + 1 WHERE id = {sql.uuid_of('a', ':row')}",
        f"UPDATE video_clips SET poll_count = poll_count + 1 WHERE id = {sql.uuid_of('v', ':row')}",
        "UPDATE scene_audio_manifests SET has_music = NOT has_music "
        f"WHERE project_id = {project} AND scene_index = :existing",
    )
    return scene_writes, table_writes


#: PostgreSQL's (tests/dialects/test_table_locks.py writes them by hand).
SCENE_WRITES, TABLE_WRITES = writes("postgresql")


def _write(url: str, rows: int, first: int, stop: Event, ready: Event, results: Pipe) -> None:
    """The application, until ``stop``: one short transaction after another, alternately the
    scene writes (scene indexes from ``first`` on) and one of the other tables' updates.

    Through vidpipe's engine, with the settings an application gets from it (on SQLite: WAL
    and a 30 s busy timeout)."""
    engine = create_engine(url, poolclass=NullPool)
    load = WriteLoad()
    scene_statements, table_statements = writes(engine.dialect.name)
    scene_writes = [sa.text(statement) for statement in scene_statements]
    other_writes = [sa.text(statement) for statement in table_statements]
    count = 0
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
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
                    failed = " ".join(str(exc.statement).split()[:3])
                    load.errors.append(f"{failed}: {str(exc.orig).splitlines()[0]}")
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


#: PostgreSQL: what the writer waits behind, whenever it waits for a table lock: the migration's
#: lock on that table (held, or queued ahead of the writer) that conflicts with a write, and the
#: statement the migration runs (or last ran) at that moment. A wait is told apart by the
#: writer's statement start.
_POSTGRESQL_WAITS = sa.text(
    "SELECT a.query_start, c.relname, w.mode || ' behind the migration''s ' || h.mode "
    "|| CASE WHEN h.granted THEN ' (held)' ELSE ' (queued)' END, b.query, "
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
#: MariaDB: the writer's statements waiting for a lock (a metadata lock behind DDL, or a row
#: lock), and the DDL statement running in the same database at that moment, if any. MariaDB
#: names no blocker, so the migration's statement is the one running meanwhile. A wait is told
#: apart by the writer's connection, statement and start (to 10 ms).
_MARIADB_WAITS = sa.text(
    "SELECT concat(w.id, ' ', round(unix_timestamp(now(6)) - w.time_ms / 1000, 2)), "
    "regexp_substr(w.info, '(?<=INTO |UPDATE )[a-z_]+'), w.state, m.info, w.time_ms / 1000 "
    "FROM information_schema.processlist w LEFT JOIN information_schema.processlist m "
    "ON m.db = w.db AND m.id <> w.id AND m.command = 'Query' "
    "AND m.info REGEXP '^(ALTER|CREATE|DROP|RENAME)' "
    "WHERE w.db = database() AND w.id <> connection_id() AND w.command = 'Query' "
    "AND w.info REGEXP '^(INSERT|UPDATE)' AND w.state LIKE '%lock%'"
)
_WAITS = {"postgresql": _POSTGRESQL_WAITS, "mariadb": _MARIADB_WAITS}
#: How often the sampler looks (seconds), the shortest wait it reports, and how many at most.
_SAMPLE_EVERY = 0.01
_REPORTED_WAIT = 0.05
_REPORTED_BLOCKERS = 5


@dataclass(frozen=True)
class _Blocker:
    """A lock the writer waited for: its table, and what it waited behind."""

    table: str
    behind: str


@dataclass
class _Wait:
    """One wait of the writer: the migration's statement when it was first seen (the one that
    took the lock, or soon after), how long it lasted, and when (monotonic clock)."""

    statement: str
    seconds: float = 0.0
    seen: float = 0.0


class _LockWaits(threading.Thread):
    """Samples the writer's lock waits while the upgrade runs (PostgreSQL and MariaDB; SQLite
    writers wait for the one database lock, which the writer's timings show)."""

    def __init__(self, url: sa.URL) -> None:
        super().__init__(daemon=True)
        self._engine = create_engine(url, poolclass=NullPool)
        self._done = threading.Event()
        self._waits: dict[tuple[object, _Blocker], _Wait] = {}

    def run(self) -> None:
        query = _WAITS.get(self._engine.dialect.name)
        if query is None:
            return
        with self._engine.connect() as connection:
            while not self._done.wait(_SAMPLE_EVERY):
                found = connection.execute(query, {"writer": WRITER_NAME}).all()
                connection.rollback()
                for began, table, behind, statement, seconds in found:
                    key = (began, _Blocker(table or "?", behind))
                    wait = self._waits.setdefault(key, _Wait(" ".join((statement or "").split())))
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
    dialect = engine.dialect.name
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
            dialect,
            f"{upgrade_count} writes in {marks[-1][0] - marks[0][0]:.1f} s of upgrade",
            upgrade_wait,
            f"no migration ({quiet_count} writes)",
            quiet,
            target=TARGETS[dialect],
            note=f"{errors} application errors"
            + (f": {sorted(set(baseline.errors + during.errors))[:3]}" if errors else ""),
        )
    ]
    for (start, step), (end, _) in itertools.pairwise(marks[1:]):
        longest, count = during.longest(start, end)
        rows_out.append(
            Row(
                f"  of which {step}",
                dialect,
                f"{count} writes in {end - start:.1f} s",
                longest,
                "no migration",
                quiet,
            )
        )
    return rows_out + _blocker_rows(dialect, waits.longest(), marks, quiet)


def _blocker_rows(
    dialect: str, waits: list[tuple[_Blocker, _Wait]], marks: list[tuple[float, str]], quiet: float
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
                dialect,
                f"{blocker.behind}; the migration's statement: {statement or 'none running'}",
                wait.seconds,
                "no migration",
                quiet,
            )
        )
    return rows
