"""A large storyboard saved and loaded, against a small one: both should grow with the scenes.

A load once decoded the whole ``storyboard_raw`` on every row (and SQLite and MariaDB copied it
onto every row), so 1,000 scenes took 27 s on SQLite where 100 took 0.2 s; the target, at most
10x for 10x the scenes, allows a little for the growing caches and indexes, not for work
repeated per scene.
"""

import sqlalchemy as sa
from sqlalchemy.orm import Session

from benchmarks.report import Row
from benchmarks.storyboards import clearer, insert_projects
from benchmarks.timing import interleaved_median_seconds
from tests.support.storyboards import enhanced_storyboard
from vidpipe.db import create_engine, upgrade
from vidpipe.db.store import load_storyboard, save_storyboard


def large_storyboards(url: sa.URL, dialect: str, scenes: tuple[int, int], repeat: int) -> list[Row]:
    """Save, then load, one storyboard of ``scenes[1]`` enhanced scenes against ``scenes[0]``."""
    small, large = scenes
    storyboards = {count: enhanced_storyboard(*range(count)) for count in scenes}
    engine = create_engine(url)
    try:
        upgrade(engine)
        project_ids = dict(zip(scenes, insert_projects(engine, 2), strict=True))

        def saving(count: int) -> None:
            with Session(engine) as session, session.begin():
                save_storyboard(session, project_ids[count], storyboards[count])

        def loading(count: int) -> object:
            with Session(engine) as session:
                return load_storyboard(session, project_ids[count])

        save_seconds = interleaved_median_seconds(
            [lambda: saving(small), lambda: saving(large)], repeat, setup=clearer(engine)
        )
        for count in scenes:
            saving(count)
            assert loading(count) == storyboards[count]
        load_seconds = interleaved_median_seconds(
            [lambda: loading(small), lambda: loading(large)], repeat
        )
    finally:
        engine.dispose()
    return [
        Row(
            f"{verb} one storyboard of {large:,} enhanced scenes",
            dialect,
            f"{large:,} scenes",
            seconds[1],
            f"{small:,} scenes",
            seconds[0],
            target="at most 10x",
            note=note,
        )
        for verb, seconds, note in (
            ("save", save_seconds, "a first save, in its own transaction"),
            ("load", load_seconds, "load_storyboard"),
        )
    ]
