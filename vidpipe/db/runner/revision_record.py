"""``vidpipe_revision_kinds``: what older code needs to know about revisions it does not have.

A replica of the previous release that restarts during a rolling deploy finds the database at
a revision its files do not include. It can still decide whether to start, from the database
alone, because every run records here, for each revision it applies or stamps: the revision's
id, its down revision(s) (so that older code can walk from the version table's row back to a
revision it knows) and its kind on this database's dialect with the reason
(vidpipe.db.runner.revision_kinds). vidpipe.db.runner.version_state reads it.

Written by Alembic's ``on_version_apply`` hook, right after the version row, so in the same
transaction: one per run on PostgreSQL and SQLite, one per revision on MariaDB (where the
``CREATE TABLE`` of this table, on the first revision a database gets from a release that
records, commits that revision's version row a moment before its record: a run that dies
right there leaves the revision unrecorded, which older code treats as contract, the safe
side, until the next run writes it). Every upgrade writes the whole history up to its new head,
so a database upgraded before this table existed is backfilled by the next run that applies
a revision; a database at head costs start-up nothing (vidpipe.db.migrate's fast path).
A downgrade removes the rows of the revisions it takes back, and ``downgrade base`` the table.
Offline scripts (``--sql``) record nothing: revisions a
DBA applies that way count as contract for older code until an online run records them.

Like ``vidpipe_alembic_version``, the table carries vidpipe's prefix so it never meets a
host's tables, and it is not among the models: ``alembic check`` and autogenerate, which see
only the models' tables (vidpipe.db.runner.environment.include_name), never report it.
"""

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo

from vidpipe.db.runner.revision_kinds import RevisionKind, kind_of

__all__ = ["RECORD_TABLE", "RevisionRecorder", "read_record"]

RECORD_TABLE = "vidpipe_revision_kinds"

_metadata = sa.MetaData()
_record = sa.Table(
    RECORD_TABLE,
    _metadata,
    sa.Column("revision", sa.String(128), primary_key=True),
    # Space-separated; empty for a base revision.
    sa.Column("down_revisions", sa.String(512), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
)


def read_record(connection: sa.Connection) -> dict[str, RevisionKind]:
    """Every recorded revision (none if nothing was ever recorded), by id."""
    if not sa.inspect(connection).has_table(RECORD_TABLE):
        return {}
    return {
        row.revision: RevisionKind(
            row.revision, tuple(row.down_revisions.split()), row.kind, row.reason
        )
        for row in connection.execute(sa.select(_record))
    }


class RevisionRecorder:
    """One run's writer of the record.

    :meth:`prepare` runs before the migrations: deriving a kind runs a revision against a
    context of its own, which cannot happen while Alembic's ``op`` serves the run; and what is
    recorded already is read before a downgrade's guard may lock the tables (MariaDB's ``LOCK
    TABLES`` lets a session touch only the tables it locked).
    """

    def __init__(self) -> None:
        self._kinds: dict[str, RevisionKind] = {}
        #: What the table holds, or None while it does not exist.
        self._recorded: dict[str, RevisionKind] | None = None

    def prepare(self, context: EnvironmentContext) -> None:
        """Derive the kind of every revision of the run's script on the run's dialect, and read
        the record as it is (not for a read-only command, nor offline)."""
        migration_context = context.get_context()
        connection = migration_context.connection
        if migration_context.as_sql or migration_context.opts.get("dont_mutate"):
            return
        if connection is None:
            return
        dialect = migration_context.dialect
        self._kinds = {
            revision.revision: kind_of(revision, dialect)
            for revision in context.script.walk_revisions()
        }
        if sa.inspect(connection).has_table(RECORD_TABLE):
            self._recorded = read_record(connection)

    def on_version_apply(
        self,
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        """Alembic's hook after each step's version row: an upgrade records the history up to
        the new ``heads``; a downgrade forgets the revisions it removed, and the table itself
        when no revision is left (``downgrade base`` leaves no vidpipe table behind but
        Alembic's version table)."""
        connection = ctx.connection
        if ctx.as_sql or not self._kinds or connection is None:
            return
        if not step.is_upgrade:
            self._forget(connection, step.up_revision_ids, remaining=bool(heads))
            return
        if self._recorded is None:
            _record.create(connection)
            self._recorded = {}
        script = ctx.script
        assert script is not None  # env.py's runs always have one
        for revision in script.iterate_revisions(tuple(heads), "base"):
            if revision is not None and revision.revision in self._kinds:
                _write(connection, self._kinds[revision.revision], self._recorded)

    def _forget(
        self, connection: sa.Connection, revisions: tuple[str, ...], *, remaining: bool
    ) -> None:
        if self._recorded is None:
            return
        if not remaining:
            _record.drop(connection)
            self._recorded = None
            return
        connection.execute(sa.delete(_record).where(_record.c.revision.in_(revisions)))
        for revision in revisions:
            self._recorded.pop(revision, None)


def _write(
    connection: sa.Connection, kind: RevisionKind, recorded: dict[str, RevisionKind]
) -> None:
    """Insert ``kind``'s row, or update it if the revision's file changed since (a revision
    under development, applied again after a downgrade)."""
    values: Mapping[str, str] = {
        "down_revisions": " ".join(kind.down_revisions),
        "kind": kind.kind,
        "reason": kind.reason,
    }
    found = recorded.get(kind.revision)
    if found is None:
        connection.execute(sa.insert(_record).values(revision=kind.revision, **values))
    elif (found.down_revisions, found.kind, found.reason) != (
        kind.down_revisions,
        kind.kind,
        kind.reason,
    ):
        connection.execute(
            sa.update(_record).where(_record.c.revision == kind.revision).values(**values)
        )
    else:
        return
    recorded[kind.revision] = kind
