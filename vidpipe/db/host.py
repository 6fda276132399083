"""What a host application with its own Alembic history needs to live beside vidpipe.

Mode A (side by side): the host calls ``vidpipe.db.upgrade`` at start-up and passes
``include_name`` (or ``include_object``) to its own ``context.configure`` so that its
autogenerate and ``alembic check`` do not take vidpipe's tables for drift.

Mode B (folded in): the host lists ``versions_directory`` in its ``version_locations``,
adds ``vidpipe.db.models.metadata`` to its ``target_metadata``, passes
``include_folded_object`` as ``include_object`` and upgrades ``heads``.
"""

from pathlib import Path
from typing import Any

from alembic import context

from vidpipe.db.migrate import script_location
from vidpipe.db.models import metadata
from vidpipe.db.runner.environment import BOOKKEEPING_TABLES, include_object_on

#: Every table vidpipe owns in a shared database, its version table and record included.
VIDPIPE_TABLES: frozenset[str] = frozenset(metadata.tables) | frozenset(BOOKKEEPING_TABLES)


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """An ``include_name`` hook that hides vidpipe's tables from the host's autogenerate."""
    return not (type_ == "table" and name in VIDPIPE_TABLES)


def include_object(
    object_: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """The same as ``include_name``, for hosts that filter with ``include_object``."""
    return not (type_ == "table" and name in VIDPIPE_TABLES)


def include_folded_object(
    object_: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Mode B's ``include_object``: vidpipe's PostgreSQL-only (GIN) indexes stay out of the
    host's autogenerate and ``alembic check`` on other databases, as in vidpipe's own env.py."""
    dialect_name = context.get_context().dialect.name
    return include_object_on(dialect_name)(object_, name, type_, reflected, compare_to)


def versions_directory() -> Path:
    """vidpipe's revisions, for a host's ``version_locations`` (inside the installed package)."""
    return script_location() / "versions"
