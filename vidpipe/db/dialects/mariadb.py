"""MariaDB (and MySQL): what vidpipe does differently there, and why.

- No connect-time settings: PyMySQL, aiomysql and asyncmy need none for vidpipe.
"""

from vidpipe.db.dialects.base import Dialect

__all__ = ["MariaDB", "MySQL"]


class MariaDB(Dialect):
    """MariaDB through PyMySQL, aiomysql or asyncmy (tested on 10.11)."""

    __dialect__ = "mariadb"


class MySQL(MariaDB):
    """MySQL: what vidpipe does on MariaDB, untested on MySQL itself. SQLAlchemy names the
    dialect after the URL, so a ``mysql+pymysql://`` URL to a MariaDB server lands here too."""

    __dialect__ = "mysql"
