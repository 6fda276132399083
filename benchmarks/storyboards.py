"""Saving storyboards, and finding the scenes an asset appears in."""

import json
import statistics
import tracemalloc
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from benchmarks.core_parts import PARTS, through_core
from benchmarks.report import Row
from benchmarks.timing import interleaved, interleaved_median_seconds, median_seconds, paired_ratio
from tests.support.storyboards import enhanced_storyboard
from vidpipe.db import create_engine, upgrade
from vidpipe.db.models import Project, Scene, SceneAudioManifest, SceneManifest
from vidpipe.db.store import save_storyboard, scenes_with_asset, storyboard_batch
from vidpipe.schemas.storyboard_enhanced import EnhancedStoryboardOutput

SCENES_PER_STORYBOARD = 8
TAGS = 500  # distinct asset tags among the generated manifests


def save_storyboards(url: sa.URL, dialect: str, projects: int, repeat: int) -> list[Row]:
    """Storyboards saved in one transaction, against raw executemany of the same rows.

    Two ways: ``save_storyboard`` per project inside one ``storyboard_batch`` (the target), and
    ``save_storyboard`` alone, writing each storyboard as it is called.
    """
    storyboard = enhanced_storyboard(*range(SCENES_PER_STORYBOARD))
    engine = create_engine(url)
    try:
        upgrade(engine)
        project_ids = insert_projects(engine, projects)
        clear = clearer(engine)

        def batched() -> None:
            with Session(engine) as session, session.begin(), storyboard_batch(session):
                for project_id in project_ids:
                    save_storyboard(session, project_id, storyboard)

        def one_by_one() -> None:
            with Session(engine) as session, session.begin():
                for project_id in project_ids:
                    save_storyboard(session, project_id, storyboard)

        def raw() -> None:
            _raw_save(engine, dialect, project_ids, storyboard, per_project=False)

        def raw_per_project() -> None:
            _raw_save(engine, dialect, project_ids, storyboard, per_project=True)

        runs = (batched, one_by_one, raw, raw_per_project)
        seconds = dict(
            zip(runs, interleaved_median_seconds(runs, repeat, setup=clear), strict=True)
        )
        peak = {run: _peak_memory(run, clear) for run in (batched, raw)}
    finally:
        engine.dispose()
    name = f"save {projects} storyboards x {SCENES_PER_STORYBOARD} enhanced scenes"
    return [
        Row(
            name,
            dialect,
            "save_storyboard in storyboard_batch",
            seconds[batched],
            "raw driver executemany",
            seconds[raw],
            target="at most 1.3x",
            note=f"peak Python memory {peak[batched] / 2**20:.1f} MiB "
            f"(raw: {peak[raw] / 2**20:.1f} MiB)",
        ),
        Row(
            name,
            dialect,
            "save_storyboard, one write per call",
            seconds[one_by_one],
            "raw driver executemany per project",
            seconds[raw_per_project],
            target="at most 2x",
            note="per call: a SAVEPOINT, the project lock and look-up, then an UPDATE and 3 "
            "INSERTs (with psycopg, in one round trip), and the RELEASE",
        ),
    ]


def save_against_core(url: sa.URL, dialect: str, projects: int, repeat: int) -> list[Row]:
    """The same saves with each hand-written part of the save path, then all of them, through
    plain SQLAlchemy Core (benchmarks/core_parts.py), all timed in one interleaved run. (With
    one part left, psycopg's pipeline, plain Core differs from the store on PostgreSQL only.)

    Both ways of saving: in one ``storyboard_batch`` and one write per call. The ratio that
    decides is the median over rounds of the store's wall time against the variant's in the same
    round (the note gives it, and the same for CPU time): a part stays hand-written only at 0.83x
    or less, Core being at least 20% slower.
    """
    storyboard = enhanced_storyboard(*range(SCENES_PER_STORYBOARD))
    engine = create_engine(url)
    rows = []
    try:
        upgrade(engine)
        project_ids = insert_projects(engine, projects)

        def saving(parts: tuple[str, ...], batched: bool) -> Callable[[], None]:
            def save() -> None:
                with (
                    through_core(*parts),
                    Session(engine) as session,
                    session.begin(),
                    storyboard_batch(session) if batched else nullcontext(),
                ):
                    for project_id in project_ids:
                        save_storyboard(session, project_id, storyboard)

            return save

        for batched, how in ((True, "in storyboard_batch"), (False, "one write per call")):
            variants: dict[str, tuple[str, ...]] = {
                "as it is": (),
                # Each part alone, when there is more than one.
                **{f"{part} through Core": (part,) for part in PARTS if len(PARTS) > 1},
                "plain Core (every part)": tuple(PARTS),
            }
            runs = [saving(parts, batched) for parts in variants.values()]
            samples = dict(
                zip(variants, interleaved(runs, repeat, setup=clearer(engine)), strict=True)
            )
            ours = samples.pop("as it is")
            rows.extend(
                Row(
                    f"save {projects} storyboards x {SCENES_PER_STORYBOARD} enhanced scenes, {how}",
                    dialect,
                    "save_storyboard as it is",
                    statistics.median(sample.wall for sample in ours),
                    variant,
                    statistics.median(sample.wall for sample in core),
                    target="at most 0.83x to stay hand-written",
                    note=f"paired ratio: wall "
                    f"{paired_ratio([s.wall for s in ours], [s.wall for s in core]):.2f}x, CPU "
                    f"{paired_ratio([s.cpu for s in ours], [s.cpu for s in core]):.2f}x",
                )
                for variant, core in samples.items()
            )
    finally:
        engine.dispose()
    return rows


