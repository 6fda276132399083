"""Run vidpipe's revisions from code: the same revisions, env.py and checks as the CLI.

Works from an installed wheel and from any working directory: the Alembic configuration is
built here, not read from an alembic.ini.

Every function that touches a database has an async twin (``upgrade`` and ``upgrade_async``,
...), as advanced-alchemy keeps its sync and async APIs side by side. A sync function also
takes an async URL (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``, ``mariadb+aiomysql://``)
and runs it through the asyncio driver, outside an event loop; inside a running loop (a FastAPI
lifespan) it refuses, naming the twin to await, because it would have to block that loop.

The functions that run revisions take every run setting as a keyword argument
(``upgrade(url, ddl_lock_timeout="1s")``): the fields of
``vidpipe.db.runner.settings.RunSettings``, which ``vidpipe-db`` offers as flags too.
"""

import asyncio
import difflib
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import URL

from vidpipe.db.dialects import dialect_for
from vidpipe.db.dialects.sqlite import sqlite_path
from vidpipe.db.engine import is_async_url, resolve_url
from vidpipe.db.errors import (
    DatabaseFileError,
    InvalidVersionState,
    UnknownRevisionError,
    VidpipeDatabaseError,
)
from vidpipe.db.runner.environment import VERSION_TABLE
from vidpipe.db.runner.pooler import migration_async_engine, migration_engine
from vidpipe.db.runner.revision_kinds import expand_only_destination
from vidpipe.db.runner.settings import parsed_options, run_options
from vidpipe.db.runner.version_state import revision_ids

if TYPE_CHECKING:
    # Imported lazily below: sqlalchemy.ext.asyncio needs greenlet, which sync users may lack.
    from typing import TypeAlias

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    #: What the async twins take: an async URL, an AsyncEngine or an AsyncConnection.
    AsyncBind: TypeAlias = str | URL | AsyncEngine | AsyncConnection | None

__all__ = [
    "Bind",
    "alembic_config",
    "check",
    "check_async",
    "current_revision",
    "current_revision_async",
    "downgrade",
    "downgrade_async",
    "existing_database",
    "heads",
    "history",
    "script_location",
    "stamp",
    "stamp_async",
    "upgrade",
    "upgrade_async",
    "upgrade_sql",
]

_T = TypeVar("_T")

#: Anything that names a database: a URL (None means $VIDPIPE_DATABASE_URL or the default),
#: an Engine, or a Connection.
Bind = str | URL | sa.Engine | sa.Connection | None

#: How the docstrings below name the run settings; the list itself comes from the fields.
_SETTINGS_DOC = textwrap.fill(
    "``settings``: any run setting by name ({}): see vidpipe.db.runner.settings. An unknown "
    "name is refused.".format(", ".join(option.name for option in run_options())),
    width=96,
    initial_indent="    ",
    subsequent_indent="    ",
)


