"""What the processes of the concurrency tests run, each with an engine of its own."""

import logging
from logging.handlers import QueueHandler
from multiprocessing.queues import Queue
from threading import Barrier

import sqlalchemy as sa

from tests.test_idempotency import ddl_statements
from vidpipe.db import create_engine, upgrade
from vidpipe.db.locking import migration_lock


def upgrade_after_barrier(url: str, barrier: Barrier) -> None:
    """Start the upgrade at the same moment as every other process (an exception exits 1)."""
    barrier.wait(timeout=120)
    upgrade(url)


def upgrade_and_report_ddl(url: str, report: Queue) -> None:
    """Say "started", upgrade, then report the DDL statements this upgrade sent."""
    engine = create_engine(url, poolclass=sa.pool.NullPool)
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
