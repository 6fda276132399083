"""Small timing helpers: the median of repeated runs, in seconds."""

import gc
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple


def median_seconds(
    run: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``run`` over ``repeat`` runs, each after an untimed ``setup``."""
    [seconds] = interleaved_median_seconds([run], repeat, setup)
    return seconds


def interleaved_median_seconds(
    runs: Sequence[Callable[[], object]], repeat: int, setup: Callable[[], object] | None = None
) -> list[float]:
    """Median wall time of each of ``runs`` over ``repeat`` rounds (see :func:`interleaved`)."""
    return [
        statistics.median(s.wall for s in samples) for samples in interleaved(runs, repeat, setup)
    ]


class Sample(NamedTuple):
    """One timed run: wall time, and the CPU time of this process (seconds)."""

    wall: float
    cpu: float


def interleaved(
    runs: Sequence[Callable[[], object]], repeat: int, setup: Callable[[], object] | None = None
) -> list[list[Sample]]:
    """Each of ``runs`` timed in ``repeat`` rounds, each run after an untimed ``setup``: per run,
    its samples in round order.

    The runs take turns, in an order that rotates every round, so that a shared machine's load,
    which comes and goes, falls on a run and its baseline alike instead of on whichever ran in
    the busy minute. One untimed round first warms caches (SQLAlchemy's compiled statements, the
    driver's), as in a process that has been serving for a while; the garbage collector is
    paused while a run is timed, as ``timeit`` does, so a collection that happens to fall in one
    run does not decide it.
    """
    samples: list[list[Sample]] = [[] for _ in runs]
    for attempt in range(repeat + 1):
        turn = attempt % len(runs)
        for index in [*range(turn, len(runs)), *range(turn)]:
            if setup is not None:
                setup()
            gc.collect()
            gc.disable()
            try:
                start, start_cpu = time.perf_counter(), time.process_time()
                runs[index]()
                sample = Sample(time.perf_counter() - start, time.process_time() - start_cpu)
            finally:
                gc.enable()
            if attempt:
                samples[index].append(sample)
    return samples


def paired_ratio(ours: Sequence[float], baseline: Sequence[float]) -> float:
    """The median over rounds of ours / baseline within a round: load that lasts a round falls
    on both sides of each ratio, where a ratio of medians takes each median from other rounds."""
    return statistics.median(o / b for o, b in zip(ours, baseline, strict=True))


def process_seconds(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one fresh process, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start
