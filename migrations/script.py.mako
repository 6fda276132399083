"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Why: (say why this revision exists and what it must preserve)

(How it runs on a table that holds rows: which statements lock what, on each dialect.)
"""

<%
    # A revision with operations imports what they use (vidpipe's helpers often need no op);
    # one without any gets both, for the maintainer who writes its operations by hand.
    body = (upgrades or "") + (downgrades or "")
    by_hand = "(" not in body
%>\
from collections.abc import Sequence

% if by_hand or "sa." in body:
import sqlalchemy as sa
% endif
% if by_hand or "op." in body:
from alembic import op
% endif
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

#: squawk rules this revision accepts on PostgreSQL, and why (tests/migrations/test_squawk.py
#: lints it). Add a rule only with the reason it is acceptable here, e.g.
#: "prefer-text-field": "...".
SQUAWK_ACCEPTED: dict[str, str] = {}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
