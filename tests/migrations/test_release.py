"""``python -m tools.release`` cuts a release for real, in a scratch copy of the repository."""

import datetime
import re
import subprocess
from pathlib import Path

from tests.support.scratch_repository import copy_repository, run

NEW_REVISION = '''"""lighting notes: a free-text note per scene manifest

Revision ID: vidpipe_0007
Revises: vidpipe_0006
Create Date: 2026-12-03

Why: the lighting crew writes a note per scene. It is nullable and has no default, so adding it
is a plain ADD COLUMN on every dialect.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from vidpipe.db.idempotent import drop_columns, ensure_columns

revision: str = "vidpipe_0007"
down_revision: str | Sequence[str] | None = "vidpipe_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ensure_columns("scene_manifests", sa.Column("lighting_notes", sa.Text()))


def downgrade() -> None:
    drop_columns("scene_manifests", "lighting_notes")
'''
REVISION_FILE = "versions/2026_12_03_vidpipe_0007_lighting_notes.py"


def repository_with_a_new_revision(tmp_path: Path, text: str = NEW_REVISION) -> Path:
    repository = copy_repository(tmp_path / "repository")
    (repository / "migrations" / REVISION_FILE).write_text(text)
    return repository


def release(repository: Path, version: str) -> subprocess.CompletedProcess[str]:
    return run(repository, "-m", "tools.release", version, timeout=120)


def state(repository: Path) -> dict[str, bytes]:
    """Every file a release may write, as it is."""
    paths = [
        repository / "pyproject.toml",
        repository / "CHANGELOG.md",
        *(repository / "migrations" / "released").iterdir(),
    ]
    return {str(path): path.read_bytes() for path in paths}


def test_a_release_freezes_the_new_revisions_bumps_the_version_and_opens_the_changelog(
    tmp_path: Path,
) -> None:
    repository = repository_with_a_new_revision(tmp_path)
    unreleased_before = (repository / "CHANGELOG.md").read_text().split("## [Unreleased]\n")[1]
    unreleased_before = unreleased_before.split("\n## [")[0].strip()

    result = release(repository, "0.3.0")

    assert result.returncode == 0, result.stderr
    assert "Released 0.3.0: vidpipe_0007" in result.stdout
    listing = (repository / "migrations" / "released" / "0.3.0.sha256").read_text()
    assert re.fullmatch(rf"[0-9a-f]{{64}}  {re.escape(REVISION_FILE)}\n", listing)
    # The format sha256sum itself checks, for every release.
    migrations = repository / "migrations"
    listings = sorted(p.relative_to(migrations) for p in migrations.glob("released/*.sha256"))
    assert [p.name for p in listings] == ["0.1.0.sha256", "0.2.0.sha256", "0.3.0.sha256"]
    checked = subprocess.run(
        ["sha256sum", "--check", "--strict", *map(str, listings)],
        cwd=migrations,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{REVISION_FILE}: OK" in checked.stdout
    assert 'version = "0.3.0"\n' in (repository / "pyproject.toml").read_text()

    changelog = (repository / "CHANGELOG.md").read_text()
    today = datetime.date.today().isoformat()
    opened = (
        f"## [Unreleased]\n\n## [0.3.0] - {today}\n\n### Revisions\n\n"
        "- `vidpipe_0007` (lighting notes: a free-text note per scene manifest): the lighting "
        "crew writes a note per scene.\n"
        f"\n{unreleased_before}\n\n## [0.2.0] - 2026-11-25\n"
    )
    assert opened in changelog

    again = release(repository, "0.3.1")
    assert again.returncode == 1
    assert "nothing to release" in again.stderr


def test_a_release_that_cannot_be_cut_writes_nothing(tmp_path: Path) -> None:
    placeholder = NEW_REVISION.replace(
        NEW_REVISION[NEW_REVISION.index("Why:") : NEW_REVISION.index('"""\n\nfrom')],
        "Why: (say why this revision exists and what it must preserve)\n",
    )
    repository = repository_with_a_new_revision(tmp_path, placeholder)
    before = state(repository)

    not_higher = release(repository, "0.2.0")
    no_reason = release(repository, "0.3.0")

    assert not_higher.returncode == 1
    assert "version 0.2.0 is not higher than the last release, 0.2.0" in not_higher.stderr
    assert no_reason.returncode == 1
    assert f"migrations/{REVISION_FILE} has no Why: paragraph" in no_reason.stderr
    assert "nothing written" in no_reason.stderr
    assert state(repository) == before
