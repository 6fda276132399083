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

from tests.support.cli import alembic
from tests.support.revisions import SCRIPT
from vidpipe.db.dialects.postgresql import SQUAWK_IGNORE_PLAIN_BUILD

OFFLINE_URL = "postgresql+psycopg://reviewer@db.invalid/vidpipe"
SQUAWK = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")
REVISIONS = list(reversed(list(SCRIPT.walk_revisions())))
#: Never excluded: index builds through vidpipe.db.idempotent are CONCURRENTLY online on tables
#: with rows, and offline (an empty database) carry a squawk-ignore comment saying so
#: (vidpipe.db.dialects.postgresql), so any other CREATE INDEX a revision writes is still reported.
#: vidpipe_0003's accepted entry for it predates that (the file is frozen) and is not used.
CONCURRENT_INDEX_RULE = "require-concurrent-index-creation"


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
    excluded = sorted(set(accepted) - {CONCURRENT_INDEX_RULE})
    command = [SQUAWK, "--reporter", "gcc", str(sql)]
    if excluded:
        command.append(f"--exclude={','.join(excluded)}")
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


def test_the_helpers_squawk_ignore_covers_only_its_own_index_build(tmp_path: Path) -> None:
    """The comment vidpipe.db.dialects.postgresql writes before a plain build silences the rule for
    that statement only: a CREATE INDEX after it is reported."""
    sql = tmp_path / "indexes.sql"
    sql.write_text(
        SQUAWK_IGNORE_PLAIN_BUILD + "CREATE INDEX a ON t (x);\nCREATE INDEX b ON t (y);\n"
    )
    lint = subprocess.run(
        [SQUAWK, "--reporter", "gcc", str(sql)], capture_output=True, text=True, timeout=60
    )
    reported = [line for line in lint.stdout.splitlines() if CONCURRENT_INDEX_RULE in line]
    assert len(reported) == 1
    assert f"{sql}:{SQUAWK_IGNORE_PLAIN_BUILD.count(chr(10)) + 1}:" in reported[0]
