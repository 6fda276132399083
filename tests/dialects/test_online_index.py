"""PostgreSQL index builds on tables that hold rows let the application write (issue 11).

The upgrade from vidpipe_0002 builds vidpipe_0003's GIN indexes with CREATE INDEX CONCURRENTLY
outside the run's transaction. Each test holds the build at a known point without timing: an
old REPEATABLE READ transaction (a slow report, say) keeps a snapshot that the concurrent build
must wait for before it finishes. While it waits, an application writes to scene_manifests, a
second upgrade waits for the migration lock, and the build can be cancelled.
"""

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks.write_load import fill
from tests.support.background_upgrade import PATIENCE, Upgrade, wait_for
from tests.support.concurrent_upgrade import PROCESSES, upgrade_together
from tests.support.databases import IN_THIS_POSTGRESQL_DATABASE, dialect_params
from tests.support.pgbouncer import route
from tests.support.postgresql_locks import LOCK_LOST, advisory_locks, handover_holder, terminate
from tests.support.revisions import HEAD
from vidpipe.db import create_engine, current_revision, upgrade

pytestmark = pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)

ROWS = 2_000
GIN_INDEXES = ("ix_scene_manifests_asset_tags", "ix_scene_audio_manifests_speaker_tags")
#: A writer blocked by a plain CREATE INDEX fails after this instead of hanging the test.
WRITER_STATEMENT_TIMEOUT = "60s"


@pytest.fixture
def filled(engine: sa.Engine) -> sa.Engine:
    """A database at vidpipe_0002 whose manifest tables hold rows."""
    upgrade(engine, "vidpipe_0002")
    with engine.begin() as connection:
        fill(connection, ROWS)
    return engine


@pytest.fixture
def old_snapshot(filled: sa.Engine) -> Iterator[sa.Connection]:
    """A REPEATABLE READ transaction that has read a table, so it holds its snapshot."""
    with filled.connect() as connection:
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        connection.exec_driver_sql("SELECT count(*) FROM projects").scalar()
        yield connection
        if connection.in_transaction():
            connection.rollback()


def concurrent_build_waiting(engine: sa.Engine) -> int:
    """The pid of the CREATE INDEX CONCURRENTLY on scene_manifests, once it waits for the old
    snapshot (so the build is under way and cannot finish while the snapshot lives)."""
    return int(
        wait_for(  # type: ignore[arg-type]
            engine,
            "SELECT p.pid FROM pg_stat_progress_create_index p "
            "WHERE p.relid = 'scene_manifests'::regclass AND p.command = 'CREATE INDEX "
            "CONCURRENTLY' AND p.phase = 'waiting for old snapshots'",
            "a concurrent build of an index on scene_manifests",
        )
    )


