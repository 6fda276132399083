"""``vidpipe-db``: vidpipe's migrations for people who have the package but not the repository.

A thin shell over :mod:`vidpipe.db.migrate` (the same code the API and ``alembic`` run); it
exists so that an installed wheel can be upgraded, inspected and repaired (``stamp --purge``)
without an alembic.ini. Errors are one line on stderr and exit status 1; the URL is shown
without its password or query string (vidpipe.db.engine.displayed_url).
"""

import argparse
import os
import sys
from collections.abc import Sequence

from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from vidpipe.db import migrate
from vidpipe.db.engine import DEFAULT_URL, URL_ENV_VAR, displayed_url, resolve_url
from vidpipe.db.runner.settings import DEFAULT_LOCK_TIMEOUT

__all__ = ["main"]

DESCRIPTION = f"""\
Migrate vidpipe's database with the revisions shipped inside the package.

The database URL comes from --url, else ${URL_ENV_VAR}, else {DEFAULT_URL}
(a SQLite file in the working directory). Async URLs (sqlite+aiosqlite://, postgresql+asyncpg://,
mariadb+aiomysql://) work too.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status (0 done, 1 failed or drift found)."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except (CommandError, SQLAlchemyError, RuntimeError) as exc:
        # One line, no traceback: the message says what was found and what to do.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"vidpipe-db: error: {first_line}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `vidpipe-db sql | head`: the reader left; say nothing more (Python's documented idiom).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _run(args: argparse.Namespace) -> None:
    if args.command == "history":
        migrate.history(verbose=args.verbose)
        return
    if args.command == "heads":
        migrate.heads(verbose=args.verbose)
        return
    url = resolve_url(args.url, source="--url") if args.url else resolve_url()
    if args.command == "upgrade":
        migrate.upgrade(
            url, args.revision, lock_timeout=args.lock_timeout, expand_only=args.expand_only
        )
        print(f"{displayed_url(url)}: at {migrate.current_revision(url)}")
    elif args.command == "downgrade":
        migrate.downgrade(
            url, args.revision, allow_data_loss=args.allow_data_loss, lock_timeout=args.lock_timeout
        )
        at = migrate.current_revision(url) or "base (no vidpipe tables)"
        print(f"{displayed_url(url)}: at {at}")
    elif args.command == "stamp":
        migrate.stamp(url, args.revision, purge=args.purge, lock_timeout=args.lock_timeout)
        print(f"{displayed_url(url)}: stamped {migrate.current_revision(url) or 'base'}")
    elif args.command == "current":
        print(migrate.current_revision(url) or "none: vidpipe's revisions were never applied")
    elif args.command == "check":
        migrate.check(url)  # Alembic prints its own verdict
    else:
        migrate.upgrade_sql(url, args.revision)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidpipe-db",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help=f"database URL (default: ${URL_ENV_VAR}, else {DEFAULT_URL})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    upgrade = commands.add_parser("upgrade", help="upgrade to a revision (default: head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.add_argument(
        "--expand-only",
        action="store_true",
        help="stop before the first contract revision (a rolling deploy's first step: run the "
        "rest once every replica runs the new release)",
    )
    downgrade = commands.add_parser(
        "downgrade", help="downgrade to a revision: an id, -1, or base (drops vidpipe's tables)"
    )
    downgrade.add_argument("revision")
    downgrade.add_argument(
        "--allow-data-loss",
        action="store_true",
        help="drop tables and columns even if they hold rows (refused otherwise, naming them)",
    )
    stamp = commands.add_parser(
        "stamp",
        help="record a revision in the version table without running any revision; with "
        "--purge, empty the table first (the repair for contradictory version rows)",
    )
    stamp.add_argument("revision")
    stamp.add_argument(
        "--purge", action="store_true", help="delete every version row before recording"
    )
    for moving in (upgrade, downgrade, stamp):
        moving.add_argument(
            "--lock-timeout",
            # Checked by the API (vidpipe.db.runner.settings), so a bad value is a one-line error.
            default=DEFAULT_LOCK_TIMEOUT,
            metavar="SECONDS",
            help="how long to wait for another process's migration "
            f"(default {DEFAULT_LOCK_TIMEOUT:g})",
        )
    commands.add_parser(
        "current", help="print the revision the database is at (reads only; SQLite read-only)"
    )
    for listing, what in (("history", "every revision, newest first"), ("heads", "the newest")):
        shown = commands.add_parser(listing, help=f"print {what} (no database needed)")
        shown.add_argument("-v", "--verbose", action="store_true", help="with each docstring")
    commands.add_parser("check", help="exit 1 if the database and the models disagree")
    sql = commands.add_parser(
        "sql", help="print the SQL that builds an empty database of the URL's dialect"
    )
    sql.add_argument("revision", nargs="?", default="head")
    return parser


if __name__ == "__main__":
    sys.exit(main())
