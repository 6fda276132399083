"""Refuse to migrate a database whose version table this code cannot trust.

Alembic, given a revision it does not know, fails with "Can't locate revision" deep inside the
run; given contradictory rows it may apply revisions twice. Both are checked here first, after
the migration lock is taken and before anything is written, with an error that says what to do.

A revision this code does not know was applied by a newer release. During a rolling deploy
that is expected: an upgrade (the start-up call of a replica of the previous release) finds,
in the record newer runs keep (vidpipe.db.runner.revision_record), the chain of revisions from
the version table's row back to this code's head. If every one of them is *expand*
(vidpipe.db.runner.revision_kinds) the database only gained what this code does not use: the
upgrade has nothing to do, logs one warning naming them, and the application starts (Flyway
ignores future migrations the same way). A contract revision on the way, or one without a
record (applied before runs recorded kinds, or by an offline script), is refused with
:class:`DatabaseAheadError` naming it. Downgrades and stamps are always refused: this code
does not have the newer revisions' files.
"""

import logging
import re
from collections.abc import Callable, Mapping, Sequence

from alembic.script import ScriptDirectory

from vidpipe.db.errors import DatabaseAheadError, InvalidVersionState
from vidpipe.db.runner.revision_kinds import EXPAND, RevisionKind

__all__ = ["check_version_rows", "revision_ids"]

_log = logging.getLogger(__name__)

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


def check_version_rows(
    script: ScriptDirectory,
    rows: Sequence[object],
    version_table: str,
    *,
    record: Callable[[], Mapping[str, RevisionKind]] = dict,
    upgrading: bool = False,
) -> tuple[str, ...]:
    """Raise unless ``rows`` (the version table's contents) name known, compatible revisions,
    or, for an upgrade, revisions a newer release applied on top of this code's head through
    expand revisions only: those are returned (oldest first), and the upgrade has nothing to do.

    ``record`` reads the recorded revision kinds; it is called only if a row is unknown.
    """
    ids = revision_ids(rows, version_table)
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = [row for row in ids if row not in known]
    if unknown:
        return _ahead(script, unknown, record(), version_table, upgrading=upgrading)
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
    return ()


def _ahead(
    script: ScriptDirectory,
    unknown: list[str],
    recorded: Mapping[str, RevisionKind],
    version_table: str,
    *,
    upgrading: bool,
) -> tuple[str, ...]:
    """The newer revisions if this upgrade may start on them; else :class:`DatabaseAheadError`."""
    newer, breaking, why = _newer_revisions(script, unknown, recorded)
    if breaking is None and upgrading:
        _log.warning(
            "The database is ahead of this version of vidpipe by expand revisions only: %s. "
            "Nothing was changed, and this version runs on it: those revisions only add what "
            "it does not use. A newer release is rolling out; replace this one with it.",
            "; ".join(f"{kind.revision} ({kind.reason})" for kind in newer),
        )
        return tuple(kind.revision for kind in newer)
    if breaking is None:
        found = (
            " through expand revisions only, which this version runs on but cannot downgrade "
            "or stamp: it does not have their files"
        )
    else:
        found = f", and {breaking} is {why}, which this version cannot run on"
    known = sorted(revision.revision for revision in script.walk_revisions())
    raise DatabaseAheadError(
        f"The database is at revision {', '.join(unknown)} ({version_table}), which this "
        f"version of vidpipe does not know: a newer vidpipe migrated it{found}. Nothing was "
        "changed. Run a vidpipe release that includes that revision (upgrade the package), or "
        "use it to downgrade the database to a revision this version knows "
        f"({', '.join(known)}).",
        unknown=unknown,
        breaking=breaking,
    )


def _newer_revisions(
    script: ScriptDirectory, unknown: list[str], recorded: Mapping[str, RevisionKind]
) -> tuple[list[RevisionKind], str | None, str]:
    """Walk the record from the unknown rows down to this code's head(s): the revisions passed
    (oldest first), and the first one older code cannot run on with why (None if none)."""
    heads = set(script.get_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    newer: list[RevisionKind] = []
    pending = [(revision, revision) for revision in unknown]  # (revision, reached from)
    seen: set[str] = set()
    while pending:
        revision, child = pending.pop()
        if revision in seen or revision in heads:
            continue
        seen.add(revision)
        if revision in known:
            return (
                newer,
                child,
                (f"applied on {revision}, not on this version's head ({', '.join(sorted(heads))})"),
            )
        kind = recorded.get(revision)
        if kind is None:
            return (
                newer,
                revision,
                (
                    "a revision whose kind was never recorded (applied before vidpipe recorded "
                    "revision kinds, or by an offline script), which counts as contract"
                ),
            )
        if kind.kind != EXPAND:
            return newer, revision, f"a contract revision ({kind.reason})"
        if not kind.down_revisions:
            return newer, revision, "the base of a history this version does not share"
        newer.append(kind)
        pending.extend((down, revision) for down in kind.down_revisions)
    return newer[::-1], None, ""


def _ancestors(script: ScriptDirectory, revision: str) -> set[str]:
    return {
        step.revision for step in script.iterate_revisions(revision, "base") if step.revision
    } - {revision}
