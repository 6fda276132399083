"""The benchmark command runs (at a toy size); its numbers live in the README, not here."""

import subprocess
import sys

import pytest

from tests.support.cli import REPO_ROOT
from tests.support.databases import dialect_params


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks ARGS`` from the repository; it must exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_benchmarks_run_at_a_tiny_size() -> None:
    result = run_benchmarks("--tiny")
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "x |" in line]
    benchmarks = {(row.split(" | ")[0][2:], row.split(" | ")[1]) for row in rows}
    for dialect in ("sqlite", "postgresql"):
        assert ("start-up check at head", dialect) in benchmarks
        assert ("cold upgrade of a fresh database", dialect) in benchmarks


@pytest.mark.parametrize("dialect", dialect_params("mariadb"), indirect=True)
def test_the_store_benchmarks_run_alone_on_mariadb_at_a_tiny_size(dialect: str) -> None:
    """``python -m benchmarks save --dialects mariadb``: the raw baseline speaks PyMySQL too, the
    save path runs with its hand-written parts through Core, and a large storyboard is saved and
    loaded."""
    result = run_benchmarks("save", "--tiny", "--dialects", dialect)
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ")]
    rows = [row for row in rows if row[0] != "| benchmark"]
    assert {row[1] for row in rows} == {dialect}
    assert any("raw driver executemany per project" in row[3] for row in rows)
    core: dict[str, list[str]] = {}  # each way of saving: what went through Core
    for row in rows:
        if row[2].startswith("save_storyboard as it is"):
            core.setdefault(row[0].rsplit(", ", 1)[1], []).append(row[3].split(":")[0])
    assert set(core) == {"in storyboard_batch", "one write per call"}
    assert core["in storyboard_batch"] == core["one write per call"]
    assert core["one write per call"][-1] == "plain Core (every part)"
    large = [row[0][2:] for row in rows if row[0].endswith("one storyboard of 50 enhanced scenes")]
    assert large == [f"{verb} one storyboard of 50 enhanced scenes" for verb in ("save", "load")]


@pytest.mark.parametrize("dialect", dialect_params(), indirect=True)
def test_write_load_benchmark_runs_at_a_tiny_size(dialect: str) -> None:
    """``python -m benchmarks write-load --tiny --dialects D``: a writer in another process
    during ``alembic upgrade head``, with no application error on any dialect."""
    result = run_benchmarks("write-load", "--tiny", "--dialects", dialect)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    [during] = [row for row in rows if "longest application write during" in row]
    assert during.split(" | ")[1] == dialect
    assert during.endswith("| 0 application errors |")
    assert any("of which vidpipe_0005 -> vidpipe_0006" in row for row in rows)
