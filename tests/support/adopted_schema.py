"""What an adopted database is compared with: a fresh one's schema, less what may differ, and
``alembic check``."""

import sqlalchemy as sa
from alembic import command

from tests.support.databases import HeadTemplates
from tests.support.schema_snapshot import snapshot
from vidpipe.db.migrate import alembic_config


def check_finds_nothing(engine: sa.Engine) -> None:
    """The real ``alembic check`` (vidpipe's env.py, compare_type on) reports no drift."""
    with engine.connect() as connection:
        command.check(alembic_config(connection=connection))


def shape(bind: sa.Engine) -> dict:
    """The schema with what may legitimately differ from a fresh database left out.

    Adopted tables keep their column order (SQLite appends added columns) and their unnamed
    foreign keys; neither is something ``alembic check`` or a query can tell apart. MariaDB
    names the index behind a foreign key after the key, so only vidpipe's own ``ix_`` index
    names are compared.
    """
    tables = snapshot(bind)
    return {
        name: {
            "columns": sorted((c[0], c[1], c[2]) for c in table["columns"]),
            "primary_key": table["primary_key"],
            "foreign_keys": sorted(fk[1:] for fk in table["foreign_keys"]),
            "indexes": sorted(
                (name if name.startswith("ix_") else "", columns, unique)
                for name, columns, unique in table["indexes"]
            ),
        }
        for name, table in tables.items()
    }


def fresh_shape(head_templates: HeadTemplates, dialect: str) -> dict:
    """The shape of a database that ``upgrade`` built empty."""
    with head_templates.engine(dialect) as reference:
        return shape(reference)
