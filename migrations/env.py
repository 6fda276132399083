"""Alembic's entry point for vidpipe's revisions (CLI, programmatic API and tests alike).

Where the database comes from: a Connection or Engine in ``config.attributes["connection"]``
(the API, pytest-alembic, hosts), else the URL of the run's settings (vidpipe.db.runner.settings:
``config.attributes["url"]``, ``-x url=...``, ``$VIDPIPE_DATABASE_URL``, ``sqlalchemy.url``).
Async URLs (sqlite+aiosqlite, postgresql+asyncpg, mariadb+aiomysql) run through ``run_sync``.
"""

import asyncio
from collections.abc import Callable
from logging.config import fileConfig
from typing import cast

import sqlalchemy as sa
from alembic import context as context_module
from alembic.runtime.environment import EnvironmentContext

from vidpipe.db.engine import is_async_url
from vidpipe.db.runner.environment import (
    command_line_errors,
    configure_options,
    run_migrations,
    set_run_timeouts,
)
from vidpipe.db.runner.pooler import migration_async_engine, migration_engine
from vidpipe.db.runner.safety import run_settings, write_offline_notice

# alembic.context is a module standing in for the running EnvironmentContext: each of its
# functions calls the instance's method of that name. vidpipe's helpers take the class.
context = cast(EnvironmentContext, context_module)
config = context.config


def database_url() -> sa.URL:
    return settings.database_url()


def run_offline() -> None:
    """Write the SQL to stdout (``--sql``) for a database that holds nothing yet."""
    url = database_url()
    options = configure_options(url.get_dialect().name)
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **options)
    write_offline_notice(context)
    with context.begin_transaction():
        set_run_timeouts(context)
        context.run_migrations()


Run = Callable[[EnvironmentContext, sa.Connection], None]


def writing_a_revision() -> bool:
    """``alembic revision --autogenerate``: the one command that writes a revision file.

    Read from the command line's options (``Config.cmd_opts``); a program that calls
    ``alembic.command.revision`` passes ``process_revision_directives=write_in_vidpipe_idiom``
    (``vidpipe.db.revision_rewriter``) itself.
    """
    return bool(getattr(config.cmd_opts, "autogenerate", False))


def write_revision(context: EnvironmentContext, connection: sa.Connection) -> None:
    """Compare the models with the database and write the revision in vidpipe's idiom.

    Nothing is migrated, so no migration lock or guard; the rewriter is imported here only, so
    upgrades, downgrades and ``--sql`` never load it.
    """
    from vidpipe.db.revision_rewriter import write_in_vidpipe_idiom

    options = configure_options(connection.dialect.name)
    context.configure(
        connection=connection, process_revision_directives=write_in_vidpipe_idiom, **options
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(run: Run) -> None:
    handed_in = config.attributes.get("connection")
    if isinstance(handed_in, sa.Connection):
        run(context, handed_in)
        return
    if handed_in is not None:
        # An Engine, or anything engine-like (pytest-alembic wraps a live connection so that
        # connect() hands it back): something handed in must never fall through to the URL.
        with handed_in.connect() as connection:
            run(context, connection)
        return
    url = database_url()
    if is_async_url(url):
        asyncio.run(_run_async(url, run))
        return
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            run(context, connection)
    finally:
        engine.dispose()


async def _run_async(url: sa.URL, run: Run) -> None:
    engine = migration_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(lambda sync: run(context, sync))
    finally:
        await engine.dispose()


# vidpipe's errors (a bad setting included) as one "FAILED:" line on alembic's command line.
with command_line_errors(config):
    settings = run_settings(context)
    if config.config_file_name is not None and settings.configure_logger:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        run_offline()
    else:
        run_online(write_revision if writing_a_revision() else run_migrations)
