"""Refuse to migrate a database whose version table this code cannot trust.

Alembic, given a revision it does not know, fails with "Can't locate revision" deep inside the
run; given contradictory rows it may apply revisions twice. Both are checked here first, after
the migration lock is taken and before anything is written, with an error that says what to do.
"""

import re
from collections.abc import Sequence

from alembic.script import ScriptDirectory

from vidpipe.db.errors import DatabaseAheadError, InvalidVersionState

__all__ = ["check_version_rows", "revision_ids"]

#: What a revision id can look like (Alembic's are hex, vidpipe's ``vidpipe_000N``).
_REVISION_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def revision_ids(rows: Sequence[object], version_table: str) -> tuple[str, ...]:
    """``rows`` as revision ids; a value that cannot be one (a BLOB, NULL, a blank or a line
    break: a hand edit or a broken tool) is refused, shown as Python shows it, on one line."""
    junk = [row for row in rows if not (isinstance(row, str) and _REVISION_ID.fullmatch(row))]
    if junk:
        raise InvalidVersionState(
            f"{version_table} holds {', '.join(repr(row)[:80] for row in junk)}, which is not a "
            "revision id. Nothing was changed. Find the revision the schema really matches, "
            "then record only it: vidpipe-db stamp --purge <revision>.",
            rows=rows,
        )
    return tuple(str(row) for row in rows)


def check_version_rows(script: ScriptDirectory, rows: Sequence[object], version_table: str) -> None:
    """Raise unless ``rows`` (the version table's contents) name known, compatible revisions."""
    ids = revision_ids(rows, version_table)
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = [row for row in ids if row not in known]
    if unknown:
        raise DatabaseAheadError(
            f"The database is at revision {', '.join(unknown)} ({version_table}), which this "
            "version of vidpipe does not know: a newer vidpipe migrated it. Nothing was changed. "
            "Run a vidpipe release that includes that revision (upgrade the package), or use it "
            "to downgrade the database to a revision this version knows "
            f"({', '.join(sorted(known))}).",
            unknown=unknown,
        )
    # The version table's primary key rules out duplicates; ancestry is what can go wrong.
    contradictions = [
        f"{older} (an ancestor of {newer})"
        for newer in ids
        for older in ids
        if older != newer and older in _ancestors(script, newer)
    ]
    if contradictions:
        raise InvalidVersionState(
            f"{version_table} holds {len(ids)} rows ({', '.join(ids)}), which cannot all be "
            f"true: {'; '.join(contradictions)}. Nothing was changed. Find the revision the "
            "schema really matches, then record only it: vidpipe-db stamp --purge <revision> "
            "(alembic stamp --purge <revision> from the repository).",
            rows=ids,
        )


def _ancestors(script: ScriptDirectory, revision: str) -> set[str]:
    return {
        step.revision for step in script.iterate_revisions(revision, "base") if step.revision
    } - {revision}
