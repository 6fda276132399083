"""Run the benchmarks and print a Markdown table:
``python -m benchmarks [save|write-load] [--tiny] [--dialects ...]``.

Without a mode, the save, start-up, upgrade and look-up benchmarks; ``save``, the store's save
and load benchmarks alone (the ones that also run on MariaDB: ``--dialects mariadb``);
``write-load``, the longest application write while ``alembic upgrade head`` runs
(benchmarks/write_load.py; PostgreSQL unless ``--dialects`` names others: all three dialects
can run it).
``--tiny`` runs at a toy size, to prove the command works (the test suite does).
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
from benchmarks.scaling import large_storyboards
from benchmarks.storyboards import find_asset, save_against_core, save_storyboards
from benchmarks.write_load import write_load
from tests.support.databases import fresh_database, server_unreachable

SIZES = {
    "full": {"calls": 200, "repeat": 5, "scenes": 1_000_000, "projects": 200, "manifests": 100_000},
    "tiny": {"calls": 3, "repeat": 1, "scenes": 2_000, "projects": 3, "manifests": 200},
}
#: the save path against plain Core: (projects, rounds); more rounds than the other rows, as
#: the decisions it informs sit near a 20% line.
AGAINST_CORE = {"full": (100, 15), "tiny": (3, 1)}
#: save and load of one storyboard: (small, large) scene counts, and rounds (more than the
#: other rows: the ratio sits within 2x of its target, and a shared machine moves it that much).
STORYBOARD_SCENES = {"full": ((100, 1_000), 15), "tiny": ((5, 50), 1)}
#: write-load: rows per table, and how long the writer runs with no migration (seconds), per
#: dialect. SQLite's full size is issue 17's: 500,000 rows, the size at which writers failed.
WRITE_LOAD = {
    "postgresql": {"full": (1_000_000, 10.0), "tiny": (2_000, 1.0)},
    "mariadb": {"full": (1_000_000, 10.0), "tiny": (2_000, 1.0)},
    "sqlite": {"full": (500_000, 10.0), "tiny": (2_000, 1.0)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=("all", "save", "write-load"), default="all")
    parser.add_argument("--tiny", action="store_true", help="toy sizes, to check the command runs")
    parser.add_argument(
        "--dialects",
        help="comma-separated (default: sqlite,postgresql; write-load: postgresql)",
    )
    parser.add_argument("--rows", type=int, help="write-load: rows per table")
    args = parser.parse_args()
    scale = "tiny" if args.tiny else "full"
    default_dialects = "postgresql" if args.mode == "write-load" else "sqlite,postgresql"
    dialects = (args.dialects or default_dialects).split(",")
    size = SIZES[scale]

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        for dialect in dialects if args.mode == "write-load" else ():
            reason = server_unreachable(dialect)
            if reason:
                raise SystemExit(f"cannot benchmark {reason}")
            count, baseline_seconds = WRITE_LOAD[dialect][scale]
            with fresh_database(dialect, workdir / f"write-load-{dialect}") as url:
                rows.extend(write_load(url, args.rows or count, baseline_seconds))
        for dialect in dialects if args.mode in ("all", "save") else ():
            reason = server_unreachable(dialect)
            if reason:
                raise SystemExit(f"cannot benchmark {reason}")
            with fresh_database(dialect, workdir / f"save-{dialect}") as url:
                rows.extend(save_storyboards(url, dialect, size["projects"], size["repeat"]))
            with fresh_database(dialect, workdir / f"core-{dialect}") as url:
                rows.extend(save_against_core(url, dialect, *AGAINST_CORE[scale]))
            with fresh_database(dialect, workdir / f"large-{dialect}") as url:
                rows.extend(large_storyboards(url, dialect, *STORYBOARD_SCENES[scale]))
            if args.mode == "save":
                continue
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
