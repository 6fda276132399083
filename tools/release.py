"""Cut a release: ``python -m tools.release 0.3.0`` from the repository root.

One command does what a release of vidpipe's revisions needs, or nothing at all:

- freezes the revisions no earlier release shipped: ``migrations/released/<version>.sha256``
  lists their SHA-256 in history order (``sha256sum`` format, paths relative to
  ``migrations/``, so ``cd migrations && sha256sum -c released/*.sha256`` checks them by hand);
  from then on ``tests/migrations/test_released_revisions.py`` fails if one of them changes;
- sets ``version`` in pyproject.toml;
- opens the release's section in CHANGELOG.md: what stood under "Unreleased" moves into it,
  with each new revision's "Why:" sentence under "Revisions".

It refuses, writing nothing, a version that is not higher than the last release, a release with
no new revision, and a revision whose docstring still has the template's "Why:" placeholder.
Write the upgrade notes of the new section (what the upgrade does, its locks on each dialect,
anything to do before or after) before committing.
"""

import argparse
import datetime
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parent.parent
#: The template's placeholder (migrations/script.py.mako): a revision that still has it says
#: nothing about why it exists, which the changelog and a reviewer need.
WHY_PLACEHOLDER = "(say why"
UNRELEASED = "## [Unreleased]"
VERSION = re.compile(r'^version = "(\d+\.\d+\.\d+)"$', flags=re.M)


class ReleaseRefused(Exception):
    """What is wrong, and what to do; nothing was written."""


@dataclass(frozen=True)
class Revision:
    revision: str
    path: str  # relative to migrations/
    title: str  # the docstring's first line
    why: str  # the first sentence of its "Why:" paragraph


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def released(root: Path) -> tuple[list[str], set[str]]:
    """The versions released so far (oldest first) and every file path they froze."""
    listings = sorted(
        (root / "migrations" / "released").glob("*.sha256"),
        key=lambda listing: _version_key(listing.name.removesuffix(".sha256")),
    )
    paths = {
        line.split(maxsplit=1)[1].lstrip("*")
        for listing in listings
        for line in listing.read_text().splitlines()
        if line.strip()
    }
    return [listing.name.removesuffix(".sha256") for listing in listings], paths


def revisions(root: Path) -> list[Revision]:
    """Every revision of the history, oldest first."""
    migrations = root / "migrations"
    script = ScriptDirectory.from_config(Config(str(root / "alembic.ini")))
    found = []
    for item in reversed(list(script.walk_revisions())):
        path = Path(item.path).resolve().relative_to(migrations.resolve()).as_posix()
        doc = item.module.__doc__ or ""
        found.append(Revision(item.revision, path, doc.strip().splitlines()[0], _why(doc)))
    return found


def _why(docstring: str) -> str:
    """The first sentence of the docstring's "Why:" paragraph, on one line ("" if none)."""
    paragraph = next((p for p in docstring.split("\n\n") if p.startswith("Why:")), "")
    text = " ".join(paragraph.removeprefix("Why:").split()).replace("``", "`")  # reST -> Markdown
    sentence = re.match(r"(.+?[.!?])(\s|$)", text)
    return sentence.group(1) if sentence else text


def unreleased(root: Path) -> list[Revision]:
    """The revisions no release froze yet."""
    _, frozen = released(root)
    return [revision for revision in revisions(root) if revision.path not in frozen]


def checksums(root: Path, new: list[Revision]) -> str:
    migrations = root / "migrations"
    return "".join(
        f"{hashlib.sha256((migrations / r.path).read_bytes()).hexdigest()}  {r.path}\n" for r in new
    )


def bumped(pyproject: str, version: str) -> str:
    current = VERSION.search(pyproject)
    if current is None:
        raise ReleaseRefused('pyproject.toml has no line `version = "X.Y.Z"` to set')
    if _version_key(version) <= _version_key(current.group(1)):
        raise ReleaseRefused(
            f"version {version} is not higher than pyproject.toml's {current.group(1)}: "
            "give the next version"
        )
    return pyproject[: current.start(1)] + version + pyproject[current.end(1) :]


def opened(changelog: str, version: str, new: list[Revision], today: datetime.date) -> str:
    """CHANGELOG.md with the Unreleased section's entries moved into ``version``'s, which
    starts with the new revisions' reasons."""
    if UNRELEASED not in changelog:
        raise ReleaseRefused(f"CHANGELOG.md has no {UNRELEASED!r} section to release")
    head, rest = changelog.split(UNRELEASED, 1)
    next_section = rest.find("\n## [")
    pending = (rest if next_section < 0 else rest[:next_section]).strip("\n")
    older = "" if next_section < 0 else rest[next_section:]
    listed = "\n".join(f"- `{r.revision}` ({r.title}): {r.why}" for r in new)
    section = f"## [{version}] - {today.isoformat()}\n\n### Revisions\n\n{listed}\n"
    if pending:
        section += f"\n{pending}\n"
    return f"{head}{UNRELEASED}\n\n{section}{older}"


def release(root: Path, version: str, today: datetime.date) -> list[Revision]:
    """Freeze the unreleased revisions as ``version``; return them. All or nothing."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ReleaseRefused(f"version {version!r} is not X.Y.Z (e.g. 0.3.0)")
    versions, _ = released(root)
    if versions and _version_key(version) <= _version_key(versions[-1]):
        raise ReleaseRefused(
            f"version {version} is not higher than the last release, {versions[-1]} "
            f"(migrations/released/{versions[-1]}.sha256)"
        )
    new = unreleased(root)
    if not new:
        raise ReleaseRefused(
            "every revision is in a release already: nothing to release (a release freezes "
            "new revisions; write one with `alembic revision --autogenerate`)"
        )
    placeholders = [r for r in new if not r.why or r.why.startswith(WHY_PLACEHOLDER)]
    if placeholders:
        raise ReleaseRefused(
            "; ".join(f"migrations/{r.path} has no Why: paragraph" for r in placeholders)
            + ": say in its docstring why the revision exists and what it must preserve "
            "(the changelog quotes it), then release again"
        )
    # Everything is computed before anything is written.
    pyproject = bumped((root / "pyproject.toml").read_text(), version)
    changelog = opened((root / "CHANGELOG.md").read_text(), version, new, today)
    listing = checksums(root, new)
    (root / "migrations" / "released" / f"{version}.sha256").write_text(listing)
    (root / "pyproject.toml").write_text(pyproject)
    (root / "CHANGELOG.md").write_text(changelog)
    return new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.release", description="Freeze the new revisions as a release."
    )
    parser.add_argument("version", help="the release's version, higher than the last (X.Y.Z)")
    args = parser.parse_args(argv)
    try:
        new = release(ROOT, args.version, datetime.date.today())
    except ReleaseRefused as refused:
        print(f"release refused, nothing written: {refused}", file=sys.stderr)
        return 1
    print(
        f"Released {args.version}: {', '.join(r.revision for r in new)} frozen in "
        f"migrations/released/{args.version}.sha256; pyproject.toml's version set; CHANGELOG.md "
        f"has its section. Write its upgrade notes, then commit and tag v{args.version}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
