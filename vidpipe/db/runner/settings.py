"""Every setting of a migration run, in one typed object, with one precedence rule.

A setting comes from, first match wins:

1. ``config.attributes[name]``: set by code (``vidpipe.db.migrate``, pytest-alembic, a host's
   own ``Config``), which says exactly what it wants for this run;
2. ``-x name=value`` on the ``alembic`` command line;
3. for the URL only: ``$VIDPIPE_DATABASE_URL``, then ``sqlalchemy.url`` in alembic.ini;
4. the field's default.

Code and the command line rarely meet (``vidpipe-db`` and the API build their own ``Config``
without ``-x``); when they do, the more deliberate one, code, wins. A value that cannot work is
refused with :class:`MigrationSettingError` before anything connects.
"""

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from alembic.config import Config
from sqlalchemy.engine import URL

from vidpipe.db.engine import DEFAULT_URL, URL_ENV_VAR, resolve_url
from vidpipe.db.errors import MigrationSettingError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "RunSettings", "lock_timeout_seconds"]

#: How long a run waits for another process's migration before giving up. Generous: a replica
#: that waits for a long data migration elsewhere costs nothing, one that gives up fails to start.
DEFAULT_LOCK_TIMEOUT = 300.0

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_DURATION = re.compile(r"\d+(ms|s|min|h)?")


@dataclass(frozen=True)
class RunSettings:
    """What one migration run may do and where it runs."""

    #: The database, as given (``None``: ``$VIDPIPE_DATABASE_URL``, else the default); unused
    #: when a connection is handed in through ``config.attributes["connection"]``.
    url: str | URL | None = None
    #: Where :attr:`url` came from, for error messages (which never echo the URL itself).
    url_source: str = "the default"
    #: Seconds to wait for another process's migration (vidpipe.db.runner.locking).
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    #: PostgreSQL ``lock_timeout`` inside the migration transaction: how long a DDL statement
    #: waits behind an application's lock before the migration fails (not the migration lock).
    ddl_lock_timeout: str = "5s"
    #: PostgreSQL ``statement_timeout`` inside the migration transaction.
    statement_timeout: str = "15min"
    #: Let a downgrade drop tables and columns that hold data (vidpipe.db.runner.data_loss).
    allow_data_loss: bool = False
    #: Let env.py configure logging from alembic.ini (off for hosts that configure their own).
    configure_logger: bool = True

    @classmethod
    def from_config(cls, config: Config, x_arguments: dict[str, str]) -> "RunSettings":
        """The settings of a run: ``config.attributes``, else ``-x``, else the defaults."""

        def given(name: str) -> tuple[Any, str] | None:
            if config.attributes.get(name) is not None:
                return config.attributes[name], f"config.attributes[{name!r}]"
            if x_arguments.get(name):
                return x_arguments[name], f"-x {name}"
            return None

        def value(name: str) -> Any:
            found = given(name)
            return getattr(cls, name) if found is None else found[0]

        environment = os.environ.get(URL_ENV_VAR)
        ini = config.get_main_option("sqlalchemy.url")
        url = (
            given("url")
            or (environment and (environment, f"${URL_ENV_VAR}"))
            or (ini and (ini, "sqlalchemy.url"))
            or (DEFAULT_URL, "the default")
        )
        return cls(
            url=url[0],
            url_source=url[1],
            lock_timeout=lock_timeout_seconds(value("lock_timeout")),
            ddl_lock_timeout=_duration("ddl_lock_timeout", value("ddl_lock_timeout")),
            statement_timeout=_duration("statement_timeout", value("statement_timeout")),
            allow_data_loss=_flag("allow_data_loss", value("allow_data_loss")),
            configure_logger=_flag("configure_logger", value("configure_logger")),
        )

    def database_url(self) -> URL:
        """:attr:`url` parsed; a malformed one is refused without being echoed."""
        return resolve_url(self.url, source=self.url_source)


def lock_timeout_seconds(value: Any) -> float:
    """``value`` as a finite, positive number of seconds, else :class:`MigrationSettingError`."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise MigrationSettingError(
            f"lock_timeout must be a positive, finite number of seconds, got {value!r}"
        )
    return seconds


def _duration(name: str, value: Any) -> str:
    text = str(value)
    if not _DURATION.fullmatch(text):
        raise MigrationSettingError(
            f"{name}={value!r} is not a duration like 5s, 500ms, 15min or 0 (no limit)"
        )
    return text


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise MigrationSettingError(f"{name} must be true or false, got {value!r}")
