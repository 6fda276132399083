"""Concurrent saves, forced into one interleaving: a second save starts while a first one is
uncommitted, and the first commits only once the second has reached its decision (or waits)."""

import threading
import time
import uuid
from multiprocessing.queues import Queue
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.support.storyboards import base_storyboard, enhanced_storyboard
from vidpipe.db import create_engine
from vidpipe.db.store import Storyboard, save_storyboard

#: How a session says it waits for a lock another session holds.
_WAITING = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE pid = :id AND wait_event_type = 'Lock'",
    "mariadb": "SELECT count(*) FROM information_schema.innodb_trx "
    "WHERE trx_mysql_thread_id = :id AND trx_state = 'LOCK WAIT'",
}
_SESSION_ID = {"postgresql": "SELECT pg_backend_pid()", "mariadb": "SELECT CONNECTION_ID()"}


class FirstProjectStatement:
    """Watches an engine for the first statement of a save that touches ``projects``.

    Before the locking fix that statement was a plain look-up, decided on before anything was
    locked; with it, it is the lock. ``reached`` is set once the look-up has run, or as the
    lock (a ``FOR UPDATE`` or, on SQLite, the ``UPDATE``) is sent, since it may wait.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.reached = threading.Event()
        self.session_id: int | None = None
        self.writes = False
        dialect = engine.dialect.name
        if dialect in _SESSION_ID:
            event.listen(engine, "connect", self._remember_session_id)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _remember_session_id(self, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        dialect = "postgresql" if "psycopg" in type(dbapi_connection).__module__ else "mariadb"
        cursor.execute(_SESSION_ID[dialect])
        self.session_id = cursor.fetchone()[0]
        cursor.close()

    def _touches_projects(self, statement: str) -> bool:
        return "projects" in statement and not self.reached.is_set()

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._touches_projects(statement) and (
            "FOR UPDATE" in statement or statement.lstrip().upper().startswith("UPDATE")
        ):
            self.writes = True
            self.reached.set()

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._touches_projects(statement):
            self.reached.set()


def wait_for_decision(observer: FirstProjectStatement, url: sa.URL, done: threading.Event) -> None:
    """Return once the observed save has looked, or is waiting for the lock, or is done.

    SQLite's busy wait cannot be seen from outside: there the lock request has been sent, and
    whether it waits or arrives after the commit, it sees the committed save.
    """
    assert observer.reached.wait(timeout=60), "the second save never reached the projects table"
    dialect = url.get_backend_name()
    if dialect == "sqlite" or not observer.writes:
        return
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with probe.connect() as connection:
            query = sa.text(_WAITING[dialect])
            while not done.is_set():
                if connection.execute(query, {"id": observer.session_id}).scalar():
                    return
                connection.rollback()
                time.sleep(0.01)
    finally:
        probe.dispose()


def storyboard(kind: str, variant: int) -> Storyboard:
    """Distinct storyboards: each variant has its own scene indexes, so a mix shows."""
    indexes = (0, 1) if variant == 1 else (0, 2, 3)
    return (base_storyboard if kind == "base" else enhanced_storyboard)(*indexes)


def save_after_barrier(url: str, project_id: str, barrier: Any, reached: Queue) -> None:
    """A worker of its own (process): wait for the others, then save one storyboard and commit.

    Reports on ``reached`` once its save has looked or asked for the lock (see
    :class:`FirstProjectStatement`); an exception exits 1.
    """
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    observer = FirstProjectStatement(engine)
    threading.Thread(
        target=lambda: observer.reached.wait() and reached.put(project_id), daemon=True
    ).start()
    barrier.wait(timeout=60)
    with Session(engine) as session:
        save_storyboard(session, uuid.UUID(project_id), enhanced_storyboard(0, 1, 2))
        session.commit()
    engine.dispose()
