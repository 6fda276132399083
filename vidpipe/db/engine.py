"""Engines for the vidpipe database, with the connect-time settings every dialect needs.

Nothing here runs at import: engines are made when a caller asks for one.
"""

import difflib
import os
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import registry
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from vidpipe.db.dialects import dialect_for
from vidpipe.db.errors import DatabaseURLError

__all__ = [
    "DEFAULT_URL",
    "URL_ENV_VAR",
    "configure_sqlite",
    "create_async_engine",
    "create_engine",
    "displayed_url",
    "is_async_url",
    "resolve_url",
]

if TYPE_CHECKING:
    # Imported lazily below: sqlalchemy.ext.asyncio needs greenlet, which sync users may lack.
    from sqlalchemy.ext.asyncio import AsyncEngine

#: The environment variable that names the database when no URL is passed explicitly.
URL_ENV_VAR = "VIDPIPE_DATABASE_URL"
#: The embedded default: a SQLite file in the working directory.
DEFAULT_URL = "sqlite:///vidpipe.db"
#: The drivers vidpipe is tested with, sync then async, per database: what an error suggests.
TESTED_DRIVERS = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgresql": ("postgresql+psycopg", "postgresql+asyncpg"),
    "mariadb": ("mariadb+pymysql", "mariadb+aiomysql"),
    "mysql": ("mysql+pymysql", "mysql+aiomysql"),
}


def resolve_url(url: str | URL | None = None, *, source: str = "argument") -> URL:
    """Return the URL to use: ``url`` if given, else ``$VIDPIPE_DATABASE_URL``, else the default.

    ``source`` names where an explicit ``url`` came from, so that a parse error can say
    which setting to fix.
    """
    if url is None:
        if os.environ.get(URL_ENV_VAR):
            url, source = os.environ[URL_ENV_VAR], f"${URL_ENV_VAR}"
        else:
            url, source = DEFAULT_URL, "the default"
    if not isinstance(url, URL):
        try:
            url = sa.make_url(url)
        except (ArgumentError, ValueError):
            # The text may hold a password, so it is not echoed back.
            raise DatabaseURLError(
                f"The database URL from {source} is not a valid SQLAlchemy URL; expected the "
                "form dialect+driver://user:password@host:port/database, e.g. "
                "sqlite:///vidpipe.db"
            ) from None
    if url.host and "@" in url.host:
        # An unencoded "@" in the password: the parser split at the first "@" and the rest of
        # the password became part of the host, which every driver error would then show.
        raise DatabaseURLError(
            f"The database URL from {source} has more than one '@' before its host: a password "
            "or user name that contains '@' must write it percent-encoded, as %40 "
            "(urllib.parse.quote_plus does it)."
        )
    return url


def displayed_url(url: URL) -> str:
    """``url`` as it may be shown: no password and no query string.

    Drivers also take a password in the query string (``?password=``, ``?passwd=``,
    ``?sslpassword=``...) and the names vary by driver, so all of the query is left out.
    """
    return url.set(query={}).render_as_string(hide_password=True)


def is_async_url(url: URL) -> bool:
    """Whether the URL names an asyncio driver (aiosqlite, asyncpg, aiomysql, asyncmy)."""
    try:
        return bool(url.get_dialect().is_async)
    except NoSuchModuleError as exc:
        raise _unusable_driver(url, exc) from None


def create_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """Create a synchronous engine with vidpipe's connect-time settings.

    On SQLite: foreign keys, WAL, a 30 s busy timeout and a real ``BEGIN`` (see
    ``configure_sqlite``); without them migrations there are neither atomic nor locked.

    Args:
        url: The database URL; None: ``$VIDPIPE_DATABASE_URL``, else ``sqlite:///vidpipe.db``.
        **kwargs: Passed to ``sqlalchemy.create_engine`` (``poolclass``, ``connect_args``...).

    Raises:
        DatabaseURLError: The URL is malformed, or names a database or driver that is unknown
            or not installed.
    """
    resolved = resolve_url(url)
    try:
        engine = sa.create_engine(resolved, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise _unusable_driver(resolved, exc) from None
    configure_sqlite(engine)
    return engine


def create_async_engine(url: str | URL | None = None, **kwargs: Any) -> "AsyncEngine":
    """Create an asyncio engine with vidpipe's connect-time settings.

    Args:
        url: An async URL (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``,
            ``mariadb+aiomysql://``); None: ``$VIDPIPE_DATABASE_URL``, else the default.
        **kwargs: Passed to ``sqlalchemy.ext.asyncio.create_async_engine``.

    Raises:
        DatabaseURLError: As for ``create_engine``, and for a URL of a sync driver.
    """
    from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine

    resolved = resolve_url(url)
    if not is_async_url(resolved):
        backend = resolved.get_backend_name()
        asynchronous = TESTED_DRIVERS.get(backend, ("", f"{backend}+<async driver>"))[1]
        raise DatabaseURLError(
            f"{resolved.drivername}:// is not an async URL: the asyncio API needs an asyncio "
            f"driver, e.g. {asynchronous}://. Change the URL's scheme, or call the sync "
            "function (upgrade() instead of upgrade_async())."
        )
    try:
        engine = sa_create_async_engine(resolved, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise _unusable_driver(resolved, exc) from None
    configure_sqlite(engine.sync_engine)
    return engine


def configure_sqlite(engine: Engine) -> None:
    """Give every connection of ``engine`` vidpipe's connect-time settings; safe to call twice.

    On SQLite: foreign keys, WAL, a busy timeout and a real BEGIN, without which DDL is not
    transactional (vidpipe.db.dialects.sqlite says why); other dialects need none.
    """
    dialect_for(engine.dialect).configure_engine(engine)


def _unusable_driver(url: URL, exc: Exception) -> DatabaseURLError:
    """What is wrong with the URL's ``dialect+driver``: an unknown database name (``postgres``),
    an unknown driver, or a known driver that is not installed."""
    backend = url.get_backend_name()
    try:
        registry.load(backend)
    except NoSuchModuleError:
        nearest = difflib.get_close_matches(backend, TESTED_DRIVERS, n=1, cutoff=0.5)
        suggestion = f"did you mean {nearest[0]}://? " if nearest else ""
        return DatabaseURLError(
            f"SQLAlchemy knows no database named {backend!r} (the URL's scheme): "
            f"{suggestion}vidpipe runs on {', '.join(_tested(name) for name in TESTED_DRIVERS)}."
        )
    if isinstance(exc, NoSuchModuleError):
        return DatabaseURLError(
            f"SQLAlchemy has no driver {url.get_driver_name()!r} for {backend}; vidpipe is "
            f"tested with {_tested(backend)}."
        )
    return DatabaseURLError(
        f"No driver for {url.drivername!r} is installed ({exc}). Install the matching extra: "
        "pip install 'vidpipe-data[postgresql]', '[mysql]' or '[asyncio]'"
    )


def _tested(backend: str) -> str:
    return " and ".join(f"{name}://" for name in TESTED_DRIVERS.get(backend, ()))
