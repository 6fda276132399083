"""Each revision's PostgreSQL SQL passes the squawk migration linter.

A rule a revision accepts must be named, with the reason, in its ``SQUAWK_ACCEPTED``; every
other finding fails the test. The SQL is rendered offline (``--sql``), exactly as a DBA would
review it, so no server is needed.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import alembic
from tests.revisions import SCRIPT

OFFLINE_URL = "postgresql+psycopg://reviewer@db.invalid/vidpipe"
SQUAWK = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")
REVISIONS = list(reversed(list(SCRIPT.walk_revisions())))


@pytest.mark.parametrize("script", REVISIONS, ids=[r.revision for r in REVISIONS])
def test_revision_sql_passes_squawk(script, tmp_path: Path) -> None:
    assert SQUAWK, "squawk is not installed (pip install -e '.[test]')"
    start = script.down_revision or "base"
    rendered = alembic(
        "upgrade", f"{start}:{script.revision}", "--sql", cwd=tmp_path, url=OFFLINE_URL
    )
    assert rendered.returncode == 0, rendered.stderr
    sql = tmp_path / f"{script.revision}.sql"
    sql.write_text(rendered.stdout)

    accepted = getattr(script.module, "SQUAWK_ACCEPTED", {})
    assert all(reason.strip() for reason in accepted.values())
    command = [SQUAWK, "--reporter", "gcc", str(sql)]
    if accepted:
        command.append(f"--exclude={','.join(sorted(accepted))}")
    lint = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_squawk_fails_sql_without_timeouts(tmp_path: Path) -> None:
    """The lint can fail: an ALTER without the timeouts the migrations set is reported."""
    sql = tmp_path / "bare.sql"
    sql.write_text("ALTER TABLE t ADD COLUMN x text;\n")
    lint = subprocess.run(
        [SQUAWK, "--reporter", "gcc", str(sql)], capture_output=True, text=True, timeout=60
    )
    assert lint.returncode != 0
    assert "require-lock-timeout" in lint.stdout
