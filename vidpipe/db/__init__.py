"""vidpipe's database: models, engines and the migration API.

Importing this package connects to nothing; engines are made when asked for.
"""

from vidpipe.db.engine import create_async_engine, create_engine
from vidpipe.db.errors import (
    DatabaseAheadError,
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
    VidpipeDatabaseError,
)
from vidpipe.db.migrate import current_revision, downgrade, upgrade, upgrade_async
from vidpipe.db.runner.environment import BRANCH_LABEL, VERSION_TABLE

__all__ = [
    "BRANCH_LABEL",
    "VERSION_TABLE",
    "DDLLockTimeout",
    "DataLossRefused",
    "DatabaseAheadError",
    "DatabaseURLError",
    "DuplicateRows",
    "ForeignKeyViolation",
    "InvalidVersionState",
    "MigrationLockLost",
    "MigrationLockTimeout",
    "MigrationSettingError",
    "NotAVidpipeDatabase",
    "UnconvertibleValue",
    "VidpipeDatabaseError",
    "create_async_engine",
    "create_engine",
    "current_revision",
    "downgrade",
    "upgrade",
    "upgrade_async",
]
