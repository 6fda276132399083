"""PostgreSQL's view of vidpipe's migration lock in the test database: the advisory locks
held, the server process holding a run's handover key, and ending that process."""

import sqlalchemy as sa

from tests.support.background_upgrade import wait_for
from tests.support.databases import IN_THIS_POSTGRESQL_DATABASE
from vidpipe.db import create_engine
from vidpipe.db.dialects.postgresql import HANDOVER_KEY


def advisory_locks(database_url: sa.URL) -> list[tuple]:
    """Advisory locks held or awaited in the test database, asked of the server directly."""
    engine = create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(
                connection.exec_driver_sql(
                    "SELECT pid, mode, granted FROM pg_locks WHERE locktype = 'advisory' "
                    f"AND {IN_THIS_POSTGRESQL_DATABASE}"
                )
            )
    finally:
        engine.dispose()


def handover_holder(engine: sa.Engine) -> int:
    """The server process that holds a run's handover key (the run has committed mid-way)."""
    return int(
        wait_for(  # type: ignore[arg-type]
            engine,
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            f"AND classid = {HANDOVER_KEY >> 32} AND objid = {HANDOVER_KEY & 0xFFFFFFFF} "
            f"AND {IN_THIS_POSTGRESQL_DATABASE}",
            "a run holding the handover key",
        )
    )


def terminate(engine: sa.Engine, pid: int) -> None:
    """End server process ``pid``, as a pooler or network fault would."""
    with engine.connect() as connection:
        ended = connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert ended.scalar()


#: What a run that lost its lock says (vidpipe.db.MigrationLockLost, logged by alembic's CLI).
LOCK_LOST = "ERROR [alembic.util.messaging] vidpipe lost its migration lock on PostgreSQL mid-run"
