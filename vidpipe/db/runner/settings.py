"""Every setting of a migration run, in one typed object, with one precedence rule.

A setting comes from, first match wins:

1. ``config.attributes[name]``: set by code (the keyword arguments of ``vidpipe.db.migrate``'s
   functions, the flags of ``vidpipe-db``, pytest-alembic, a host's own ``Config``), which says
   exactly what it wants for this run;
2. ``-x name=value`` on the ``alembic`` command line;
3. for the URL only: ``$VIDPIPE_DATABASE_URL``, then ``sqlalchemy.url`` in alembic.ini;
4. the field's default.

Code and the command line rarely meet (``vidpipe-db`` and the API build their own ``Config``
without ``-x``); when they do, the more deliberate one, code, wins. A value that cannot work is
refused with :class:`MigrationSettingError` before anything connects.

Each setting is declared once, as a field of :class:`RunSettings` with its parser and its
documentation; the API's keyword arguments and ``vidpipe-db``'s flags are derived from those
fields (:func:`run_options`), so a new setting is one new field.
"""

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL

from vidpipe.db.engine import DEFAULT_URL, URL_ENV_VAR, resolve_url
from vidpipe.db.errors import MigrationSettingError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MAX_RETRY_DELAY", "RunOption", "RunSettings", "parsed_options", "run_options"]

#: The longest back-off between two tries of a run that waited for a lock (vidpipe.db.runner.
#: lock_retry): a deploy should give up within minutes, not wait ever longer.
MAX_RETRY_DELAY = 60.0

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
#: A PostgreSQL duration as vidpipe accepts it: digits and an optional unit (none means ms).
#: Nothing else, because the value is written into ``SET LOCAL`` as it is.
_DURATION = re.compile(r"(\d+)(ms|s|min|h)?")
_MILLISECONDS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}

#: A parser turns a setting's raw value (typed by code, or text from ``-x`` and flags) into the
#: field's type, or raises MigrationSettingError naming the setting.
Parser = Callable[[str, Any], Any]


@dataclass(frozen=True)
class RunOption:
    """One setting as code and the command line see it: its name, parser and documentation."""

    name: str
    default: Any
    parse: Parser
    #: What the setting does, for docstrings, errors and ``vidpipe-db --help``.
    doc: str
    #: The kind of value, for ``--help`` (SECONDS, DURATION, N); None for a yes/no flag.
    metavar: str | None

    @property
    def flag(self) -> str:
        """The ``vidpipe-db`` flag: ``ddl_lock_timeout`` becomes ``--ddl-lock-timeout``."""
        return "--" + self.name.replace("_", "-")


def _positive_seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not (seconds > 0 and math.isfinite(seconds)):
        raise MigrationSettingError(
            f"{name} must be a positive, finite number of seconds, got {value!r}"
        )
    return seconds


def _back_off_seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 <= seconds <= MAX_RETRY_DELAY:
        raise MigrationSettingError(
            f"{name} must be a number of seconds from 0 to {MAX_RETRY_DELAY:g}, got {value!r}"
        )
    return seconds


def _duration(name: str, value: Any) -> str:
    text = str(value)
    if isinstance(value, bool) or not _DURATION.fullmatch(text):
        raise MigrationSettingError(
            f"{name}={value!r} is not a duration like 5s, 500ms, 15min or 0 (no limit)"
        )
    return text


def _count(name: str, value: Any) -> int:
    text = str(value).strip()
    number = int(text) if text.isdigit() and not isinstance(value, bool) else -1
    if number < 0:
        raise MigrationSettingError(f"{name} must be a whole number >= 0, got {value!r}")
    return number


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise MigrationSettingError(f"{name} must be true or false, got {value!r}")


def _setting(
    default: Any, parse: Parser, doc: str, metavar: str | None, option: bool = True
) -> Any:
    """A field of :class:`RunSettings` that is a run setting (``option``: offered by the API
    and ``vidpipe-db``)."""
    return field(
        default=default,
        metadata={"parse": parse, "doc": doc, "metavar": metavar, "option": option},
    )


