"""A comparable picture of a database's schema, as reflected from the database itself."""

from typing import Any

import sqlalchemy as sa

from vidpipe.db.runner.environment import BOOKKEEPING_TABLES


def snapshot(bind: sa.Engine | sa.Connection, *, keep_version_table: bool = False) -> dict:
    """Tables with their columns, keys, foreign keys and indexes, in a stable order; vidpipe's
    bookkeeping tables (version and revision kinds) only with ``keep_version_table``."""
    if isinstance(bind, sa.Engine):
        # One connection for the whole reflection: an inspector on an engine connects for each
        # table and question, which on the tests' NullPool engines is hundreds of connections.
        with bind.connect() as connection:
            return snapshot(connection, keep_version_table=keep_version_table)
    inspector = sa.inspect(bind)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        if name in BOOKKEEPING_TABLES and not keep_version_table:
            continue
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    fk["name"] or "",
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(name)
            ),
        }
    return tables
