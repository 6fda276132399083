"""Refuse to migrate a database whose version table this code cannot trust.

Alembic, given a revision it does not know, fails with "Can't locate revision" deep inside the
run; given contradictory rows it may apply revisions twice. Both are checked here first, after
the migration lock is taken and before anything is written, with an error that says what to do.
"""

from collections.abc import Sequence

from alembic.script import ScriptDirectory

from vidpipe.db.errors import DatabaseAheadError, InvalidVersionState


def check_version_rows(script: ScriptDirectory, rows: Sequence[str], version_table: str) -> None:
    """Raise unless ``rows`` (the version table's contents) name known, compatible revisions."""
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = [row for row in rows if row not in known]
    if unknown:
        raise DatabaseAheadError(
            f"The database is at revision {', '.join(unknown)} ({version_table}), which this "
            "version of vidpipe does not know: a newer vidpipe migrated it. Nothing was changed. "
            "Run a vidpipe release that includes that revision (upgrade the package), or use it "
            "to downgrade the database to a revision this version knows "
            f"({', '.join(sorted(known))})."
        )
    # The version table's primary key rules out duplicates; ancestry is what can go wrong.
    contradictions = [
        f"{older} (an ancestor of {newer})"
        for newer in rows
        for older in rows
        if older != newer and older in _ancestors(script, newer)
    ]
    if contradictions:
        raise InvalidVersionState(
            f"{version_table} holds {len(rows)} rows ({', '.join(rows)}), which cannot all be "
            f"true: {'; '.join(contradictions)}. Nothing was changed. Find the revision the "
            "schema really matches, then record only it: alembic stamp --purge <revision>."
        )


def _ancestors(script: ScriptDirectory, revision: str) -> set[str]:
    return {
        step.revision for step in script.iterate_revisions(revision, "base") if step.revision
    } - {revision}
