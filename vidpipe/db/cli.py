"""``vidpipe-db``: vidpipe's migrations for people who have the package but not the repository.

A thin shell over :mod:`vidpipe.db.migrate` (the same code the API and ``alembic`` run); it
exists so that an installed wheel can be upgraded, inspected and repaired (``stamp --purge``)
without an alembic.ini. Errors are one line on stderr and exit status 1; the URL is shown
without its password or query string (vidpipe.db.engine.displayed_url).

The run settings' flags (``--ddl-lock-timeout 1s``, ...) are derived from the fields of
:class:`vidpipe.db.runner.settings.RunSettings`, as advanced-alchemy's commands wrap its one
config object: a new setting is a new flag without a change here.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from vidpipe.db import migrate
from vidpipe.db.engine import DEFAULT_URL, URL_ENV_VAR, displayed_url, resolve_url
from vidpipe.db.errors import VidpipeDatabaseError
from vidpipe.db.runner.settings import RunOption, run_options

__all__ = ["main"]

DESCRIPTION = f"""\
Migrate vidpipe's database with the revisions shipped inside the package.

The database URL comes from --url, else ${URL_ENV_VAR}, else {DEFAULT_URL}
(a SQLite file in the working directory). Async URLs (sqlite+aiosqlite://, postgresql+asyncpg://,
mariadb+aiomysql://) work too. `vidpipe-db COMMAND --help` describes a command and its flags.
"""

#: The commands that run revisions (or record one), and so take the run settings' flags.
_MOVING = ("upgrade", "downgrade", "stamp")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status (0 done, 1 failed or drift found)."""
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except (VidpipeDatabaseError, CommandError, SQLAlchemyError, RuntimeError) as exc:
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
    # Only the flags given: the others keep their default (vidpipe.db.runner.settings).
    settings = {option.name: getattr(args, option.name) for option in _given_options(args)}
    if args.command == "upgrade":
        migrate.upgrade(url, args.revision, expand_only=args.expand_only, **settings)
        print(f"{displayed_url(url)}: at {migrate.current_revision(url)}")
    elif args.command == "downgrade":
        migrate.downgrade(url, args.revision, **settings)
        at = migrate.current_revision(url) or "base (no vidpipe tables)"
        print(f"{displayed_url(url)}: at {at}")
    elif args.command == "stamp":
        migrate.stamp(url, args.revision, purge=args.purge, **settings)
        print(f"{displayed_url(url)}: stamped {migrate.current_revision(url) or 'base'}")
    elif args.command == "current":
        # A mistyped SQLite path is an error, as for check, not a database without revisions.
        existing = migrate.existing_database(url, "no revision to report")
        print(migrate.current_revision(existing) or "none: vidpipe's revisions were never applied")
    elif args.command == "check":
        migrate.check(url)  # Alembic prints its own verdict
    else:
        migrate.upgrade_sql(url, args.revision)


def _given_options(args: argparse.Namespace) -> list[RunOption]:
    return [option for option in run_options() if hasattr(args, option.name)]


class _Version(argparse.Action):
    """``--version``: the package's version and the newest revision it carries (read only
    when asked, so other commands do not load the revisions for it)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from alembic.script import ScriptDirectory

        heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
        print(f"vidpipe-db {version('vidpipe-data')} (newest revision {', '.join(heads)})")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidpipe-db",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version and the newest revision, and exit"
    )
    parser.add_argument("--url", help=f"database URL (default: ${URL_ENV_VAR}, else {DEFAULT_URL})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, more: str = "") -> argparse.ArgumentParser:
        """A subcommand: ``summary`` in the list of commands, with ``more`` in its own help."""
        description = f"{summary[0].upper()}{summary[1:]}.{' ' + more if more else ''}"
        return commands.add_parser(name, help=summary, description=description)

    upgrade = command(
        "upgrade",
        "upgrade to a revision (default: head)",
        "Builds the database if it is empty, adopts one built by an older vidpipe, and does "
        "nothing if it is at the revision already. Never goes down: a revision the database is "
        "past is refused (use downgrade).",
    )
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.add_argument(
        "--expand-only",
        action="store_true",
        help="stop before the first contract revision (a rolling deploy's first step: run the "
        "rest once every replica runs the new release)",
    )
    downgrade = command(
        "downgrade",
        "downgrade to a revision: an id, -1, or base (drops vidpipe's tables)",
        "Refused, naming tables and row counts, if it would drop data, unless --allow-data-loss.",
    )
    downgrade.add_argument("revision")
    stamp = command(
        "stamp",
        "record a revision in the version table without running any revision",
        "With --purge, empty the table first: the repair for contradictory version rows, once "
        "you know which revision the schema really matches.",
    )
    stamp.add_argument("revision")
    stamp.add_argument(
        "--purge", action="store_true", help="delete every version row before recording"
    )
    for name in _MOVING:
        _add_run_settings(commands.choices[name])
    command(
        "current",
        "print the revision the database is at",
        "Only reads: a SQLite file is opened read-only and left exactly as it was; a missing "
        "file is an error, not created.",
    )
    for listing, what in (("history", "every revision, newest first"), ("heads", "the newest")):
        shown = command(listing, f"print {what} (no database needed)")
        shown.add_argument("-v", "--verbose", action="store_true", help="with each docstring")
    command(
        "check",
        "exit 1 if the database and the models disagree",
        "Prints what differs. Only reads, like current.",
    )
    sql = command(
        "sql",
        "print the SQL that builds an empty database of the URL's dialect",
        "Connects to nothing: the URL only names the dialect.",
    )
    sql.add_argument("revision", nargs="?", default="head")
    return parser


def _add_run_settings(parser: argparse.ArgumentParser) -> None:
    """One flag per run setting; absent flags are absent from the result (argparse.SUPPRESS),
    so the setting's own default applies. Values are checked by the API, so a bad one is a
    one-line error like any other."""
    group = parser.add_argument_group("run settings (also: alembic -x name=value)")
    for option in run_options():
        if option.metavar is None:
            group.add_argument(
                option.flag, action="store_true", default=argparse.SUPPRESS, help=option.doc
            )
        else:
            default = f"{option.default:g}" if isinstance(option.default, float) else option.default
            group.add_argument(
                option.flag,
                metavar=option.metavar,
                default=argparse.SUPPRESS,
                help=f"{option.doc} (default {default})",
            )


if __name__ == "__main__":
    sys.exit(main())