def index_validity(engine: sa.Engine) -> dict[str, bool]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
            "ON c.oid = i.indexrelid WHERE c.relname LIKE 'ix_scene%%_tags'"
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def write_application_rows(engine: sa.Engine, count: int) -> None:
    """Insert ``count`` manifests and update as many, each in its own transaction."""
    with engine.connect() as connection:
        for n in range(count):
            with connection.begin():
                connection.exec_driver_sql(
                    f"SET LOCAL statement_timeout = '{WRITER_STATEMENT_TIMEOUT}'"
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO scene_manifests (project_id, scene_index, manifest_json, "
                        "asset_tags, new_asset_count) VALUES (md5('p' || :p)::uuid, :i, '{}', "
                        "'[\"CHAR_01\"]', 0)"
                    ),
                    {"p": n % 10, "i": 1_000_000 + n},
                )
                connection.execute(
                    sa.text(
                        "UPDATE scene_manifests SET new_asset_count = new_asset_count + 1 "
                        "WHERE project_id = md5('p' || :p)::uuid AND scene_index = :i"
                    ),
                    {"p": n % 10, "i": n % (ROWS // 1_000)},
                )


def test_writes_go_through_while_the_gin_indexes_build_and_a_second_upgrade_waits(
    filled: sa.Engine, old_snapshot: sa.Connection, database_url: sa.URL, tmp_path: Path
) -> None:
    first = Upgrade(database_url, tmp_path)
    first.start()
    concurrent_build_waiting(filled)

    # The application inserts and updates manifests while the build is under way.
    write_application_rows(filled, 20)
    with filled.connect() as connection:
        written = connection.exec_driver_sql(
            "SELECT count(*) FROM scene_manifests WHERE scene_index >= 1000000"
        ).scalar()
    assert written == 20
    # The build had not finished meanwhile: the writes happened during it.
    concurrent_build_waiting(filled)

    # A second upgrade waits for the migration lock, which the first still holds.
    second = Upgrade(database_url, tmp_path)
    second.start()
    second.logged("Waiting up to")
    assert first.is_alive() and second.is_alive()
    assert current_revision(filled) == "vidpipe_0002"

    old_snapshot.rollback()
    for run in (first, second):
        result = run.finished()
        assert result.returncode == 0, result.stderr
    assert current_revision(filled) == HEAD
    assert index_validity(filled) == dict.fromkeys(GIN_INDEXES, True)
    with filled.connect() as connection:
        assert not connection.exec_driver_sql(
            f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND {IN_THIS_POSTGRESQL_DATABASE}"
        ).scalar()


def test_a_cancelled_concurrent_build_leaves_an_invalid_index_that_the_next_run_rebuilds(
    filled: sa.Engine, old_snapshot: sa.Connection, database_url: sa.URL, tmp_path: Path
) -> None:
    run = Upgrade(database_url, tmp_path)
    run.start()
    builder = concurrent_build_waiting(filled)
    with filled.connect() as connection:
        cancel = sa.text("SELECT pg_cancel_backend(:pid)")
        assert connection.execute(cancel, {"pid": builder}).scalar()
    result = run.finished()
    assert result.returncode != 0
    assert "canceling statement due to user request" in result.stderr
    # Recorded before the build: vidpipe_0002's work stands, vidpipe_0003 is not recorded.
    assert current_revision(filled) == "vidpipe_0002"
    assert index_validity(filled) == {GIN_INDEXES[0]: False}
    old_snapshot.rollback()

    upgrade(database_url)
    assert current_revision(filled) == HEAD
    assert index_validity(filled) == dict.fromkeys(GIN_INDEXES, True)


def test_empty_tables_are_indexed_inside_the_run_transaction(engine: sa.Engine) -> None:
    """No rows, nothing to let through: the plain build, inside the run's one transaction."""
    upgrade(engine, "vidpipe_0002")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        upgrade(engine, "vidpipe_0003")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    builds = [s for s in statements if s.startswith("CREATE INDEX")]
    assert len(builds) == len(GIN_INDEXES)
    assert not [s for s in builds if "CONCURRENTLY" in s]
    assert not [s for s in statements if s.strip().upper() == "COMMIT"]


@pytest.mark.parametrize("pool_route", ["transaction", "direct"])
def test_eight_replicas_that_build_concurrently_come_out_right_through_the_pooler(
    filled: sa.Engine, database_url: sa.URL, tmp_path: Path, pool_route: str
) -> None:
    """From vidpipe_0002 with rows, 8 replicas through a transaction-mode PgBouncer (2 server
    connections): the builder hands the lock over mid-run while the others wait in slices."""
    with route(pool_route, database_url, tmp_path / "pgbouncer") as url:
        assert upgrade_together(url) == [0] * PROCESSES
    assert current_revision(filled) == HEAD
    assert index_validity(filled) == dict.fromkeys(GIN_INDEXES, True)
    assert advisory_locks(database_url) == []


def test_a_run_whose_handover_connection_dies_during_a_build_stops_and_the_next_waits_for_it(
    filled: sa.Engine, old_snapshot: sa.Connection, database_url: sa.URL, tmp_path: Path
) -> None:
    """The connection that keeps the lock during the concurrent build is terminated and a
    second replica starts at that moment: it waits for the build instead of dropping the
    index under it, and the first stops with a clear error once its build is done (the old
    runner let the second DROP INDEX CONCURRENTLY beside the build: tuple concurrently
    updated)."""
    first = Upgrade(database_url, tmp_path)
    first.start()
    concurrent_build_waiting(filled)
    terminate(filled, handover_holder(filled))
    second = Upgrade(database_url, tmp_path)
    second.start()
    second.logged(f"Waiting for the build of index {GIN_INDEXES[0]} by another server process")
    assert first.is_alive()

    old_snapshot.rollback()
    lost = first.finished()
    assert lost.returncode != 0
    assert LOCK_LOST in lost.stderr, lost.stderr
    assert "Traceback" not in lost.stderr
    finished = second.finished()
    assert finished.returncode == 0, finished.stderr
    assert "DROP INDEX" not in "".join(second.log)
    assert current_revision(filled) == HEAD
    assert index_validity(filled) == dict.fromkeys(GIN_INDEXES, True)
    assert advisory_locks(database_url) == []


def test_two_replicas_keep_the_lock_through_the_servers_idle_in_transaction_timeout(
    filled: sa.Engine, database_url: sa.URL, tmp_path: Path
) -> None:
    """The test database's sessions end after 1 s idle in a transaction; the handover
    connection idles in its transaction while the concurrent build waits for an old snapshot,
    and must outlive the timeout while the other replica waits (the old runner's was closed
    after 1 s and the other replica started migrating)."""
    with filled.connect() as connection:
        connection.exec_driver_sql(
            f"ALTER DATABASE \"{database_url.database}\" SET idle_in_transaction_session_timeout = '1s'"
        )
        connection.commit()
    reports = create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with reports.connect() as old_snapshot:
            # A slow report of the test's own, exempt from the timeout it sets for the database.
            old_snapshot.exec_driver_sql("SET idle_in_transaction_session_timeout = 0")
            old_snapshot.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            old_snapshot.exec_driver_sql("SELECT count(*) FROM projects").scalar()
            replicas = [Upgrade(database_url, tmp_path) for _ in range(2)]
            for replica in replicas:
                replica.start()
            concurrent_build_waiting(filled)
            holder = handover_holder(filled)
            wait_for(
                filled,
                f"SELECT pid FROM pg_stat_activity WHERE pid = {holder} "
                "AND state = 'idle in transaction' AND now() - state_change > interval '2 s'",
                "the handover connection idling in its transaction for twice the timeout",
            )
            assert any(any("Waiting up to" in line for line in r.log) for r in replicas)
            assert current_revision(filled) == "vidpipe_0002"
            old_snapshot.rollback()
    finally:
        reports.dispose()
    for replica in replicas:
        result = replica.finished()
        assert result.returncode == 0, result.stderr
    assert current_revision(filled) == HEAD
    assert index_validity(filled) == dict.fromkeys(GIN_INDEXES, True)
    assert advisory_locks(database_url) == []


def test_a_run_in_a_callers_transaction_waits_without_holding_up_a_run_that_commits_mid_way(
    filled: sa.Engine,
    old_snapshot: sa.Connection,
    database_url: sa.URL,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A caller's transaction cannot be left while it waits: it must let go of the main lock
    between its slices (a savepoint), because the run building concurrently takes that lock
    again after its build; holding it, the waiter would stop that run until its own timeout.
    (Passes on the runner before, whose run never took the main lock again; fails if the
    waiter keeps it.)"""
    caplog.set_level(logging.INFO, logger="vidpipe")
    first = Upgrade(database_url, tmp_path)
    first.start()
    concurrent_build_waiting(filled)
    outcome: list[str | None] = []

    def upgrade_in_callers_transaction() -> None:
        with filled.connect() as connection, connection.begin():
            upgrade(connection, lock_timeout=PATIENCE / 2)
            outcome.append(current_revision(connection))

    waiter = threading.Thread(target=upgrade_in_callers_transaction, daemon=True)
    waiter.start()
    deadline = time.monotonic() + PATIENCE
    while not any(r.getMessage().startswith("Waiting up to") for r in caplog.records):
        assert waiter.is_alive() and time.monotonic() < deadline, "the caller never waited"
        time.sleep(0.05)

    old_snapshot.rollback()
    result = first.finished()
    assert result.returncode == 0, result.stderr
    waiter.join(PATIENCE)
    assert outcome == [HEAD]
    assert index_validity(filled) == dict.fromkeys(GIN_INDEXES, True)
