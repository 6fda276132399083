"""What the processes of the concurrency tests run, each with an engine of its own."""

from multiprocessing.queues import Queue
from threading import Barrier

import sqlalchemy as sa

from tests.test_idempotency import ddl_statements
from vidpipe.db import create_engine, upgrade


def upgrade_after_barrier(url: str, barrier: Barrier) -> None:
    """Start the upgrade at the same moment as every other process (an exception exits 1)."""
    barrier.wait(timeout=120)
    upgrade(url)


def upgrade_and_report_ddl(url: str, report: Queue, isolation_level: str | None = None) -> None:
    """Say "started", upgrade, then report the DDL statements this upgrade sent."""
    options = {"isolation_level": isolation_level} if isolation_level else {}
    engine = create_engine(url, poolclass=sa.pool.NullPool, **options)
    report.put("started")
    with ddl_statements(engine) as statements:
        upgrade(engine)
    report.put(statements)
    engine.dispose()
