"""A host backend with its own models, revision, env.py and alembic.ini, made here and run for real.

Mode A: vidpipe beside the host, each with its own version table; the host filters vidpipe's
tables out of its autogenerate. Mode B: vidpipe's revisions folded into the host's history.
Both on SQLite and PostgreSQL, with sync and asyncio drivers.
"""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.pool import NullPool

from tests.support.cli import REPO_ROOT
from tests.support.databases import as_async, dialect_params
from tests.support.revisions import HEAD
from vidpipe.db import VERSION_TABLE, create_async_engine, create_engine, upgrade, upgrade_async
from vidpipe.db.host import versions_directory
from vidpipe.db.migrate import alembic_config

HOST_MODELS = """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200))
"""

HOST_REVISION = '''
"""accounts"""
import sqlalchemy as sa
from alembic import op

revision = "host_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts")
'''

# The host's own env.py, async-capable like Alembic's "async" template. The two marked lines
# are the ones docs/embedding.md tells a host to add.
HOST_ENV = """
import asyncio
import os

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import vidpipe.db.host
import vidpipe.db.models
from host_models import Base

url = sa.make_url(os.environ["HOST_DATABASE_URL"])
if context.config.get_main_option("vidpipe_mode") == "A":
    options = dict(
        target_metadata=Base.metadata,
        include_name=vidpipe.db.host.include_name,  # Mode A
    )
else:
    options = dict(
        target_metadata=[Base.metadata, vidpipe.db.models.metadata],  # Mode B
        include_object=vidpipe.db.host.include_folded_object,  # Mode B
    )


def run(connection: sa.Connection) -> None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run)
    await engine.dispose()


if url.get_dialect().is_async:
    asyncio.run(run_async())
else:
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
"""


def host_project(directory: Path, mode: str) -> Path:
    """Write the host project; Mode B lists vidpipe's revisions in its version_locations."""
    (directory / "migrations" / "versions").mkdir(parents=True)
    (directory / "host_models.py").write_text(HOST_MODELS)
    (directory / "migrations" / "env.py").write_text(HOST_ENV)
    (directory / "migrations" / "versions" / "host_0001_accounts.py").write_text(HOST_REVISION)
    locations = "%(here)s/migrations/versions"
    if mode == "B":
        locations += f" {versions_directory()}"
    (directory / "alembic.ini").write_text(
        "[alembic]\n"
        "script_location = %(here)s/migrations\n"
        "prepend_sys_path = %(here)s\n"
        "path_separator = space\n"
        f"version_locations = {locations}\n"
        f"vidpipe_mode = {mode}\n"
    )
    return directory / "alembic.ini"


def host_alembic(ini: Path, url: sa.URL, *args: str) -> subprocess.CompletedProcess:
    """The host's own ``alembic`` command line, in the host's directory."""
    env = {k: v for k, v in os.environ.items() if k != "VIDPIPE_DATABASE_URL"}
    env["HOST_DATABASE_URL"] = url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), *args],
        cwd=ini.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def versions(engine: sa.Engine, table: str) -> set[str] | None:
    """The revisions ``table`` records, or None if there is no such table."""
    if not sa.inspect(engine).has_table(table):
        return None
    with engine.connect() as connection:
        return set(connection.exec_driver_sql(f"SELECT version_num FROM {table}").scalars())


def assert_clean(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout


HOST_DIALECTS = dialect_params("sqlite", "postgresql")


@pytest.mark.parametrize("dialect", HOST_DIALECTS, indirect=True)
@pytest.mark.parametrize("io", ["sync", "asyncio"])
def test_mode_a_side_by_side(
    dialect: str, io: str, database_url: sa.URL, engine: sa.Engine, tmp_path: Path
) -> None:
    url = as_async(database_url, dialect) if io == "asyncio" else database_url
    ini = host_project(tmp_path / "host", "A")
    assert host_alembic(ini, url, "upgrade", "head").returncode == 0

    # The host's start-up: one call, its own engine.
    if io == "asyncio":

        async def start_up() -> None:
            async_engine = create_async_engine(url, poolclass=NullPool)
            await upgrade_async(async_engine)
            await async_engine.dispose()

        asyncio.run(start_up())
    else:
        upgrade(create_engine(url, poolclass=NullPool))

    assert versions(engine, "alembic_version") == {"host_0001"}
    assert versions(engine, VERSION_TABLE) == {HEAD}
    assert_clean(host_alembic(ini, url, "check"))
    with engine.connect() as connection:  # vidpipe's own check ignores the host's tables
        command.check(alembic_config(connection=connection))


@pytest.mark.parametrize("dialect", HOST_DIALECTS, indirect=True)
@pytest.mark.parametrize("io", ["sync", "asyncio"])
def test_mode_b_folded_in(
    dialect: str, io: str, database_url: sa.URL, engine: sa.Engine, tmp_path: Path
) -> None:
    url = as_async(database_url, dialect) if io == "asyncio" else database_url
    ini = host_project(tmp_path / "host", "B")

    result = host_alembic(ini, url, "upgrade", "heads")

    assert result.returncode == 0, result.stderr
    assert versions(engine, "alembic_version") == {"host_0001", HEAD}
    assert versions(engine, VERSION_TABLE) is None
    assert_clean(host_alembic(ini, url, "check"))
    # vidpipe's branch can be addressed by its label from the host's command line.
    assert host_alembic(ini, url, "downgrade", "vidpipe@base").returncode == 0
    assert versions(engine, "alembic_version") == {"host_0001"}
    assert set(sa.inspect(engine).get_table_names()) == {"accounts", "alembic_version"}


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
def test_without_the_filter_the_hosts_check_sees_vidpipe_as_drift(
    database_url: sa.URL, tmp_path: Path
) -> None:
    """The Mode A filter is what keeps the host's check clean (this would pass without it)."""
    ini = host_project(tmp_path / "host", "A")
    env = (tmp_path / "host" / "migrations" / "env.py").read_text()
    (tmp_path / "host" / "migrations" / "env.py").write_text(
        env.replace("include_name=vidpipe.db.host.include_name,", "")
    )
    assert host_alembic(ini, database_url, "upgrade", "head").returncode == 0
    upgrade(database_url)
    result = host_alembic(ini, database_url, "check")
    assert result.returncode != 0
    assert "remove_table" in result.stdout + result.stderr
    assert "scene_manifests" in result.stdout + result.stderr


def test_the_embedding_page_shows_the_lines_this_host_runs() -> None:
    def squeezed(lines: list[str]) -> set[str]:
        return {" ".join(line.split()) for line in lines}

    marked = [line for line in HOST_ENV.splitlines() if line.endswith(("# Mode A", "# Mode B"))]
    page = (REPO_ROOT / "docs" / "embedding.md").read_text().splitlines()
    assert len(marked) == 3
    assert squeezed(marked) <= squeezed(page)
