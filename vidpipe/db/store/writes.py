"""Writing prepared storyboards: one SAVEPOINT, set-based statements, driver-level executemany."""

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidpipe.db.errors import StoryboardError, UnknownProjectError
from vidpipe.db.models import Project
from vidpipe.db.store.explain import explain_integrity_error
from vidpipe.db.store.kinds import Storyboard, StoryboardSchema
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

_RAW_JSON_TEXT = sa.Column("storyboard_raw", sa.Text())


def save_storyboard(
    session: Session,
    project_id: uuid.UUID,
    storyboard: Storyboard | Mapping[str, Any] | str | bytes,
    *,
    schema: StoryboardSchema | None = None,
) -> Storyboard:
    """Store ``storyboard`` as the project's storyboard, replacing any earlier one.

    ``storyboard`` is a model, or Gemini's raw output (a dict or JSON text) together with the
    ``schema`` it was asked for. It is validated and checked first; then, inside a SAVEPOINT,
    the project's old storyboard rows are deleted and the new ones inserted in bulk (one
    executemany per table). Any problem raises :class:`StoryboardError` naming the scene and
    field, and leaves the database as it was. Returns the validated storyboard.

    Inside :func:`storyboard_batch` the writes wait for the end of the batch, where every
    storyboard saved in it is written together.
    """
    prepared = prepare(project_id, storyboard, schema)
    pending = session.info.get(_BATCH_KEY)
    if pending is None:
        _write(session, [prepared])
    else:
        pending[project_id] = prepared  # saved twice in one batch: the later one wins
    return prepared.model


@contextmanager
def storyboard_batch(session: Session) -> Iterator[None]:
    """Defer the writes of every ``save_storyboard`` in the block to its end, then do them at once.

    Saving many storyboards (a backfill, a regeneration of many projects) then costs one look-up,
    one UPDATE, the DELETEs of what is replaced and three INSERT executemanys in all, instead of
    that many per storyboard.
    Validation errors still raise at the ``save_storyboard`` call; database errors (an unknown
    project, scenes whose keyframes block a replacement) raise when the block ends, and then
    nothing of the batch is written. An exception inside the block discards the batch.
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
    """Replace the storyboards of these projects: set-based statements inside one SAVEPOINT."""
    session.flush()  # projects added but not yet flushed must be visible below
    project_ids = [prepared.project_id for prepared in storyboards]
    try:
        with session.begin_nested():
            connection = session.connection()
            # One query says which projects exist and which tables hold rows of theirs, so a
            # first save (the common case) sends no DELETE at all.
            holds = [
                sa.exists().where(table.c.project_id == projects_table.c.id).label(table.name)
                for table in STORYBOARD_TABLES
            ]
            found = connection.execute(
                sa.select(projects_table.c.id, *holds).where(projects_table.c.id.in_(project_ids))
            ).all()
            missing = set(project_ids) - {row.id for row in found}
            if missing:
                raise UnknownProjectError(
                    f"No project with id {', '.join(map(str, sorted(missing)))}: nothing was saved"
                )
            _update_projects(connection, [prepared.project_values for prepared in storyboards])
            for table in STORYBOARD_TABLES:
                if any(row._mapping[table.name] for row in found):
                    connection.execute(sa.delete(table).where(table.c.project_id.in_(project_ids)))
            for table, rows in (
                (scenes_table, [row for p in storyboards for row in p.scene_rows]),
                (manifests_table, [row for p in storyboards for row in p.manifest_rows]),
                (audio_table, [row for p in storyboards for row in p.audio_rows]),
            ):
                if rows:
                    _insert_many(connection, table, rows)
    except IntegrityError as exc:
        raise explain_integrity_error(session, project_ids, exc) from exc
    _expire_projects(session, set(project_ids))


def _insert_many(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    names = list(rows[0])
    statement = sa.insert(table).values({name: sa.bindparam(name) for name in names})
    _executemany(connection, statement, {name: table.c[name] for name in names}, rows)


def _update_projects(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    names = [name for name in rows[0] if name != "project_key"]
    statement = (
        sa.update(projects_table)
        .where(projects_table.c.id == sa.bindparam("project_key"))
        .values({name: sa.bindparam(name) for name in names})
    )
    columns = {
        "project_key": projects_table.c.id,
        **{name: projects_table.c[name] for name in names},
        # Already JSON text (storable_json): bound as text, into the column's own SQL (with its
        # ::JSONB cast on PostgreSQL), so the largest document is not serialised a second time.
        "storyboard_raw": _RAW_JSON_TEXT,
    }
    _executemany(connection, statement, columns, rows)


def _executemany(
    connection: sa.Connection,
    statement: sa.Insert | sa.Update,
    columns: dict[str, sa.Column[Any]],
    rows: list[dict[str, Any]],
) -> None:
    """One driver-level executemany, values converted by SQLAlchemy's own type processors.

    Core's per-row parameter handling cost more than the database's work for these rows; the
    processors (UUID, JSON, booleans, per dialect) are looked up once per column instead.
    """
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)
    names = list(compiled.positiontup or []) if compiled.positional else list(columns)
    # Column by column with map() and zip(): C loops, where row-by-row Python dominated.
    values = []
    for name in names:
        column = list(map(itemgetter(name), rows))
        process = columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        values.append(list(map(process, column)) if process else column)
    parameters: list[Any] = list(zip(*values, strict=True))
    if not compiled.positional:
        parameters = [dict(zip(names, row, strict=True)) for row in parameters]
    connection.exec_driver_sql(compiled.string, parameters)


def _expire_projects(session: Session, project_ids: set[uuid.UUID]) -> None:
    """Loaded Project objects re-read the columns the store changed behind the ORM's back."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Project) and obj.id in project_ids:
            session.expire(obj, ["style_guide", "characters", "storyboard_kind", "storyboard_raw"])
