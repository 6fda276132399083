"""The database itself enforces the foreign keys, on every dialect, SQLite included."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from tests.support.rows import PROJECT_ID, ROWS, insert_rows
from vidpipe.db import (
    create_async_engine,
    create_engine,
    current_revision,
    downgrade,
    upgrade,
    upgrade_async,
)
from vidpipe.db.models import Base

SCENE_MANIFESTS = Base.metadata.tables["scene_manifests"]
PROJECTS = Base.metadata.tables["projects"]


def test_models_declare_restrict_for_scene_manifests() -> None:
    """What the tests below expect follows from this: plain foreign keys, no ON DELETE."""
    for name in ("scene_manifests", "scene_audio_manifests"):
        (fk,) = Base.metadata.tables[name].foreign_keys
        assert (fk.target_fullname, fk.ondelete) == ("projects.id", None)


@pytest.mark.usefixtures("engine_at_head")
def test_manifest_for_a_missing_project_is_rejected(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            SCENE_MANIFESTS.insert(),
            {"project_id": uuid.uuid4(), "scene_index": 0, "manifest_json": {}},
        )
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(SCENE_MANIFESTS)).scalar()
            == 0
        )


@pytest.mark.usefixtures("engine_at_head")
def test_deleting_a_project_with_manifests_is_refused(engine: sa.Engine) -> None:
    insert_rows(engine, ("manifests", "projects"))
    with engine.begin() as connection:
        connection.execute(SCENE_MANIFESTS.insert(), ROWS["scene_manifests"][0])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(PROJECTS.delete().where(PROJECTS.c.id == PROJECT_ID))
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(sa.func.count()).select_from(PROJECTS).where(PROJECTS.c.id == PROJECT_ID)
            ).scalar()
            == 1
        )
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(SCENE_MANIFESTS)).scalar()
            == 1
        )


@pytest.fixture
def sqlite_foreign_keys_seen() -> Iterator[list[int]]:
    """PRAGMA foreign_keys of every SQLite connection any pool hands out while the test runs."""
    seen: list[int] = []

    def on_checkout(dbapi_connection, _record, _proxy) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys")
        seen.append(cursor.fetchone()[0])
        cursor.close()

    event.listen(sa.pool.Pool, "checkout", on_checkout)
    try:
        yield seen
    finally:
        event.remove(sa.pool.Pool, "checkout", on_checkout)


def test_every_sqlite_connection_the_layer_makes_has_foreign_keys_on(
    tmp_path: Path, sqlite_foreign_keys_seen: list[int]
) -> None:
    url = f"sqlite:///{tmp_path / 'fk.db'}"
    upgrade(url, "vidpipe_0001")
    asyncio.run(upgrade_async(f"sqlite+aiosqlite:///{tmp_path / 'fk.db'}"))
    current_revision(url)
    downgrade(url, "vidpipe_0001")
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect():
        pass
    engine.dispose()

    async def connect_async() -> None:
        async_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'fk.db'}")
        async with async_engine.connect():
            pass
        await async_engine.dispose()

    asyncio.run(connect_async())
    assert len(sqlite_foreign_keys_seen) >= 6
    assert set(sqlite_foreign_keys_seen) == {1}
