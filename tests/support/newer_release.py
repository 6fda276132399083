"""A newer copy of the code: this package and its revisions, plus revisions of a next release.

The copy runs in its own process, importing its own ``vidpipe`` (``PYTHONPATH`` puts it before
the installed one), as the next release's replicas would during a rolling deploy, while the
test process plays the previous release. Its extra revisions are the files beside this module,
chained onto the code's head when the copy is made.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config

from tests.support.cli import REPO_ROOT
from tests.support.revisions import HEAD
from vidpipe.db.migrate import alembic_config

REVISIONS = Path(__file__).resolve().parent / "newer_release"
EXPAND = "newer_0001_expand"
CONTRACT = "newer_0002_contract"


class NewerRelease:
    """The copy in ``directory``, with the revisions named in ``revisions`` (oldest first)."""

    def __init__(self, directory: Path, revisions: tuple[str, ...] = (EXPAND, CONTRACT)) -> None:
        self.root = directory
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO_ROOT / "vidpipe", directory / "vidpipe", ignore=ignore)
        shutil.copytree(REPO_ROOT / "migrations", directory / "migrations", ignore=ignore)
        for name in revisions:
            text = (REVISIONS / f"{name}.py").read_text().replace('"CODE_HEAD"', repr(HEAD))
            (directory / "migrations" / "versions" / f"2099_01_01_{name}.py").write_text(text)

    def alembic_config(self, **attributes: Any) -> Config:
        """A Config of this process's vidpipe for the copy's revisions: to move a database
        ahead without a process of its own, where the newer code itself does not matter."""
        config = alembic_config(**attributes)
        config.set_main_option("script_location", str(self.root / "migrations"))
        return config

    def vidpipe_db(self, url: sa.URL, *args: str) -> subprocess.CompletedProcess[str]:
        """``vidpipe-db --url URL ARGS`` of the newer copy."""
        return subprocess.run(
            [sys.executable, "-m", "vidpipe.db.cli", "--url", url.render_as_string(False), *args],
            cwd=self.root,
            env={**os.environ, "PYTHONPATH": str(self.root)},
            capture_output=True,
            text=True,
            timeout=300,
        )
