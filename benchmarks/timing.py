"""Small timing helpers: the median of repeated runs, in seconds."""

import gc
import statistics
import subprocess
import time
from collections.abc import Callable


def median_seconds(
    run: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``run`` over ``repeat`` runs, each after an untimed ``setup``.

    One untimed run first warms caches (SQLAlchemy's compiled statements, the driver's), as in
    a process that has been serving for a while; the garbage collector is paused while a run is
    timed, as ``timeit`` does, so a collection that happens to fall in one run does not decide it.
    """
    samples = []
    for attempt in range(repeat + 1):
        if setup is not None:
            setup()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        if attempt:
            samples.append(elapsed)
    return statistics.median(samples)


def process_seconds(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one fresh process, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start
