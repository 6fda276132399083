"""Run the benchmarks and print a Markdown table: ``python -m benchmarks [--tiny]``.

``--tiny`` runs every benchmark at a toy size, to prove the command works (the test suite does).
"""

import argparse
import datetime
import os
import platform
import tempfile
from pathlib import Path

import sqlalchemy

from benchmarks.migrations import cold_upgrade, startup_check, upgrade_grown_database
from benchmarks.report import Row, markdown
from benchmarks.storyboards import find_asset, save_storyboards
from tests.databases import fresh_database, server_unreachable

SIZES = {
    "full": {"calls": 200, "repeat": 5, "scenes": 1_000_000, "projects": 200, "manifests": 100_000},
    "tiny": {"calls": 3, "repeat": 1, "scenes": 2_000, "projects": 3, "manifests": 200},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="toy sizes, to check the command runs")
    parser.add_argument("--dialects", default="sqlite,postgresql", help="comma-separated")
    args = parser.parse_args()
    size = SIZES["tiny" if args.tiny else "full"]

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        for dialect in args.dialects.split(","):
            reason = server_unreachable(dialect)
            if reason:
                raise SystemExit(f"cannot benchmark {reason}")
            with fresh_database(dialect, workdir / f"save-{dialect}") as url:
                rows.extend(save_storyboards(url, dialect, size["projects"], size["repeat"]))
            with fresh_database(dialect, workdir / f"startup-{dialect}") as url:
                rows.append(startup_check(url, dialect, size["calls"]))
            rows.append(cold_upgrade(dialect, workdir / dialect, size["repeat"]))
            rows.append(
                upgrade_grown_database(dialect, workdir / dialect, size["scenes"], size["repeat"])
            )
            with fresh_database(dialect, workdir / f"find-{dialect}") as url:
                rows.append(find_asset(url, dialect, size["manifests"], size["repeat"] * 5))
    machine = platform.processor() or platform.machine()
    print(
        f"{datetime.date.today()}, {machine}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}\n"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
