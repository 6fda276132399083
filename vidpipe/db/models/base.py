"""The declarative base every vidpipe model shares, and the column shapes they repeat."""

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, Index, MetaData, Table, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vidpipe.db.types import NAMING_CONVENTION, JSONDocument, server_default

__all__ = ["ONLY_ON_DIALECT", "Base", "metadata"]


class Base(DeclarativeBase):
    """Declarative base whose MetaData names every constraint predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model is mapped to a Table (SQLAlchemy types __table__ as any FromClause): saying so
    # lets code use Model.__table__ where a Table is required, as SQLAlchemy's authors advise.
    __table__: ClassVar[Table]
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        uuid.UUID: Uuid(),
        datetime: DateTime(),
        dict[str, Any]: JSONDocument,
        list[Any]: JSONDocument,
    }


#: The MetaData holding every vidpipe table (what env.py and host applications target).
metadata = Base.metadata

#: ``Index.info`` key naming the only dialect an index exists on; ``vidpipe.db.runner.environment``
#: hides such indexes from autogenerate on every other dialect.
ONLY_ON_DIALECT = "vidpipe_only_on_dialect"


def id_column() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=uuid.uuid4)


def created_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def updated_at() -> Mapped[datetime]:
    return mapped_column(server_default=func.now(), onupdate=func.now())


def defaulted(value: bool | int | float | str, *args: Any, **kwargs: Any) -> Any:
    """A NOT NULL column whose default the ORM applies and the database knows too.

    The backend inserts some rows with raw SQL that omits these columns (its default-user
    seed), so the default must also be the column's SQL default, not only a Python one.
    """
    return mapped_column(*args, default=value, server_default=server_default(value), **kwargs)


def gin_tag_index(table: str, column: str) -> Index:
    """A PostgreSQL GIN index on a JSONB array of tags, answering ``column @> '["TAG"]'``.

    ``jsonb_path_ops`` is smaller and faster than the default ``jsonb_ops`` and serves ``@>``,
    the only operator the look-ups use. Other dialects have no GIN (and MariaDB cannot index a
    JSON column at all), so the index exists only on PostgreSQL: ``ddl_if`` keeps
    ``create_all`` from emitting it elsewhere, the info key keeps autogenerate from asking.
    """
    index = Index(
        f"ix_{table}_{column}",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "jsonb_path_ops"},
        info={ONLY_ON_DIALECT: "postgresql"},
    )
    return index.ddl_if(dialect="postgresql")
