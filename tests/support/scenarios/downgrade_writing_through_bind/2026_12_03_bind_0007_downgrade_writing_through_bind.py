"""A revision whose downgrade writes through the connection itself, not through ``op``.

Why: the data-loss guard plans a downgrade by running it with ``op`` recording; what a revision
sends through ``op.get_bind()`` would really run, twice, and the guard cannot see what it
destroys. Such a downgrade must be refused, with nothing changed.
"""

import sqlalchemy as sa
from alembic import op

revision = "bind_0007"
down_revision = "vidpipe_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("bind_log", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM bind_log"))
    op.drop_table("bind_log")
