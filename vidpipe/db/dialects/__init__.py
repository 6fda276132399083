"""One home per dialect: what vidpipe does differently on SQLite, PostgreSQL and MariaDB/MySQL.

:func:`dialect_for` returns the object that answers for a connection's database; the modules
of this package say, each for its database, what differs and why (vidpipe.db.dialects.base
explains the shape).
"""

from functools import cache

import sqlalchemy as sa

from vidpipe.db.dialects.base import ANOTHER_SAVE_WON, Dialect, registered
from vidpipe.db.dialects.mariadb import MariaDB, MySQL
from vidpipe.db.dialects.postgresql import PostgreSQL
from vidpipe.db.dialects.sqlite import SQLite

__all__ = ["ANOTHER_SAVE_WON", "Dialect", "MariaDB", "MySQL", "PostgreSQL", "SQLite", "dialect_for"]


def dialect_for(dialect: sa.Dialect | str) -> Dialect:
    """vidpipe's behaviour on ``dialect`` (a SQLAlchemy dialect, or its name): the registered
    class for it, else the base class's answers."""
    return _instance(dialect if isinstance(dialect, str) else dialect.name)


@cache
def _instance(name: str) -> Dialect:
    return (registered(name) or Dialect)(name)
