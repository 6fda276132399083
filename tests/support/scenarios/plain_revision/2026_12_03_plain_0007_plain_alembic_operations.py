"""A plain Alembic revision on top of vidpipe's head, as a host or an Alembic user writes it.

Why: the data-loss guard must plan every operation Alembic offers online, batch operations on
SQLite included (they reflect the table, so they cannot be rendered offline), and still see what
each downgrade drops: a table, a plain column, a batch column and a column's type.
"""

import sqlalchemy as sa
from alembic import op

revision = "plain_0007"
down_revision = "vidpipe_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plain_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text),
    )
    op.add_column("projects", sa.Column("plain_flag", sa.Integer))
    with op.batch_alter_table("scenes") as batch_op:
        batch_op.add_column(sa.Column("plain_mood", sa.String(50)))
    with op.batch_alter_table("manifests") as batch_op:
        batch_op.alter_column(
            "thumbnail_url", type_=sa.Text, existing_type=sa.String(500), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("manifests") as batch_op:
        batch_op.alter_column(
            "thumbnail_url", type_=sa.String(500), existing_type=sa.Text, existing_nullable=True
        )
    with op.batch_alter_table("scenes") as batch_op:
        batch_op.drop_column("plain_mood")
    op.drop_column("projects", "plain_flag")
    op.drop_table("plain_notes")