@dataclass(frozen=True)
class RunSettings:
    """What one migration run may do and where it runs."""

    #: The database, as given (``None``: ``$VIDPIPE_DATABASE_URL``, else the default); unused
    #: when a connection is handed in through ``config.attributes["connection"]``. The API and
    #: ``vidpipe-db`` name the database by their own argument, so it is no keyword or flag.
    url: str | URL | None = None
    #: Where :attr:`url` came from, for error messages (which never echo the URL itself).
    url_source: str = "the default"
    # Generous: a replica that waits for a long data migration elsewhere costs nothing, one
    # that gives up fails to start.
    lock_timeout: float = _setting(
        300.0,
        _positive_seconds,
        "seconds to wait for another process's migration (the migration lock)",
        "SECONDS",
    )
    ddl_lock_timeout: str = _setting(
        "5s",
        _duration,
        "how long one migration statement waits behind an application's lock before the run "
        "is retried (PostgreSQL lock_timeout; MariaDB lock_wait_timeout, in whole seconds); "
        "0: no limit",
        "DURATION",
    )
    statement_timeout: str = _setting(
        "15min",
        _duration,
        "how long one migration statement may run (PostgreSQL statement_timeout); 0: no limit",
        "DURATION",
    )
    # Five retries with the default back-off wait about a minute (plus six ddl_lock_timeouts)
    # for an application transaction to end: longer than a typical request, short enough for a
    # deploy.
    ddl_retries: int = _setting(
        5,
        _count,
        "further tries of a run whose statement waited too long for a lock (0: fail at once)",
        "N",
    )
    ddl_retry_delay: float = _setting(
        1.0,
        _back_off_seconds,
        f"seconds before the first retry, doubled for each further one (at most "
        f"{MAX_RETRY_DELAY:g})",
        "SECONDS",
    )
    allow_data_loss: bool = _setting(
        False,
        _flag,
        "let a downgrade drop tables and columns that hold rows (refused otherwise, naming them)",
        None,
    )
    # Only env.py reads alembic.ini's logging sections; the API and vidpipe-db never read an
    # alembic.ini, so this one is neither a keyword nor a flag.
    configure_logger: bool = _setting(
        True,
        _flag,
        "let env.py configure logging from alembic.ini (off for hosts that configure their own)",
        None,
        option=False,
    )

    @classmethod
    def from_config(cls, config: "Config", x_arguments: Mapping[str, str]) -> "RunSettings":
        """The settings of a run: ``config.attributes``, else ``-x``, else the defaults."""

        def given(name: str) -> tuple[Any, str] | None:
            if config.attributes.get(name) is not None:
                return config.attributes[name], f"config.attributes[{name!r}]"
            if x_arguments.get(name):
                return x_arguments[name], f"-x {name}"
            return None

        environment = os.environ.get(URL_ENV_VAR)
        ini = config.get_main_option("sqlalchemy.url")
        url = (
            given("url")
            or (environment and (environment, f"${URL_ENV_VAR}"))
            or (ini and (ini, "sqlalchemy.url"))
            or (DEFAULT_URL, "the default")
        )
        values: dict[str, Any] = {}
        for setting in _settings():
            found = given(setting.name)
            if found is not None:
                values[setting.name] = setting.metadata["parse"](setting.name, found[0])
        return cls(url=url[0], url_source=url[1], **values)

    def database_url(self) -> URL:
        """:attr:`url` parsed; a malformed one is refused without being echoed."""
        return resolve_url(self.url, source=self.url_source)

    @property
    def mysql_lock_wait(self) -> int | None:
        """MariaDB/MySQL ``lock_wait_timeout`` for the run, in whole seconds (the server knows
        no finer): :attr:`ddl_lock_timeout` rounded up. None keeps the server's
        (``ddl_lock_timeout=0``, no limit on PostgreSQL, would mean "never wait" there)."""
        found = _DURATION.fullmatch(self.ddl_lock_timeout)
        assert found is not None  # checked by the parser
        milliseconds = int(found.group(1)) * _MILLISECONDS[found.group(2) or "ms"]
        return math.ceil(milliseconds / 1000) if milliseconds else None


def _settings() -> tuple[Field[Any], ...]:
    return tuple(f for f in fields(RunSettings) if "parse" in f.metadata)


def run_options() -> tuple[RunOption, ...]:
    """The run settings that the API takes as keyword arguments and ``vidpipe-db`` as flags."""
    return tuple(
        RunOption(
            name=f.name,
            default=f.default,
            parse=f.metadata["parse"],
            doc=f.metadata["doc"],
            metavar=f.metadata["metavar"],
        )
        for f in _settings()
        if f.metadata["option"]
    )


def parsed_options(keywords: Mapping[str, object]) -> dict[str, Any]:
    """``keywords`` (run settings by name) parsed, ready for ``config.attributes``; an unknown
    name is refused, naming the known ones, so a typo never silently leaves a default.

    Parsing here, before anything connects, refuses a bad value of code as early as one of
    the command line.
    """
    options = {option.name: option for option in run_options()}
    unknown = sorted(set(keywords) - set(options))
    if unknown:
        raise MigrationSettingError(
            f"Unknown run setting(s) {', '.join(map(repr, unknown))}; the run settings are "
            f"{', '.join(options)}"
        )
    return {name: options[name].parse(name, value) for name, value in keywords.items()}
