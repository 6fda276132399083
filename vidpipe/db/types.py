"""Column types and the constraint naming convention shared by the models and the revisions.

Revisions import from here rather than from ``models`` so that they stay frozen when the
models change; what lives here must therefore never change meaning.
"""

from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

#: Fixed before the first revision: constraint names are part of the schema that revisions
#: create and later drop, so they must be predictable on every dialect. ``ix`` matches the
#: names SQLAlchemy gave indexes in the databases already in the field.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSONB on PostgreSQL (indexable, compact), the dialect's JSON elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
