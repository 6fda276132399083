"""What a release promises about its revisions, checked the way Flyway's ``validate`` does.

``migrations/released/<version>.sha256`` lists, in order, the SHA-256 of every revision file
that release shipped (``sha256sum`` format, paths relative to ``migrations/``, so
``cd migrations && sha256sum -c released/*.sha256`` checks them by hand too). A database in the
field was migrated by those exact files: editing one would leave databases that ran the old
text and databases that ran the new one at the same revision id. A change is a new revision;
releasing revisions adds a file for that release (``python -m tools.release X.Y.Z``). Only the
head may be in no release: a revision below it ships with the release after it was written.

The previous release is the newest one whose last revision is not the code's head (right after
a release, the one before it): a database built at its head and holding rows in every table
must upgrade to the new head with every row kept.
"""

import hashlib
import shutil
from pathlib import Path

import sqlalchemy as sa

from tests.support.cli import REPO_ROOT
from tests.support.revisions import HEAD, SCRIPT
from tests.support.rows import (
    BASELINE_TABLES,
    MANIFEST_TABLES,
    column_names,
    insert_rows,
    read_rows,
)
from tests.support.scratch_repository import copy_repository
from tools.release import revisions, unreleased
from vidpipe.db import current_revision, upgrade

MIGRATIONS = REPO_ROOT / "migrations"
RELEASES = "released"
ALL_TABLES = BASELINE_TABLES + MANIFEST_TABLES


def releases(migrations: Path = MIGRATIONS) -> list[tuple[str, list[tuple[str, str]]]]:
    """(version, [(sha256, path relative to migrations/), ...]) per release, oldest first."""
    found = []
    for listing in (migrations / RELEASES).glob("*.sha256"):
        version = listing.name.removesuffix(".sha256")
        files = [
            (digest, name.lstrip("*"))
            for digest, name in (line.split(maxsplit=1) for line in listing.read_text().splitlines())
        ]
        found.append((version, files))
    return sorted(found, key=lambda release: tuple(map(int, release[0].split("."))))


def released_files(migrations: Path = MIGRATIONS) -> list[tuple[str, str]]:
    """(sha256, path relative to migrations/) per released revision file, in release order."""
    return [file for _, files in releases(migrations) for file in files]


def changed_released_files(migrations: Path) -> list[str]:
    """One complaint per released revision file under ``migrations`` that is not as released."""
    complaints = []
    for version, files in releases(migrations):
        for digest, name in files:
            path = migrations / name
            if not path.is_file():
                complaints.append(
                    f"migrations/{name} was released in {version} and is gone; restore it "
                    "(databases in the field are at its revision)"
                )
            elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                complaints.append(
                    f"migrations/{name} changed after it was released in {version} (sha256 "
                    f"{digest} in migrations/{RELEASES}/{version}.sha256); a released revision "
                    "is never edited: restore it (git checkout) and put the change in a new "
                    "revision"
                )
    return complaints


def _revision_of(name: str) -> str:
    by_path = {Path(script.path).resolve(): script.revision for script in SCRIPT.walk_revisions()}
    return by_path[(MIGRATIONS / name).resolve()]


def previous_release() -> str:
    """The head of the newest release that is not the code's head."""
    heads = [_revision_of(files[-1][1]) for _, files in releases()]
    return [head for head in heads if head != HEAD][-1]


def test_released_revision_files_are_unchanged() -> None:
    complaints = changed_released_files(MIGRATIONS)
    assert not complaints, "\n".join(complaints)


def test_every_released_revision_is_listed_in_release_order() -> None:
    """0.1.0 shipped vidpipe_0001 to vidpipe_0004; each later release adds a file."""
    listed = [
        next(s.revision for s in SCRIPT.walk_revisions() if Path(s.path).name == Path(name).name)
        for _, name in released_files()
    ]
    assert listed[:4] == ["vidpipe_0001", "vidpipe_0002", "vidpipe_0003", "vidpipe_0004"]
    history = [s.revision for s in reversed(list(SCRIPT.walk_revisions()))]
    assert listed == history[: len(listed)]


def test_an_edited_released_revision_is_named_with_what_to_do(tmp_path: Path) -> None:
    """The check above can fail: a copy of migrations/ with one byte changed in one file."""
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy)
    _, edited = released_files()[1]
    with (copy / edited).open("a") as file:
        file.write("\n")
    _, removed = released_files()[2]
    (copy / removed).unlink()

    complaints = changed_released_files(copy)

    assert len(complaints) == 2
    assert complaints[0].startswith(f"migrations/{edited} changed after it was released")
    assert "never edited" in complaints[0] and "new revision" in complaints[0]
    assert complaints[1].startswith(f"migrations/{removed} was released in 0.1.0 and is gone")


def revisions_in_no_release(root: Path) -> list[str]:
    """One complaint per revision older than the head that no release froze."""
    new = unreleased(root)
    head = revisions(root)[-1].revision
    return [
        f"{r.revision} (migrations/{r.path}) is older than the head and in no release: release "
        "it (`python -m tools.release X.Y.Z` freezes every unreleased revision) before a "
        "revision is added after it"
        for r in new
        if r.revision != head
    ]


def test_every_revision_older_than_the_head_is_in_a_release() -> None:
    complaints = revisions_in_no_release(REPO_ROOT)
    assert not complaints, "\n".join(complaints)


def test_an_unreleased_revision_below_the_head_is_named(tmp_path: Path) -> None:
    """The check above can fail: without 0.2.0's listing, vidpipe_0005 is older than the head
    and in no release; vidpipe_0006, the head, may wait for the next release."""
    root = copy_repository(tmp_path)
    (root / "migrations" / RELEASES / "0.2.0.sha256").unlink()

    complaints = revisions_in_no_release(root)

    assert len(complaints) == 1
    assert complaints[0].startswith(
        "vidpipe_0005 (migrations/versions/2026_11_25_vidpipe_0005_unique_scene_index.py) is "
        "older than the head and in no release"
    )


def test_a_database_at_the_previous_release_upgrades_with_every_row_kept(
    engine: sa.Engine,
) -> None:
    """Rows in every table at the previous release's head; after the upgrade to the new head
    every one of them reads back the same in every column it had."""
    upgrade(engine, previous_release())
    insert_rows(engine, ALL_TABLES)
    columns = column_names(engine, ALL_TABLES)
    before = read_rows(engine, ALL_TABLES)
    assert sum(len(rows) for rows in before.values()) == 12

    upgrade(engine)

    assert current_revision(engine) == HEAD
    assert read_rows(engine, ALL_TABLES, columns) == before
