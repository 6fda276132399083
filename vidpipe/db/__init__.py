"""vidpipe's database: models, engines and the migration API.

Importing this package connects to nothing; engines are made when asked for. The migration
API is loaded on first use (PEP 562 ``__getattr__``): ``import vidpipe.db.models`` or
``vidpipe.db.store`` runs this file first, and must not load Alembic's runtime.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vidpipe.db.engine import create_async_engine, create_engine
from vidpipe.db.errors import (
    DatabaseAheadError,
    DatabaseFileError,
    DatabaseURLError,
    DataLossRefused,
    DDLLockTimeout,
    DuplicateRows,
    ForeignKeyViolation,
    InvalidVersionState,
    MigrationLockLost,
    MigrationLockTimeout,
    MigrationSettingError,
    NotAVidpipeDatabase,
    UnconvertibleValue,
    UnknownRevisionError,
    VidpipeDatabaseError,
)

if TYPE_CHECKING:
    from vidpipe.db.migrate import (
        check,
        check_async,
        current_revision,
        current_revision_async,
        downgrade,
        downgrade_async,
        stamp,
        stamp_async,
        upgrade,
        upgrade_async,
    )
    from vidpipe.db.runner.environment import BRANCH_LABEL, VERSION_TABLE

#: The names loaded on first use, and the module that holds each.
_LAZY = {
    **dict.fromkeys(
        (
            "check",
            "check_async",
            "current_revision",
            "current_revision_async",
            "downgrade",
            "downgrade_async",
            "stamp",
            "stamp_async",
            "upgrade",
            "upgrade_async",
        ),
        "vidpipe.db.migrate",
    ),
    **dict.fromkeys(("BRANCH_LABEL", "VERSION_TABLE"), "vidpipe.db.runner.environment"),
}

__all__ = [
    "BRANCH_LABEL",
    "VERSION_TABLE",
    "DDLLockTimeout",
    "DataLossRefused",
    "DatabaseAheadError",
    "DatabaseFileError",
    "DatabaseURLError",
    "DuplicateRows",
    "ForeignKeyViolation",
    "InvalidVersionState",
    "MigrationLockLost",
    "MigrationLockTimeout",
    "MigrationSettingError",
    "NotAVidpipeDatabase",
    "UnconvertibleValue",
    "UnknownRevisionError",
    "VidpipeDatabaseError",
    "check",
    "check_async",
    "create_async_engine",
    "create_engine",
    "current_revision",
    "current_revision_async",
    "downgrade",
    "downgrade_async",
    "stamp",
    "stamp_async",
    "upgrade",
    "upgrade_async",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # the next look-up is an ordinary one
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
