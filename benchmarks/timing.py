"""Small timing helpers: the median of repeated runs, in seconds."""

import gc
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence


def median_seconds(
    run: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``run`` over ``repeat`` runs, each after an untimed ``setup``."""
    [seconds] = interleaved_median_seconds([run], repeat, setup)
    return seconds


def interleaved_median_seconds(
    runs: Sequence[Callable[[], object]], repeat: int, setup: Callable[[], object] | None = None
) -> list[float]:
    """Median wall time of each of ``runs`` over ``repeat`` rounds, each run after an untimed
    ``setup``.

    The runs take turns, in an order that rotates every round, so that a shared machine's load,
    which comes and goes, falls on a run and its baseline alike instead of on whichever ran in
    the busy minute. One untimed round first warms caches (SQLAlchemy's compiled statements, the
    driver's), as in a process that has been serving for a while; the garbage collector is
    paused while a run is timed, as ``timeit`` does, so a collection that happens to fall in one
    run does not decide it.
    """
    samples: list[list[float]] = [[] for _ in runs]
    for attempt in range(repeat + 1):
        turn = attempt % len(runs)
        for index in [*range(turn, len(runs)), *range(turn)]:
            if setup is not None:
                setup()
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                runs[index]()
                elapsed = time.perf_counter() - start
            finally:
                gc.enable()
            if attempt:
                samples[index].append(elapsed)
    return [statistics.median(seconds) for seconds in samples]


def process_seconds(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one fresh process, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start
