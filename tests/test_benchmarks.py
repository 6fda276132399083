"""The benchmark command runs (at a toy size); its numbers live in the README, not here."""

import subprocess
import sys

from tests.cli import REPO_ROOT


def test_benchmarks_run_at_a_tiny_size() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "x |" in line]
    benchmarks = {(row.split(" | ")[0][2:], row.split(" | ")[1]) for row in rows}
    for dialect in ("sqlite", "postgresql"):
        assert ("start-up check at head", dialect) in benchmarks
        assert ("cold upgrade of a fresh database", dialect) in benchmarks
