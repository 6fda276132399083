"""A scratch copy of the repository, to work in as a maintainer does (edit models, write
revisions, cut a release) without touching the real one."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.cli import REPO_ROOT


def copy_repository(destination: Path) -> Path:
    """Copy the files git tracks (what a clone holds; uncommitted edits included) into
    ``destination``, and return it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():  # a file deleted but not yet committed is skipped
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def run(
    repository: Path, *args: str, url: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``repository`` with its own ``vidpipe`` package first on the path
    (not the installed one) and ``$VIDPIPE_DATABASE_URL`` = url."""
    env = {k: v for k, v in os.environ.items() if k != "VIDPIPE_DATABASE_URL"}
    env["PYTHONPATH"] = str(repository)
    if url is not None:
        env["VIDPIPE_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, *args],
        cwd=repository,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def alembic(
    repository: Path, *args: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``alembic ARGS`` with the repository's own alembic.ini."""
    return run(repository, "-m", "alembic", "-c", str(repository / "alembic.ini"), *args, url=url)