def find_asset(url: sa.URL, dialect: str, manifests: int, repeat: int) -> Row:
    """Scenes in which one asset tag appears among ``manifests`` scene manifests."""
    engine = create_engine(url)
    try:
        upgrade(engine)
        _fill_manifests(engine, dialect, manifests)

        def look_up() -> None:
            with Session(engine) as session:
                assert scenes_with_asset(session, "CHAR_7")

        indexed = median_seconds(look_up, repeat)
        if dialect != "postgresql":
            return Row(
                f"find an asset tag among {manifests:,} manifests",
                dialect,
                "scenes_with_asset (JSON functions)",
                indexed,
                "",
                None,
            )
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_scene_manifests_asset_tags")
        unindexed = median_seconds(look_up, repeat)
    finally:
        engine.dispose()
    return Row(
        f"find an asset tag among {manifests:,} manifests",
        dialect,
        "scenes_with_asset, GIN index",
        indexed,
        "the same without the index",
        unindexed,
    )


def insert_projects(engine: sa.Engine, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(Project),
            [
                {
                    "id": i,
                    "prompt": "p",
                    "style": "cinematic",
                    "aspect_ratio": "16:9",
                    "target_clip_duration": 8,
                    "target_scene_count": 8,
                    "status": "draft",
                }
                for i in ids
            ],
        )
    return ids


def clearer(engine: sa.Engine) -> Callable[[], None]:
    """Before a timed run, remove every storyboard, so that each run makes first saves.

    PostgreSQL truncates: deleted rows would stay behind as dead tuples and slow each later run
    (and whichever side ran later) until autovacuum came by. The projects forget their kind, as
    projects that never had a storyboard do (a kind would make the store delete its tables).
    """

    def clear() -> None:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql(
                    "TRUNCATE scene_audio_manifests, scene_manifests, keyframes, video_clips, "
                    "scenes"
                )
            else:
                for model in (SceneAudioManifest, SceneManifest, Scene):
                    connection.execute(sa.delete(model))
            connection.execute(sa.update(Project).values(storyboard_kind=None))

    return clear


