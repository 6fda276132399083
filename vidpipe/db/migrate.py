"""Run vidpipe's revisions from code: the same revisions, env.py and checks as the CLI.

Works from an installed wheel and from any working directory: the Alembic configuration is
built here, not read from an alembic.ini. Every function that takes a URL takes an async one
(``sqlite+aiosqlite://``, ``postgresql+asyncpg://``, ``mariadb+aiomysql://``) too, and runs it
through the asyncio driver.
"""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from vidpipe.db.engine import is_async_url, read_only_sqlite_url, resolve_url
from vidpipe.db.errors import InvalidVersionState, VidpipeDatabaseError
from vidpipe.db.runner.environment import VERSION_TABLE
from vidpipe.db.runner.lock_retry import DEFAULT_DDL_RETRIES
from vidpipe.db.runner.pooler import migration_async_engine, migration_engine
from vidpipe.db.runner.revision_kinds import expand_only_destination
from vidpipe.db.runner.settings import DEFAULT_LOCK_TIMEOUT, lock_timeout_seconds
from vidpipe.db.runner.version_state import revision_ids

if TYPE_CHECKING:
    # Imported lazily below: sqlalchemy.ext.asyncio needs greenlet, which sync users may lack.
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "Bind",
    "alembic_config",
    "check",
    "current_revision",
    "downgrade",
    "heads",
    "history",
    "script_location",
    "stamp",
    "upgrade",
    "upgrade_async",
    "upgrade_sql",
]

_T = TypeVar("_T")

#: Anything that names a database: a URL (None means $VIDPIPE_DATABASE_URL or the default),
#: an Engine, or a Connection.
Bind = str | URL | sa.Engine | sa.Connection | None


def script_location() -> Path:
    """Where the revisions are: inside the package when installed, else the repository's."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "migrations"
    return installed if installed.is_dir() else package.parent / "migrations"


def alembic_config(**attributes: Any) -> Config:
    """An Alembic Config for vidpipe's revisions; ``attributes`` reach env.py."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes.update(attributes)
    return config


def upgrade(
    bind: Bind = None,
    revision: str = "head",
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ddl_retries: int = DEFAULT_DDL_RETRIES,
    expand_only: bool = False,
) -> None:
    """Upgrade the database to ``revision`` (default: the newest).

    Waits up to ``lock_timeout`` seconds for another process's migration
    (vidpipe.db.runner.locking), and tries the run up to ``ddl_retries`` more times while a
    statement times out behind an application's lock (vidpipe.db.runner.lock_retry).

    With ``expand_only``, stops before the first contract revision: the step of a rolling
    deploy that runs while the previous release still serves (vidpipe.db.runner.revision_kinds).
    A database a newer release moved ahead through expand revisions only is left as it is, with
    a warning (vidpipe.db.runner.version_state).
    """
    lock_timeout = lock_timeout_seconds(lock_timeout)
    _run(
        bind,
        partial(
            _upgrade,
            revision=revision,
            expand_only=expand_only,
            lock_timeout=lock_timeout,
            ddl_retries=ddl_retries,
        ),
    )


def downgrade(
    bind: Bind,
    revision: str,
    *,
    allow_data_loss: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ddl_retries: int = DEFAULT_DDL_RETRIES,
) -> None:
    """Downgrade the database to ``revision`` (``"base"`` removes every vidpipe table).

    Refuses, changing nothing, if that would drop a table or column holding data, unless
    ``allow_data_loss`` is true. Rows the application commits while the downgrade runs are
    counted too (vidpipe.db.runner.data_loss). ``lock_timeout`` and ``ddl_retries`` as for
    :func:`upgrade`.
    """
    lock_timeout = lock_timeout_seconds(lock_timeout)
    _run(
        bind,
        lambda connection: command.downgrade(
            alembic_config(
                connection=connection,
                allow_data_loss=allow_data_loss,
                lock_timeout=lock_timeout,
                ddl_retries=ddl_retries,
            ),
            revision,
        ),
    )


async def upgrade_async(
    bind: "str | URL | AsyncEngine | AsyncConnection | None" = None,
    revision: str = "head",
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ddl_retries: int = DEFAULT_DDL_RETRIES,
    expand_only: bool = False,
) -> None:
    """Upgrade through an asyncio engine or connection, as an async host does at start-up."""
    lock_timeout = lock_timeout_seconds(lock_timeout)
    await _run_async(
        bind,
        partial(
            _upgrade,
            revision=revision,
            expand_only=expand_only,
            lock_timeout=lock_timeout,
            ddl_retries=ddl_retries,
        ),
    )


