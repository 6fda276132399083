"""Writing prepared storyboards: one SAVEPOINT, set-based statements, one executemany per table.

Everything goes through SQLAlchemy Core except psycopg's pipeline mode, which Core does not
offer (``statements_together`` in vidpipe.db.dialects.postgresql). In 0.2.0 four parts bypassed
Core: the INSERTs and the projects' UPDATE as driver-level executemany (with their own
compiled-statement cache and bind processors), a single save's look-up sent through the driver,
and the SAVEPOINT by hand. Each was timed against its Core equivalent (``insert()`` with a list
of rows, ``update()`` with one parameter set per project, a Core ``select``,
``begin_nested()``) on SQLite, PostgreSQL and MariaDB, all variants interleaved in one run per
dialect (``save_against_core`` in ``benchmarks/storyboards.py`` with
``benchmarks/core_parts.py``, at commits 414b86a and 5dcc2f3, 100 storyboards of 8 scenes, 15
rounds), and was to be kept only where Core came out at least 20% slower. None did, so all four
are Core now. Median over rounds of the hand-written save's wall time against the save with
that part through Core (0.83x or less would have kept it), in a storyboard_batch / one write
per call:

- INSERT executemany: SQLite 0.87x 0.82x 0.80x / 0.80x 0.95x 1.28x (CPU time 0.86x 0.88x 0.86x
  / 0.82x 0.88x 0.90x), PostgreSQL 0.89x 1.08x 1.00x / 1.06x 0.90x 0.82x, MariaDB 1.15x 1.00x /
  1.05x 1.00x;
- UPDATE executemany: SQLite 0.90x / 0.98x, PostgreSQL 0.96x / 1.34x, MariaDB 1.13x / 1.10x;
- a single save's look-up (per call only): SQLite 0.96x, PostgreSQL 1.23x, MariaDB 1.13x;
- SAVEPOINT by hand: SQLite 1.05x 1.04x 0.99x / 0.69x 0.96x 1.02x, PostgreSQL 0.93x 1.10x
  1.00x / 1.02x 0.84x 0.93x, MariaDB 1.12x 0.94x / 1.01x 0.90x.

(One figure per run; the machine was shared, load average 8-15, so single runs scatter by 20%
or more, and a figure near the line was measured again. SQLite's batched INSERT came closest,
its wall-time median 0.82x, but its CPU-time ratio stayed at 0.86x-0.88x: SQLite works inside this
process, so both sides' wall time is that CPU time plus the same file I/O, and the true wall
ratio lies between the CPU ratio and 1x; the lower readings were the machine's scheduling. The
save with every part through Core was not 20% slower either (0.85x, 1.02x, 0.93x).
PostgreSQL's INSERT per call at 0.82x in one run was 1.06x and 0.90x in the others, and the
all-Core save 0.94x in that same run.)

SQLite's save per call stays about 2x-3x the raw driver's for another reason: measured again
on 2026-12-04 (100 saves of 8 scenes, one transaction, 11 and 15 interleaved rounds, load
average 5-6), the hand-written SAVEPOINT took 1.03x, 0.94x and 0.87x the wall time of
``begin_nested`` (CPU 0.86x-0.96x), and no SAVEPOINT at all 0.71x-0.85x, while the raw driver
took 0.39x-0.48x. Under cProfile 70% of a save is ``Connection.execute`` of its seven
statements against the raw driver's four executemany calls (sqlite3's own work in it is 11% of
the save; the rest is parameters through the bind processors, statement caching, results); the
SAVEPOINT and its RELEASE together are 12%, and a hand-written one saves a part of that only.
"""

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.models import Project
from vidpipe.db.store.explain import explain_integrity_error, explain_lost_race
from vidpipe.db.store.kinds import Storyboard, StoryboardSchema
from vidpipe.db.store.limits import refuse_oversized
from vidpipe.db.store.rows import (
    STORYBOARD_TABLES,
    Prepared,
    audio_table,
    manifests_table,
    prepare,
    projects_table,
    scenes_table,
)

__all__ = ["save_storyboard", "storyboard_batch"]

_BATCH_KEY = "vidpipe.storyboard_batch"

#: Project ids per IN list: PostgreSQL binds at most 65,535 parameters in one statement (as do
#: MySQL's server-side prepared statements), SQLite builds 32,766 by default; a batch of any size
#: is locked and deleted in chunks of these.
_IDS_PER_STATEMENT = 10_000

#: The tables the last save through the store wrote, by the ``storyboard_kind`` it set.
_KIND_TABLES = {
    "base": {scenes_table.name},
    "enhanced": {table.name for table in STORYBOARD_TABLES},
}


_PROJECT_IDS: sa.BindParameter[Any] = sa.bindparam("project_ids", expanding=True)


