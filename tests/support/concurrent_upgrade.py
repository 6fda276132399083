"""What the processes of the concurrency tests run, each with an engine of its own."""

import logging
import multiprocessing
from logging.handlers import QueueHandler
from multiprocessing.queues import Queue
from threading import Barrier

import sqlalchemy as sa

from tests.support.ddl_statements import ddl_statements
from vidpipe.db import create_engine, upgrade
from vidpipe.db.runner.locking import migration_lock

#: How many replicas the concurrency tests start at once.
PROCESSES = 8


def upgrade_after_barrier(url: str, barrier: Barrier) -> None:
    """Start the upgrade at the same moment as every other process (an exception exits 1)."""
    barrier.wait(timeout=120)
    upgrade(url)


def upgrade_together(url: sa.URL) -> list[int | None]:
    """Upgrade from PROCESSES processes released at once; return their exit codes.

    fork: the children start in milliseconds, so they really meet at the barrier together.
    Safe because callers hold no open connection (NullPool) when they fork.
    """
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(PROCESSES)
    rendered = url.render_as_string(hide_password=False)
    processes = [
        fork.Process(target=upgrade_after_barrier, args=(rendered, barrier), daemon=True)
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


def upgrade_and_report_ddl(url: str, report: Queue, isolation_level: str | None = None) -> None:
    """Say "started", upgrade, then report the DDL statements this upgrade sent."""
    options = {"isolation_level": isolation_level} if isolation_level else {}
    engine = create_engine(url, poolclass=sa.pool.NullPool, **options)
    report.put("started")
    with ddl_statements(engine) as statements:
        upgrade(engine)
    report.put(statements)
    engine.dispose()


def take_lock_logging_to(url: str, records: Queue, report_every: float) -> None:
    """Take the migration lock and let it go; vidpipe's INFO log records go to ``records``,
    then "released"."""
    logger = logging.getLogger("vidpipe")
    logger.setLevel(logging.INFO)
    logger.addHandler(QueueHandler(records))
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection, migration_lock(connection, 60, report_every=report_every):
        pass
    engine.dispose()
    records.put("released")