def current_revision(bind: Bind = None) -> str | None:
    """The revision the database is at, or None if vidpipe's revisions were never applied.

    Only reads: given a URL of a SQLite file, the file is opened read-only (it may be a
    read-only file) and left exactly as it was; a file that does not exist is not created.
    """
    if isinstance(bind, str | URL | None):
        url = resolve_url(bind)
        read_only = read_only_sqlite_url(url)
        if read_only is None:
            return None  # a SQLite file that does not exist holds no revision
        bind = read_only
    rows = _run(bind, _database_heads)
    heads = revision_ids(rows, VERSION_TABLE)
    if len(heads) > 1:
        raise InvalidVersionState(
            f"{VERSION_TABLE} records several revisions ({', '.join(heads)}); vidpipe's history "
            "has one head. Repair it with: vidpipe-db stamp --purge <revision> "
            "(alembic stamp --purge <revision> from the repository)",
            rows=heads,
        )
    return heads[0] if heads else None


def check(bind: Bind = None) -> None:
    """Raise ``AutoGenerateDiffsDetected`` if the database and the models disagree.

    Only reads, like :func:`current_revision`; a SQLite file that does not exist is refused
    rather than created empty.
    """
    if isinstance(bind, str | URL | None):
        url = resolve_url(bind)
        read_only = read_only_sqlite_url(url)
        if read_only is None:
            raise VidpipeDatabaseError(
                f"There is no SQLite database file at {url.database}: nothing to check. "
                "Build it with vidpipe-db upgrade (alembic upgrade head)."
            )
        bind = read_only
    _run(bind, lambda connection: command.check(alembic_config(connection=connection)))


def stamp(
    bind: Bind,
    revision: str,
    *,
    purge: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> None:
    """Record ``revision`` in the version table without running any revision.

    With ``purge``, every row of the version table goes first: the repair for contradictory
    rows, after finding the revision the schema really matches. Takes the migration lock.
    """
    lock_timeout = lock_timeout_seconds(lock_timeout)
    _run(
        bind,
        lambda connection: command.stamp(
            alembic_config(connection=connection, lock_timeout=lock_timeout),
            revision,
            purge=purge,
        ),
    )


def history(*, verbose: bool = False) -> None:
    """Print vidpipe's revisions, newest first (no database is needed)."""
    command.history(alembic_config(), verbose=verbose)


def heads(*, verbose: bool = False) -> None:
    """Print the newest revision(s) of vidpipe's history (no database is needed)."""
    command.heads(alembic_config(), verbose=verbose)


def upgrade_sql(url: str | URL | None, revision: str = "head") -> None:
    """Print to stdout the SQL that upgrades an empty database of ``url``'s dialect to ``revision``.

    Nothing is connected to: the URL only names the dialect.
    """
    command.upgrade(alembic_config(url=resolve_url(url)), revision, sql=True)


def _upgrade(
    connection: sa.Connection, revision: str, expand_only: bool = False, **settings: Any
) -> None:
    # The start-up fast path: a database already at head costs one read of the version table,
    # not a load of every revision file, a run of env.py and the migration lock.
    if revision in ("head", "heads") and set(_database_heads(connection)) == _code_heads():
        return
    if expand_only:
        script = ScriptDirectory.from_config(alembic_config())
        current = _database_heads(connection)
        stop = expand_only_destination(script, current, revision, connection.dialect)
        if stop is None:
            return
        revision = stop
    command.upgrade(alembic_config(connection=connection, **settings), revision)


@cache
def _code_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


_VERSION_ROWS: sa.Select[str] = sa.select(sa.column("version_num")).select_from(
    sa.table(VERSION_TABLE)
)


def _database_heads(connection: sa.Connection) -> tuple[str, ...]:
    """The revisions in vidpipe's version table, leaving the connection as it was found."""
    if connection.in_transaction():
        # Inside the caller's transaction a failed SELECT would abort it (PostgreSQL): ask
        # Alembic, which checks that the table exists first.
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_heads()
    try:
        return tuple(connection.execute(_VERSION_ROWS).scalars())
    except sa.exc.DBAPIError:
        connection.rollback()
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_heads()  # () if the table is missing, else the real error
    finally:
        if connection.in_transaction():
            connection.rollback()


def _run(bind: Bind, work: Callable[[sa.Connection], _T]) -> _T:
    """``work`` on a connection to ``bind``; an async URL goes through its asyncio driver."""
    if isinstance(bind, str | URL | None) and is_async_url(resolve_url(bind)):
        return asyncio.run(_run_async(bind, work))
    with _connection(bind) as connection:
        return work(connection)


async def _run_async(
    bind: "str | URL | AsyncEngine | AsyncConnection | None",
    work: Callable[[sa.Connection], _T],
) -> _T:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    if isinstance(bind, AsyncConnection):
        return await bind.run_sync(work)
    engine = bind if isinstance(bind, AsyncEngine) else migration_async_engine(bind)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        if engine is not bind:
            await engine.dispose()


@contextmanager
def _connection(bind: Bind) -> Iterator[sa.Connection]:
    if isinstance(bind, sa.Connection):
        yield bind
        return
    if isinstance(bind, sa.Engine):
        with bind.connect() as connection:
            yield connection
        return
    engine = migration_engine(bind)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