def _looking_up(projects: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """These projects' ids and kinds, and whether each of STORYBOARD_TABLES holds rows of theirs
    (one column per table, in that order)."""
    return sa.select(
        projects_table.c.id,
        projects_table.c.storyboard_kind,
        *(
            sa.exists().where(table.c.project_id == projects_table.c.id).label(table.name)
            for table in STORYBOARD_TABLES
        ),
    ).where(projects)


#: The look-up of a batch's projects; built once, so a save pays for executing it, not for
#: constructing it.
_LOOK_UP = _looking_up(projects_table.c.id.in_(_PROJECT_IDS))

_LOCK = _LOOK_UP.order_by(projects_table.c.id).with_for_update()

#: A single save's look-up (the common case), without the batch's IN list.
_LOOK_UP_ONE = {
    lock: (statement.with_for_update() if lock else statement)
    for lock in (False, True)
    for statement in [_looking_up(projects_table.c.id == sa.bindparam("project_key"))]
}


class _SerialisedJSON(sa.TypeDecorator[str]):
    """JSON text bound into a JSON column as it is, with the column's SQL (its ``::JSONB`` cast
    on PostgreSQL): ``storyboard_raw`` arrives serialised (``storable_json``), and the largest
    document of a save is not serialised twice."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return projects_table.c.storyboard_raw.type.dialect_impl(dialect)

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None


#: The projects' UPDATE, one parameter set per project (``Prepared.project_values``).
_UPDATE_PROJECTS = (
    sa.update(projects_table)
    .where(projects_table.c.id == sa.bindparam("project_key"))
    .values(
        style_guide=sa.bindparam("style_guide"),
        characters=sa.bindparam("characters"),
        storyboard_kind=sa.bindparam("storyboard_kind"),
        storyboard_raw=sa.bindparam("storyboard_raw", type_=_SerialisedJSON()),
    )
)

_DELETES = {
    table.name: sa.delete(table).where(table.c.project_id.in_(_PROJECT_IDS))
    for table in STORYBOARD_TABLES
}


def save_storyboard(
    session: Session,
    project_id: uuid.UUID | str,
    storyboard: Storyboard | Mapping[str, Any] | str | bytes,
    *,
    schema: StoryboardSchema | None = None,
) -> Storyboard:
    """Store ``storyboard`` as the project's storyboard, replacing any earlier one.

    The storyboard is validated and checked first; then, inside a SAVEPOINT, the project's old
    storyboard rows are deleted and the new ones inserted in bulk (one executemany per table).
    Nothing is committed: the caller owns the transaction. Inside ``storyboard_batch`` the
    writes wait for the end of the batch, where every storyboard saved in it is written
    together.

    Args:
        session: A sync ``Session`` (from an ``AsyncSession``, call this through
            ``run_sync``).
        project_id: The project's id, a ``uuid.UUID`` or its string form; the project row
            must exist.
        storyboard: A ``StoryboardOutput`` or ``EnhancedStoryboardOutput``, or Gemini's raw
            output (a dict or JSON text) together with ``schema``.
        schema: The model raw output is validated against.

    Returns:
        The validated storyboard, equal to what ``load_storyboard`` returns for the project.

    Raises:
        StoryboardError: Invalid or unstorable content (naming the scene and field), scenes of
            the old storyboard that have keyframes or clips, or another save that won; the
            database, and the caller's earlier work in the transaction, are as they were.
        UnknownProjectError: No project has that id.
        TypeError: ``project_id`` is not a UUID or string, or raw output came without
            ``schema``.
    """
    prepared = prepare(project_id, storyboard, schema)
    pending = session.info.get(_BATCH_KEY)
    if pending is None:
        _write(session, [prepared])
    else:
        pending[prepared.project_id] = prepared  # saved twice in one batch: the later one wins
    return prepared.model


@contextmanager
def storyboard_batch(session: Session) -> Iterator[None]:
    """Defer the writes of every ``save_storyboard`` in the block to its end, then do them at once.

    Saving many storyboards (a backfill, a regeneration of many projects) then costs one look-up,
    one UPDATE, the DELETEs of what is replaced and three INSERT executemanys in all, instead of
    that many per storyboard. A project saved twice in the block keeps the later storyboard.

    Args:
        session: The sync ``Session`` the block's ``save_storyboard`` calls use.

    Raises:
        StoryboardError: Validation errors still raise at the ``save_storyboard`` call;
            database errors (scenes whose keyframes block a replacement) raise when the block
            ends, and then nothing of the batch is written. Also raised for a nested batch.
        UnknownProjectError: At the end of the block, for projects that do not exist.
    """
    if _BATCH_KEY in session.info:
        raise StoryboardError("storyboard_batch blocks cannot be nested")
    pending: dict[uuid.UUID, Prepared] = {}
    session.info[_BATCH_KEY] = pending
    try:
        yield
    finally:
        del session.info[_BATCH_KEY]
    if pending:
        _write(session, list(pending.values()))


def _write(session: Session, storyboards: list[Prepared]) -> None:
    """Replace the storyboards of these projects: set-based statements inside one SAVEPOINT.

    The projects are locked before anything is decided (see ``_lock_and_look_up``), so
    saves of one project serialise: the later one replaces the earlier one whole. Everything
    after the look-up is written without reading anything back, so it is sent in one round trip
    where the driver can (the dialect's ``statements_together``: psycopg's pipeline mode). The
    SAVEPOINT is Core's ``begin_nested``: the store adds no ORM objects, so the session has
    nothing to roll back with it.
    """
    session.flush()  # projects added but not yet flushed must be visible below
    refuse_oversized(session, storyboards)
    project_ids = [prepared.project_id for prepared in storyboards]
    try:
        connection = session.connection()
        dialect = dialect_for(connection.dialect)
        with connection.begin_nested():
            # SQLite: only a write can wait for the database lock (see _lock_and_look_up).
            write_first = dialect.save_writes_first
            project_values = [prepared.project_values for prepared in storyboards]
            if write_first:
                connection.execute(_UPDATE_PROJECTS, project_values)
            stored = _lock_and_look_up(connection, project_ids, lock=not write_first)
            with dialect.statements_together(connection):
                if not write_first:
                    connection.execute(_UPDATE_PROJECTS, project_values)
                for table in STORYBOARD_TABLES:
                    holders = [pid for pid in project_ids if table.name in stored[pid]]
                    for chunk in _chunks(holders):
                        connection.execute(_DELETES[table.name], {"project_ids": chunk})
                for table, rows in (
                    (scenes_table, [row for p in storyboards for row in p.scene_rows]),
                    (manifests_table, [row for p in storyboards for row in p.manifest_rows]),
                    (audio_table, [row for p in storyboards for row in p.audio_rows]),
                ):
                    if rows:
                        connection.execute(sa.insert(table), rows)
    except IntegrityError as exc:
        raise explain_integrity_error(session, project_ids, exc) from exc
    except OperationalError as exc:
        raise explain_lost_race(session, project_ids, exc) from exc
    _expire_projects(session, set(project_ids))


def _lock_and_look_up(
    connection: sa.Connection, project_ids: list[uuid.UUID], *, lock: bool
) -> dict[uuid.UUID, set[str]]:
    """Lock the projects (unless the caller's UPDATE of them has) and say which tables hold rows
    of each.

    Nothing is decided before the lock: a save that waited for another save of the same project
    sees what that one committed, and deletes it.

    - PostgreSQL, MariaDB/MySQL: ``SELECT ... FOR UPDATE`` on the project rows, in id order (two
      batches lock shared projects in the same order). A locking read returns the latest
      committed row even under MariaDB's REPEATABLE READ, whose plain reads may come from a
      snapshot older than the lock: ``storyboard_kind``, read by the lock itself, names the
      tables the last save wrote, and the existence checks add rows saved without a kind
      (before vidpipe_0004). On PostgreSQL under REPEATABLE READ or SERIALIZABLE, a project
      saved after the snapshot cannot be locked (serialization failure: see
      ``explain_lost_race``). The projects' UPDATE follows the lock.
    - SQLite locks the whole database, and only a write can wait for that lock (a transaction
      that has read first gets SQLITE_BUSY at once, whatever the busy timeout): the projects'
      UPDATE comes first and takes it (``lock=False``); the look-up after it sees the latest
      data.

    A first save of a project (no rows anywhere) sends no DELETE: on MariaDB a DELETE of an empty
    range takes gap locks, and concurrent first saves of different projects would deadlock in
    them. (Replacing stored storyboards still can: see ``explain_lost_race``.)
    """
    stored: dict[uuid.UUID, set[str]] = {}
    for chunk in _chunks(sorted(project_ids)):
        rows = (
            connection.execute(_LOOK_UP_ONE[lock], {"project_key": chunk[0]})
            if len(chunk) == 1
            else connection.execute(_LOCK if lock else _LOOK_UP, {"project_ids": chunk})
        )
        for project_id, kind, *holds in rows:
            tables = {
                table.name for table, held in zip(STORYBOARD_TABLES, holds, strict=True) if held
            }
            if lock:
                tables |= _KIND_TABLES.get(kind, set())
            stored[project_id] = tables
    missing = set(project_ids) - set(stored)
    if missing:
        raise UnknownProjectError(
            f"No project with id {', '.join(map(str, sorted(missing)))}: nothing was saved"
        )
    return stored


def _chunks(ids: list[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        yield ids[start : start + _IDS_PER_STATEMENT]


def _expire_projects(session: Session, project_ids: set[uuid.UUID]) -> None:
    """Loaded Project objects re-read the columns the store changed behind the ORM's back."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Project) and obj.id in project_ids:
            session.expire(obj, ["style_guide", "characters", "storyboard_kind", "storyboard_raw"])
