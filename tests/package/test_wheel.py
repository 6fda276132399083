"""The built wheel, installed in a new virtual environment, upgrades a database on its own.

Nothing of the repository is visible there: the wheel is installed (not editable) into a venv
made without ``--system-site-packages``, and everything runs in an empty directory. To stay
fast, the venv is made without pip and the running interpreter's pip installs into it
(``pip --python``); the dependencies come from pip's cache through the configured index.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import REPO_ROOT
from tests.support.revisions import HEAD

IN_THE_NEW_VENV = """
import importlib.resources, sqlite3, sys
from pathlib import Path
import alembic.util
import vidpipe
from vidpipe.db import upgrade, current_revision
from vidpipe.db.host import versions_directory

assert Path(vidpipe.__file__).is_relative_to(Path(sys.prefix)), vidpipe.__file__
# PEP 561: without the marker a host's type checker treats every vidpipe import as untyped.
assert importlib.resources.files("vidpipe").joinpath("py.typed").is_file(), "py.typed missing"
upgrade()  # the default URL: vidpipe.db here
print(current_revision())
# Mode B's alembic.ini line names the revisions as a package resource.
assert alembic.util.coerce_resource_to_filename("vidpipe:migrations/versions") == versions_directory()
print(sorted(p.name for p in versions_directory().glob("*.py")))
"""


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    # A clean environment: no PYTHONPATH, no VIDPIPE_DATABASE_URL leaking the repository in.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIDPIPE_DATABASE_URL")}
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding the wheel built from this checkout; returns its bin directory."""
    root = tmp_path_factory.mktemp("wheel")
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        root / "dist",
        REPO_ROOT,
        cwd=root,
    )
    (wheel,) = (root / "dist").glob("vidpipe_data-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", root / "venv", cwd=root)
    bin_dir = root / "venv" / "bin"
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        bin_dir / "python",
        "install",
        "-q",
        wheel,
        cwd=root,
    )
    return bin_dir


def test_the_installed_wheel_upgrades_a_fresh_database(wheel_venv: Path, tmp_path: Path) -> None:
    assert not (tmp_path / "alembic.ini").exists()
    output = run(wheel_venv / "python", "-c", IN_THE_NEW_VENV, cwd=tmp_path).stdout.splitlines()
    assert output[0] == HEAD
    shipped = sorted(p.name for p in (REPO_ROOT / "migrations" / "versions").glob("*.py"))
    assert output[1] == str(shipped)
    assert (tmp_path / "vidpipe.db").exists()


def test_the_installed_console_command_works_without_the_repository(
    wheel_venv: Path, tmp_path: Path
) -> None:
    run(wheel_venv / "vidpipe-db", "upgrade", cwd=tmp_path)
    assert run(wheel_venv / "vidpipe-db", "current", cwd=tmp_path).stdout.strip() == HEAD
    checked = run(wheel_venv / "vidpipe-db", "check", cwd=tmp_path)
    assert "No new upgrade operations detected" in checked.stdout