def script_location() -> Path:
    """Where the revisions are: inside the package when installed, else the repository's."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "migrations"
    return installed if installed.is_dir() else package.parent / "migrations"


def alembic_config(**attributes: Any) -> Config:
    """An Alembic ``Config`` for vidpipe's revisions, for code that runs ``alembic.command``
    itself (pytest-alembic's ``alembic_config`` fixture, say).

    Args:
        **attributes: Put into ``config.attributes``, where env.py reads them: ``url`` or
            ``connection``, and any run setting by name.
    """
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes.update(attributes)
    return config


def upgrade(
    bind: Bind = None, revision: str = "head", *, expand_only: bool = False, **settings: object
) -> None:
    """Upgrade the database to ``revision`` (default: the newest).

    Waits up to ``lock_timeout`` seconds for another process's migration
    (vidpipe.db.runner.locking), and tries the run up to ``ddl_retries`` more times while a
    statement times out behind an application's lock (vidpipe.db.runner.lock_retry). A
    database already at head costs one read of the version table, so calling this at every
    start-up is cheap.

    Args:
        bind: A URL, an ``Engine`` or a ``Connection`` (migrated inside its transaction if it is
            in one; the caller commits). None: ``$VIDPIPE_DATABASE_URL``, else
            ``sqlite:///vidpipe.db``.
        revision: A revision id, or ``"head"``.
        expand_only: Stop before the first contract revision: the step of a rolling deploy
            that runs while the previous release still serves
            (vidpipe.db.runner.revision_kinds). A database a newer release moved ahead
            through expand revisions only is then left as it is, with a warning
            (vidpipe.db.runner.version_state).
        **settings: Run settings by name (``ddl_lock_timeout="1s"``, ...): the fields of
            ``vidpipe.db.runner.settings.RunSettings``.

    Raises:
        VidpipeDatabaseError: The database is already past ``revision`` (upgrade never goes
            down), or an async engine or URL was given where the ``_async`` twin is needed;
            the subclasses of ``vidpipe.db.errors`` for what the run found (see the
            troubleshooting page).
        UnknownRevisionError: ``revision`` is not in vidpipe's history.
        MigrationSettingError: A setting is unknown or its value cannot work.
    """
    _run(bind, _upgrading(revision, settings, expand_only), "upgrade")


async def upgrade_async(
    bind: "AsyncBind" = None,
    revision: str = "head",
    *,
    expand_only: bool = False,
    **settings: object,
) -> None:
    """``upgrade`` through an asyncio engine, connection or URL, as an async host does
    at start-up (a FastAPI lifespan, say).

    Args:
        bind: An ``AsyncEngine``, an ``AsyncConnection`` or an async URL
            (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``, ``mariadb+aiomysql://``).
        revision: As for ``upgrade``.
        expand_only: As for ``upgrade``.
        **settings: As for ``upgrade``.
    """
    await _run_async(bind, _upgrading(revision, settings, expand_only), "upgrade")


def downgrade(bind: Bind, revision: str, **settings: object) -> None:
    """Downgrade the database to ``revision`` (``"base"`` removes every vidpipe table).

    Args:
        bind: A URL, an ``Engine`` or a ``Connection``, as for ``upgrade``.
        revision: A revision id, a relative step (``"-1"``) or ``"base"``.
        **settings: Run settings by name; ``allow_data_loss=True`` lets it drop data.

    Raises:
        DataLossRefused: It would drop a table or column holding data (rows the application
            commits while the downgrade runs are counted too: vidpipe.db.runner.data_loss),
            and ``allow_data_loss`` was not given. Nothing was changed.
    """
    _run(bind, _commanding(command.downgrade, revision, settings), "downgrade")


async def downgrade_async(bind: "AsyncBind", revision: str, **settings: object) -> None:
    """``downgrade`` through an asyncio engine, connection or URL."""
    await _run_async(bind, _commanding(command.downgrade, revision, settings), "downgrade")


def stamp(bind: Bind, revision: str, *, purge: bool = False, **settings: object) -> None:
    """Record ``revision`` in the version table without running any revision.

    Takes the migration lock, as a run does.

    Args:
        bind: A URL, an ``Engine`` or a ``Connection``, as for ``upgrade``.
        revision: The revision the schema really matches.
        purge: Empty the version table first: the repair for contradictory rows
            (``InvalidVersionState``).
        **settings: Run settings by name.
    """
    _run(bind, _commanding(command.stamp, revision, settings, purge=purge), "stamp")


async def stamp_async(
    bind: "AsyncBind", revision: str, *, purge: bool = False, **settings: object
) -> None:
    """``stamp`` through an asyncio engine, connection or URL."""
    await _run_async(bind, _commanding(command.stamp, revision, settings, purge=purge), "stamp")


for _function in (upgrade, upgrade_async, downgrade, downgrade_async, stamp, stamp_async):
    _function.__doc__ = f"{_function.__doc__}\n{_SETTINGS_DOC}\n"
del _function


def current_revision(bind: Bind = None) -> str | None:
    """The revision the database is at.

    Only reads: given a URL of a SQLite file, the file is opened read-only (it may be a
    read-only file) and left exactly as it was; a file that does not exist is not created.

    Returns:
        The revision id (``"vidpipe_0006"``), or None if vidpipe's revisions were never
        applied (or the SQLite file does not exist).

    Raises:
        InvalidVersionState: The version table records several revisions.
    """
    readable = _read_only(bind)
    if readable is None:
        return None
    return _one_head(_run(readable, _database_heads, "current_revision"))


async def current_revision_async(bind: "AsyncBind" = None) -> str | None:
    """``current_revision`` through an asyncio engine, connection or URL."""
    readable = _read_only(bind)
    if readable is None:
        return None
    return _one_head(await _run_async(readable, _database_heads, "current_revision"))


def check(bind: Bind = None) -> None:
    """Compare the database with the models, as ``alembic check`` does.

    Only reads, like ``current_revision``.

    Raises:
        alembic.util.AutogenerateDiffsDetected: The database and the models disagree; the
            message lists each difference.
        DatabaseFileError: The SQLite file does not exist (it is not created empty).
    """
    _run(existing_database(bind, "nothing to check"), _check, "check")


async def check_async(bind: "AsyncBind" = None) -> None:
    """``check`` through an asyncio engine, connection or URL."""
    await _run_async(existing_database(bind, "nothing to check"), _check, "check")


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


def existing_database(bind: Any, nothing_to: str) -> Any:
    """``bind`` opened for reading only; a SQLite file that does not exist is refused with
    ``DatabaseFileError``, naming its path and ``nothing_to`` ("nothing to check")."""
    readable = _read_only(bind)
    if readable is None:
        url = resolve_url(bind)
        raise DatabaseFileError(
            f"There is no SQLite database file at {url.database} ({sqlite_path(url)}): "
            f"{nothing_to}. Check the path, or build the database with vidpipe-db upgrade "
            "(alembic upgrade head)."
        )
    return readable


def _read_only(bind: Any) -> Any:
    """A URL's read-only twin (the dialect's ``read_only_url``; None: no such SQLite file); an
    engine or connection as it is."""
    if isinstance(bind, str | URL | None):
        url = resolve_url(bind)
        return dialect_for(url.get_backend_name()).read_only_url(url)
    return bind


def _one_head(rows: tuple[str, ...]) -> str | None:
    heads = revision_ids(rows, VERSION_TABLE)
    if len(heads) > 1:
        raise InvalidVersionState(
            f"{VERSION_TABLE} records several revisions ({', '.join(heads)}); vidpipe's history "
            "has one head. Repair it with: vidpipe-db stamp --purge <revision> "
            "(alembic stamp --purge <revision> from the repository)",
            rows=heads,
        )
    return heads[0] if heads else None


def _check(connection: sa.Connection) -> None:
    command.check(alembic_config(connection=connection))


def _upgrading(
    revision: str, settings: Mapping[str, object], expand_only: bool
) -> Callable[[sa.Connection], None]:
    """The work of an upgrade, its revision and settings checked before anything connects."""
    _require_known(revision)
    return partial(
        _upgrade, revision=revision, attributes=parsed_options(settings), expand_only=expand_only
    )


def _commanding(
    run: Callable[..., None], revision: str, settings: Mapping[str, object], **options: Any
) -> Callable[[sa.Connection], None]:
    """The work of an Alembic command, its revision and settings checked before anything
    connects."""
    _require_known(revision)
    attributes = parsed_options(settings)
    return lambda connection: run(
        alembic_config(connection=connection, **attributes), revision, **options
    )


def _upgrade(
    connection: sa.Connection, revision: str, attributes: dict[str, Any], expand_only: bool
) -> None:
    at = _database_heads(connection)
    # The start-up fast path: a database already at head costs one read of the version table,
    # not a load of every revision file, a run of env.py and the migration lock.
    if revision in ("head", "heads") and set(at) == _code_heads():
        return
    _refuse_going_down(at, revision)
    if expand_only:
        stop = expand_only_destination(_script(), at, revision, connection.dialect)
        if stop is None:
            return
        revision = stop
    command.upgrade(alembic_config(connection=connection, **attributes), revision)


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@cache
def _code_heads() -> frozenset[str]:
    return frozenset(_script().get_heads())


def _require_known(revision: str) -> None:
    """Refuse a revision id vidpipe's history lacks, suggesting the nearest one (Alembic's own
    error, "Can't locate revision", names no alternative). Relative (``-1``, ``+2``), branch
    (``vidpipe@head``) and range (``a:b``) forms are left to Alembic."""
    if revision in ("head", "heads", "base") or any(mark in revision for mark in "+-@:"):
        return
    try:
        _script().get_revisions(revision)
        return
    except (CommandError, RevisionError):
        known = [script.revision for script in _script().walk_revisions()]
    nearest = difflib.get_close_matches(revision, known, n=1)
    suggestion = f" Did you mean {nearest[0]}?" if nearest else ""
    raise UnknownRevisionError(
        f"vidpipe has no revision {revision!r}.{suggestion} Its revisions are "
        f"{', '.join(reversed(known))}, or head and base (vidpipe-db history lists them)."
    )


def _refuse_going_down(at: tuple[str, ...], revision: str) -> None:
    """Raise if the database is already past ``revision``: Alembic would do nothing and say
    nothing, and the caller would believe the database is at ``revision``."""
    if len(at) != 1 or revision in ("head", "heads"):
        return
    try:
        target = _script().get_revision(revision)
        below = {script.revision for script in _script().iterate_revisions(at[0], "base")}
    except (CommandError, RevisionError):
        return  # a relative form, or a database ahead of the code: Alembic's and env.py's call
    if target is not None and target.revision != at[0] and target.revision in below:
        raise VidpipeDatabaseError(
            f"The database is at {at[0]}, past {target.revision}: upgrade never goes down, "
            f"and nothing was changed. To go back, downgrade: vidpipe-db downgrade "
            f"{target.revision} (downgrade(bind, {target.revision!r}) from code)."
        )


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


def _run(bind: Bind, work: Callable[[sa.Connection], _T], name: str) -> _T:
    """``work`` on a connection to ``bind`` for the sync function ``name``; an async URL goes
    through its asyncio driver when no event loop is running."""
    if _is_async_object(bind):
        raise VidpipeDatabaseError(
            f"{name}() was given an {type(bind).__name__}; await {name}_async() with it, or "
            f"pass {name}() a sync Engine, Connection or URL."
        )
    if isinstance(bind, str | URL | None) and is_async_url(resolve_url(bind)):
        if _event_loop_running():
            # Refused before the coroutine exists, so none is left unawaited.
            raise VidpipeDatabaseError(
                f"{name}() was called inside a running event loop with an async URL; it cannot "
                f"run that loop's driver without blocking it. Use: await {name}_async(...)"
            )
        return asyncio.run(_run_async(bind, work, name))
    with _connection(bind) as connection:
        return work(connection)


async def _run_async(bind: Any, work: Callable[[sa.Connection], _T], name: str) -> _T:
    """``work`` on a connection to ``bind`` for the async twin of ``name``."""
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    if isinstance(bind, AsyncConnection):
        return await bind.run_sync(work)
    if isinstance(bind, sa.Engine | sa.Connection):
        raise VidpipeDatabaseError(
            f"{name}_async() was given a sync {type(bind).__name__}; call {name}() with it, or "
            f"pass {name}_async() an AsyncEngine, AsyncConnection or async URL."
        )
    engine = bind if isinstance(bind, AsyncEngine) else migration_async_engine(bind)
    try:
        with _explaining_open_errors(engine.url):
            connection = await engine.connect().start()
        try:
            return await connection.run_sync(work)
        finally:
            await connection.close()
    finally:
        if engine is not bind:
            await engine.dispose()


def _is_async_object(bind: object) -> bool:
    # Only an imported sqlalchemy.ext.asyncio can have made one; not importing it here keeps
    # sync users free of greenlet.
    module = sys.modules.get("sqlalchemy.ext.asyncio")
    return module is not None and isinstance(bind, module.AsyncEngine | module.AsyncConnection)


def _event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@contextmanager
def _connection(bind: Bind) -> Iterator[sa.Connection]:
    if isinstance(bind, sa.Connection):
        yield bind
        return
    engine = bind if isinstance(bind, sa.Engine) else migration_engine(bind)
    try:
        with _explaining_open_errors(engine.url):
            connection = engine.connect()
        with connection:
            yield connection
    finally:
        if engine is not bind:
            engine.dispose()


@contextmanager
def _explaining_open_errors(url: URL) -> Iterator[None]:
    """Around connecting: a database the driver cannot open is named, with the reason, where
    the driver leaves them out (a SQLite file)."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        explained = dialect_for(url.get_backend_name()).explain_open_error(url, exc)
        if explained is None:
            raise
        raise explained from exc
