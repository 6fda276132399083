"""The previous release's own code, installed in a virtualenv of its own, for the
backwards-compatibility job (tests/compatibility/test_previous_release.py).

The previous release is the newest one in ``migrations/released/``; its code is the commit that
last changed that release's checksum file (the commit that froze its revisions). That commit is
taken from git (``git archive``: CI clones with history) and installed with its own
dependencies, with pip, into ``.venv/previous-release-<version>-<commit>``: inside the project's
virtualenv, so .ci/run, which makes ``.venv`` afresh, builds it once per run
(``python -m tests.support.previous_release`` prints its Python), and every dialect's test reuses it.
``$VIDPIPE_PREVIOUS_RELEASE_PYTHON`` names an interpreter that has it installed instead.
"""

import fcntl
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.cli import REPO_ROOT

PYTHON_ENV_VAR = "VIDPIPE_PREVIOUS_RELEASE_PYTHON"
RELEASED = REPO_ROOT / "migrations" / "released"


class PreviousReleaseUnavailable(RuntimeError):
    """The previous release's code cannot be had: the message says what to do."""


@dataclass(frozen=True)
class PreviousRelease:
    version: str
    commit: str
    #: Its source tree (``git archive`` of the commit): its own test helpers live there.
    source: Path
    #: The interpreter of the virtualenv it is installed in.
    python: Path


def previous_release() -> PreviousRelease:
    """The previous release, installed (built on first use, then reused)."""
    version = newest_release()
    commit = release_commit(version)
    home = REPO_ROOT / ".venv" / f"previous-release-{version}-{commit[:12]}"
    given = os.environ.get(PYTHON_ENV_VAR)
    python = Path(given) if given else home / "venv" / "bin" / "python"
    home.mkdir(parents=True, exist_ok=True)
    # Test processes run in parallel (pytest-xdist): one builds, the others wait for it.
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "source").is_dir():
            _unpack(commit, home / "source")
        if given is None and not python.exists():
            _install(home / "source", home / "venv")
    return PreviousRelease(version, commit, home / "source", python)


def newest_release() -> str:
    versions = [path.name.removesuffix(".sha256") for path in RELEASED.glob("*.sha256")]
    return max(versions, key=lambda version: tuple(map(int, version.split("."))))


def release_commit(version: str) -> str:
    listing = RELEASED.relative_to(REPO_ROOT) / f"{version}.sha256"
    found = _git("log", "-1", "--format=%H", "--", str(listing)).strip()
    if not found:
        raise PreviousReleaseUnavailable(
            f"No commit of this clone changed {listing}, so release {version}'s code cannot be "
            "found. Clone with the history (git fetch --unshallow), or set "
            f"${PYTHON_ENV_VAR} to a Python that has vidpipe-data {version} installed."
        )
    return found


def _unpack(commit: str, target: Path) -> None:
    archive = subprocess.run(["git", "archive", commit], cwd=REPO_ROOT, capture_output=True)
    if archive.returncode != 0:
        raise PreviousReleaseUnavailable(
            f"git archive {commit} failed ({archive.stderr.decode().strip()}): this clone lacks "
            f"the previous release's commit. Fetch the history (git fetch --unshallow), or set "
            f"${PYTHON_ENV_VAR}."
        )
    partial = Path(tempfile.mkdtemp(dir=target.parent))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(partial, filter="data")
    partial.rename(target)


def _install(source: Path, venv: Path) -> None:
    partial = venv.with_name(f"{venv.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(partial)], check=True)
    # Its own dependency ranges, resolved by pip as a user installing that release would.
    subprocess.run(
        [str(partial / "bin" / "pip"), "install", "-q", f"{source}[postgresql,mysql]"],
        check=True,
    )
    partial.rename(venv)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise PreviousReleaseUnavailable(
            f"git is not installed, so the previous release's code cannot be found: install it, "
            f"or set ${PYTHON_ENV_VAR}."
        ) from exc
    if done.returncode != 0:
        raise PreviousReleaseUnavailable(
            f"git {' '.join(args)} failed ({done.stderr.strip()}): run the tests from a git "
            f"clone with its history, or set ${PYTHON_ENV_VAR}."
        )
    return done.stdout


if __name__ == "__main__":
    print(previous_release().python)
