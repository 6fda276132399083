"""The errors this layer raises: each says what was found and what to do about it.

Errors that describe something found in the database carry it as attributes too, so code can
act on them without parsing the message.

Nothing here imports Alembic: the models and the store raise these errors, and importing them
must not load Alembic's runtime. The ``alembic`` command line still prints them as one
``FAILED: ...`` line: env.py hands them to it as its own ``CommandError``
(vidpipe.db.runner.environment.command_line_errors).
"""

from collections.abc import Mapping, Sequence

__all__ = [
    "DataLossRefused",
    "DatabaseAheadError",
    "DatabaseFileError",
    "DatabaseURLError",
    "ForeignKeyViolation",
    "InjectedFault",
    "InvalidVersionState",
    "MigrationLockLost",
    "MigrationLockTimeout",
    "MigrationSettingError",
    "NotAVidpipeDatabase",
    "StoryboardError",
    "UnknownProjectError",
    "UnknownRevisionError",
    "VidpipeDatabaseError",
]


class VidpipeDatabaseError(Exception):
    """Base class of every error raised by vidpipe's data layer."""


class DatabaseURLError(VidpipeDatabaseError, ValueError):
    """The database URL is missing, malformed or names a driver that is not installed."""


class DatabaseFileError(VidpipeDatabaseError):
    """A SQLite database file is missing, cannot be opened, or could not grow (disk full, a
    file-size limit); the message names the path and the reason."""


class UnknownRevisionError(VidpipeDatabaseError, LookupError):
    """A revision id that vidpipe's history lacks; the message suggests the nearest one."""


class ForeignKeyViolation(VidpipeDatabaseError):
    """A migration left rows whose foreign keys point nowhere; it was rolled back."""


class MigrationSettingError(VidpipeDatabaseError):
    """A migration setting (``-x`` argument or config attribute) has a value that cannot work."""


class StoryboardError(VidpipeDatabaseError, ValueError):
    """A storyboard cannot be stored or rebuilt; the message names the scene and field.

    Raised before anything is written, or after the store's savepoint was rolled back: the
    database is as it was.
    """


class UnknownProjectError(StoryboardError, LookupError):
    """The storyboard's project does not exist (save it, or check the id, first)."""


class NotAVidpipeDatabase(VidpipeDatabaseError):
    """Tables with vidpipe's names hold something else; nothing was changed."""


class UnconvertibleValue(VidpipeDatabaseError):
    """Stored values cannot take the type an adoption gives their column; nothing was changed.

    ``rows`` names each row by its key, never by its values (they may hold credentials).
    """

    def __init__(self, message: str, *, table: str, column: str, rows: list[str]) -> None:
        super().__init__(message)
        self.table = table
        self.column = column
        self.rows = rows


class MigrationLockTimeout(VidpipeDatabaseError):
    """Another process held the migration lock for longer than the lock timeout."""


class MigrationLockLost(VidpipeDatabaseError):
    """A run lost the migration lock mid-way (PostgreSQL: the connection that kept it across
    the run's commits is gone) and stopped before its next statement, so that it never
    migrates beside the run that may have taken the lock since; the next run finishes its work.
    """


class DDLLockTimeout(VidpipeDatabaseError):
    """A migration statement waited too long behind another transaction's lock, on every try.

    ``statement`` is the SQL that waited, ``table`` the table it names (None if it names none),
    ``attempts`` how many times the run was tried, and ``blockers`` what held the table when
    vidpipe gave up: ``(pid, state, query)`` of each other session (PostgreSQL only).
    """

    def __init__(
        self,
        message: str,
        *,
        statement: str,
        table: str | None,
        attempts: int,
        blockers: list[tuple[int, str, str]],
    ) -> None:
        super().__init__(message)
        self.statement = statement
        self.table = table
        self.attempts = attempts
        self.blockers = blockers


class DatabaseAheadError(VidpipeDatabaseError):
    """A newer vidpipe wrote the database: its version table names a revision this version
    does not know, or (a file from before versioned migrations) its tables have columns this
    version never declared.

    ``unknown`` holds those revision ids (empty for unknown columns: the message names them);
    ``breaking`` the first of them that older code cannot run on (a contract revision, or one
    whose kind was never recorded), if the database records revision kinds at all.
    """

    def __init__(
        self, message: str, unknown: Sequence[str] = (), breaking: str | None = None
    ) -> None:
        super().__init__(message)
        self.unknown = tuple(unknown)
        self.breaking = breaking


class InvalidVersionState(VidpipeDatabaseError):
    """The version table holds rows that cannot all be true at once, or are no revision id.

    ``rows`` holds the version table's values as read.
    """

    def __init__(self, message: str, rows: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.rows = tuple(rows)


class DataLossRefused(VidpipeDatabaseError):
    """A downgrade would drop tables or columns that hold rows, and nobody allowed it.

    ``drops`` maps each table (``"scenes"``) or column (``"projects.characters"``) that holds
    data to its count of rows (non-NULL values for a column); ``destination`` is the revision
    the downgrade was asked to reach.
    """

    def __init__(
        self, message: str, drops: Mapping[str, int] | None = None, destination: str = ""
    ) -> None:
        super().__init__(message)
        self.drops = dict(drops or {})
        self.destination = destination


class DuplicateRows(VidpipeDatabaseError):
    """A revision that makes a key unique found rows repeating it; nothing was changed.

    ``duplicates`` lists each repeated key (values in the order of ``columns``).
    """

    def __init__(
        self,
        message: str,
        *,
        table: str,
        columns: tuple[str, ...],
        duplicates: list[tuple[object, ...]],
    ) -> None:
        super().__init__(message)
        self.table = table
        self.columns = columns
        self.duplicates = duplicates


class InjectedFault(RuntimeError):
    """A failure a test asked for (see ``vidpipe.db.runner.faults``); never raised otherwise."""
