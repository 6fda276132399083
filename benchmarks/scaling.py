"""A large storyboard saved and loaded, against a small one: both should grow with the scenes.

A load once decoded the whole ``storyboard_raw`` on every row (and SQLite and MariaDB copied it
onto every row), so 1,000 scenes took 27 s on SQLite where 100 took 0.2 s; the target, at most
10x for 10x the scenes, allows a little for the growing caches and indexes, not for work
repeated per scene.

Nearly everything in a save grows with its scenes, so the ratio sits near 8x, with little fixed
cost to lower it, and a shared machine's load moved medians of 5 rounds by 2x (MariaDB's save:
5.5x to 11.8x in nine runs of the same code, 2026-12-04). The row takes 15 rounds, and its note
gives the paired ratios (median over rounds of the two within one round: load that lasts a
round falls on both) of wall and CPU time; CPU time is this process's alone, not the server's.
"""

import statistics

import sqlalchemy as sa
from sqlalchemy.orm import Session

from benchmarks.report import Row
from benchmarks.storyboards import clearer, insert_projects
from benchmarks.timing import Sample, interleaved, paired_ratio
from tests.support.storyboards import enhanced_storyboard
from vidpipe.db import create_engine, upgrade
from vidpipe.db.store import load_storyboard, save_storyboard


def large_storyboards(url: sa.URL, dialect: str, scenes: tuple[int, int], repeat: int) -> list[Row]:
    """Save, then load, one storyboard of ``scenes[1]`` enhanced scenes against ``scenes[0]``,
    in ``repeat`` rounds."""
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

        saves = interleaved(
            [lambda: saving(small), lambda: saving(large)], repeat, setup=clearer(engine)
        )
        for count in scenes:
            saving(count)
            assert loading(count) == storyboards[count]
        loads = interleaved([lambda: loading(small), lambda: loading(large)], repeat)
    finally:
        engine.dispose()
    return [
        Row(
            f"{verb} one storyboard of {large:,} enhanced scenes",
            dialect,
            f"{large:,} scenes",
            statistics.median(sample.wall for sample in samples[1]),
            f"{small:,} scenes",
            statistics.median(sample.wall for sample in samples[0]),
            target="at most 10x",
            note=f"{note}; {_paired(samples)}",
        )
        for verb, samples, note in (
            ("save", saves, "a first save, in its own transaction"),
            ("load", loads, "load_storyboard"),
        )
    ]


def _paired(samples: list[list[Sample]]) -> str:
    small, large = samples
    wall = paired_ratio([s.wall for s in large], [s.wall for s in small])
    cpu = paired_ratio([s.cpu for s in large], [s.cpu for s in small])
    return f"paired ratio: wall {wall:.2f}x, CPU {cpu:.2f}x"
