"""Run vidpipe's revisions from code: the same revisions, env.py and checks as the CLI.

Works from an installed wheel and from any working directory: the Alembic configuration is
built here, not read from an alembic.ini.
"""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from vidpipe.db.engine import create_async_engine, create_engine, is_async_url, resolve_url
from vidpipe.db.environment import VERSION_TABLE
from vidpipe.db.safety import DEFAULT_LOCK_TIMEOUT

if TYPE_CHECKING:
    # Imported lazily below: sqlalchemy.ext.asyncio needs greenlet, which sync users may lack.
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
    bind: Bind = None, revision: str = "head", *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> None:
    """Upgrade the database to ``revision`` (default: the newest).

    Waits up to ``lock_timeout`` seconds for another process's migration (vidpipe.db.locking).
    """
    _run(bind, lambda config: command.upgrade(config, revision), lock_timeout=lock_timeout)


def downgrade(
    bind: Bind,
    revision: str,
    *,
    allow_data_loss: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> None:
    """Downgrade the database to ``revision`` (``"base"`` removes every vidpipe table).

    Refuses, changing nothing, if that would drop a table or column holding data, unless
    ``allow_data_loss`` is true.
    """
    _run(
        bind,
        lambda config: command.downgrade(config, revision),
        allow_data_loss=allow_data_loss,
        lock_timeout=lock_timeout,
    )


async def upgrade_async(
    bind: "str | URL | AsyncEngine | AsyncConnection | None" = None,
    revision: str = "head",
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> None:
    """Upgrade through an asyncio engine or connection, as an async host does at start-up."""
    await _run_async(
        bind, lambda config: command.upgrade(config, revision), lock_timeout=lock_timeout
    )


def current_revision(bind: Bind = None) -> str | None:
    """The revision the database is at, or None if vidpipe's revisions were never applied."""
    with _connection(bind) as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        heads = context.get_current_heads()
    if len(heads) > 1:
        raise RuntimeError(f"{VERSION_TABLE} records several revisions: {', '.join(heads)}")
    return heads[0] if heads else None


def _run(bind: Bind, alembic_command: Callable[[Config], None], **settings: Any) -> None:
    if isinstance(bind, str | URL | None) and is_async_url(resolve_url(bind)):
        asyncio.run(_run_async(bind, alembic_command, **settings))
        return
    with _connection(bind) as connection:
        alembic_command(alembic_config(connection=connection, **settings))


async def _run_async(
    bind: "str | URL | AsyncEngine | AsyncConnection | None",
    alembic_command: Callable[[Config], None],
    **settings: Any,
) -> None:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    def run(connection: sa.Connection) -> None:
        alembic_command(alembic_config(connection=connection, **settings))

    if isinstance(bind, AsyncConnection):
        await bind.run_sync(run)
        return
    engine = (
        bind if isinstance(bind, AsyncEngine) else create_async_engine(bind, poolclass=NullPool)
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run)
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
    engine = create_engine(bind, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
