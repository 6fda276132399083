"""Run real commands in fresh processes: ``alembic``, ``vidpipe-db``, and Python itself."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VIDPIPE_DB = Path(sys.executable).with_name("vidpipe-db")


def alembic(
    *args: str, cwd: Path, url: str | None = None, config: Path = REPO_ROOT / "alembic.ini"
) -> subprocess.CompletedProcess:
    """``alembic -c <config> ARGS`` in ``cwd``, with ``$VIDPIPE_DATABASE_URL`` = url (the
    repository's alembic.ini unless a scratch project's is given)."""
    return subprocess.run(
        _alembic_command(args, config),
        cwd=cwd,
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=300,
    )


def start_alembic(*args: str, cwd: Path, url: str | None = None) -> subprocess.Popen[str]:
    """:func:`alembic` started, not waited for; its stderr (the log) is read line by line."""
    return subprocess.Popen(
        _alembic_command(args, REPO_ROOT / "alembic.ini"),
        cwd=cwd,
        env=_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _alembic_command(args: tuple[str, ...], config: Path) -> list[str]:
    return [sys.executable, "-m", "alembic", "-c", str(config), *args]


def _env(url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIDPIPE_DATABASE_URL"}
    if url is not None:
        env["VIDPIPE_DATABASE_URL"] = url
    return env


def vidpipe_db(*args: str, cwd: Path, url: str | None = None) -> subprocess.CompletedProcess:
    """The installed console script, with ``$VIDPIPE_DATABASE_URL`` = url (unset if None)."""
    return subprocess.run(
        [str(VIDPIPE_DB), *args],
        cwd=cwd,
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def python(code: str, cwd: Path = REPO_ROOT) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet) and return what it printed."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