def _raw_save(
    engine: sa.Engine,
    dialect: str,
    project_ids: list[uuid.UUID],
    storyboard: EnhancedStoryboardOutput,
    per_project: bool,
) -> None:
    """The same rows, from the same Pydantic dump, through the DBAPI cursor alone.

    ``per_project``: one executemany per table for each project as it comes (what one
    ``save_storyboard`` per call is measured against); otherwise one per table for all of them.
    """
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"  # sqlite3; psycopg, PyMySQL

    def marks(n: int) -> str:
        return ", ".join([mark] * n)

    statements = (
        f"UPDATE projects SET style_guide = {mark}, characters = {mark}, "
        f"storyboard_kind = {mark}, storyboard_raw = {mark} WHERE id = {mark}",
        "INSERT INTO scenes (id, project_id, scene_index, scene_description, key_details, "
        "start_frame_prompt, end_frame_prompt, video_motion_prompt, transition_notes, status) "
        f"VALUES ({marks(10)})",
        "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, "
        "composition_shot_type, composition_camera_movement, asset_tags, new_asset_count) "
        f"VALUES ({marks(7)})",
        "INSERT INTO scene_audio_manifests (project_id, scene_index, dialogue_json, sfx_json, "
        "ambient_json, music_json, audio_continuity_json, speaker_tags, has_dialogue, "
        f"has_music) VALUES ({marks(10)})",
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if dialect == "sqlite":
            cursor.execute("BEGIN")  # vidpipe's SQLite connections leave BEGIN to the caller
        pending: tuple[list, list, list, list] = ([], [], [], [])
        for project_id in project_ids:
            for rows, more in zip(pending, _raw_rows(dialect, project_id, storyboard), strict=True):
                rows.extend(more)
            if per_project:
                for statement, rows in zip(statements, pending, strict=True):
                    cursor.executemany(statement, rows)
                    rows.clear()
        if not per_project:
            for statement, rows in zip(statements, pending, strict=True):
                cursor.executemany(statement, rows)
        raw.commit()
    finally:
        raw.close()


def _raw_rows(
    dialect: str, project_id: uuid.UUID, storyboard: EnhancedStoryboardOutput
) -> tuple[list, list, list, list]:
    """One project's rows of projects, scenes, scene_manifests and scene_audio_manifests."""
    document: Callable[[Any], Any] = (
        Jsonb if dialect == "postgresql" else lambda value: json.dumps(value)
    )
    # As SQLAlchemy binds them: CHAR(32) hex on SQLite, the UUID itself where it is native.
    key: Callable[[uuid.UUID], Any] = (lambda i: i.hex) if dialect == "sqlite" else (lambda i: i)
    data = storyboard.model_dump(mode="json")
    pid = key(project_id)
    projects = [
        (
            document(data["style_guide"]),
            document(data["characters"]),
            "enhanced",
            document(data),
            pid,
        )
    ]
    scenes, manifests, audio = [], [], []
    for scene in data["scenes"]:
        index, manifest, sound = (
            scene["scene_index"],
            scene["scene_manifest"],
            scene["audio_manifest"],
        )
        scenes.append(
            (
                key(uuid.uuid4()),
                pid,
                index,
                scene["scene_description"],
                document(scene["key_details"]),
                scene["start_frame_prompt"],
                scene["end_frame_prompt"],
                scene["video_motion_prompt"],
                scene["transition_notes"],
                "pending",
            )
        )
        manifests.append(
            (
                pid,
                index,
                document(manifest),
                manifest["composition"]["shot_type"],
                manifest["composition"]["camera_movement"],
                document(list(dict.fromkeys(p["asset_tag"] for p in manifest["placements"]))),
                len(manifest["new_asset_declarations"] or []),
            )
        )
        audio.append(
            (
                pid,
                index,
                document(sound["dialogue_lines"]),
                document(sound["sfx"]),
                document(sound["ambient"]),
                document(sound["music"]),
                document(sound["audio_continuity"]),
                document(
                    list(dict.fromkeys(line["speaker_tag"] for line in sound["dialogue_lines"]))
                ),
                bool(sound["dialogue_lines"]),
                sound["music"] is not None,
            )
        )
    return projects, scenes, manifests, audio


def _peak_memory(run: Callable[[], None], setup: Callable[[], None]) -> int:
    setup()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _fill_manifests(engine: sa.Engine, dialect: str, count: int) -> None:
    """``count`` manifests over count/8 projects, each naming two of TAGS tags, made in SQL."""
    projects = max(count // SCENES_PER_STORYBOARD, 1)
    if dialect == "postgresql":
        pid, series = "md5('p' || {i})::uuid", "generate_series(0, {n}) AS i"
        tags = f"jsonb_build_array('CHAR_' || mod(i, {TAGS}), 'ENV_' || mod(i, 37))"
        document = "'{}'::jsonb"
    else:
        pid = "printf('%032x', {i})"
        series = (
            "(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
            "SELECT i FROM n)"
        )
        tags = f"json_array('CHAR_' || (i % {TAGS}), 'ENV_' || (i % 37))"
        document = "'{}'"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
            f"target_scene_count, status) SELECT {pid.format(i='i')}, 'p', 'cinematic', '16:9', "
            f"8, 8, 'done' FROM {series.format(n=projects - 1)}"
        )
        scene_project = pid.format(i=f"(i / {SCENES_PER_STORYBOARD})")
        connection.exec_driver_sql(
            "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, asset_tags, "
            f"new_asset_count) SELECT {scene_project}, i - (i / {SCENES_PER_STORYBOARD}) * "
            f"{SCENES_PER_STORYBOARD}, "
            f"{document}, {tags}, 0 FROM {series.format(n=count - 1)}"
        )
        if dialect == "postgresql":
            connection.exec_driver_sql("ANALYZE scene_manifests")
