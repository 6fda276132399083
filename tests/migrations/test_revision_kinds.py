"""Every revision's kind is derived from what it does, on every dialect; none is left unknown.

No database is needed: a revision's kind comes from the statements its upgrade sends offline
(vidpipe.db.runner.revision_kinds). A new revision whose kind cannot be derived fails here,
with what to change.
"""

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import Script, ScriptDirectory

from tests.support.databases import DIALECTS
from tests.support.revisions import SCRIPT
from vidpipe.db.migrate import alembic_config
from vidpipe.db.runner.revision_kinds import CONTRACT, EXPAND, RevisionKind, kind_of

#: The released revisions' kinds, and the reason of the one contract revision.
RELEASED = {
    "vidpipe_0001": EXPAND,
    "vidpipe_0002": EXPAND,
    "vidpipe_0003": EXPAND,
    "vidpipe_0004": EXPAND,
    "vidpipe_0005": CONTRACT,  # a unique index on existing columns: 0.1.0 could write repeats
    "vidpipe_0006": EXPAND,  # new tables, new columns, SQL defaults on NOT NULL columns
}


def dialect_of(name: str) -> sa.Dialect:
    return sa.make_url(f"{name}://").get_dialect()()


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("revision", list(SCRIPT.walk_revisions()), ids=lambda r: r.revision)
def test_every_revision_has_a_derived_kind(revision: Script, dialect: str) -> None:
    kind = kind_of(revision, dialect_of(dialect))
    assert not kind.underived, (
        f"{revision.path}: the kind of {revision.revision} on {dialect} cannot be derived from "
        f"{'; '.join(kind.underived)}. Write it with alembic's op.* operations or vidpipe's "
        "idempotent helpers (constructs, not SQL strings), or, if it really is contract, say why "
        "in the revision: CONTRACT_BECAUSE = '...'."
    )
    if revision.revision in RELEASED:
        assert kind.kind == RELEASED[revision.revision], kind.reason


def test_the_unique_scene_index_is_contract_because_older_writes_may_repeat_its_key() -> None:
    kind = kind_of(SCRIPT.get_revision("vidpipe_0005"), dialect_of("postgresql"))
    assert kind.reason == (
        "creates unique index uq_scenes_project_id_scene_index on scenes(project_id, "
        "scene_index): rows an older release writes may repeat its key"
    )


#: One revision body per rule: (upgrade body, expected kind, words of the expected reason).
CASES = {
    "new table with keys and a unique index": (
        "op.create_table('things', sa.Column('id', sa.Integer, primary_key=True),"
        " sa.Column('code', sa.String(9), server_default='x'))\n"
        "    op.create_index('ux_things_code', 'things', ['code'], unique=True)",
        EXPAND,
        "creates table things",
    ),
    "nullable column": ("op.add_column('projects', sa.Column('x', sa.Text))", EXPAND, "adds"),
    "NOT NULL column with a SQL default": (
        "op.add_column('projects', sa.Column('x', sa.Integer, nullable=False, server_default='0'))",
        EXPAND,
        "adds column projects.x",
    ),
    "NOT NULL column without a SQL default": (
        "op.add_column('projects', sa.Column('x', sa.Integer, nullable=False))",
        CONTRACT,
        "older code's INSERTs fail",
    ),
    "index": ("op.create_index('ix_p', 'projects', ['status'])", EXPAND, "creates index"),
    "unique index on existing columns": (
        "op.create_index('ux_p', 'projects', ['title'], unique=True)",
        CONTRACT,
        "may repeat its key",
    ),
    "unique index on a new column": (
        "op.add_column('projects', sa.Column('x', sa.Text))\n"
        "    op.create_index('ux_p', 'projects', ['x'], unique=True)",
        EXPAND,
        "on new columns",
    ),
    "foreign key on a new column": (
        "op.add_column('projects', sa.Column('x', sa.Uuid))\n"
        "    op.create_foreign_key('fk_x', 'projects', 'projects', ['x'], ['id'])",
        EXPAND,
        "on new columns",
    ),
    "foreign key on an existing column": (
        "op.create_foreign_key('fk_x', 'projects', 'projects', ['seed'], ['id'])",
        CONTRACT,
        "may point nowhere",
    ),
    "SQL default for a NOT NULL column": (
        "op.alter_column('projects', 'status', server_default='draft', existing_nullable=False)",
        EXPAND,
        "gives NOT NULL column projects.status a SQL default",
    ),
    "SQL default for a nullable column": (
        "op.alter_column('projects', 'title', server_default='x', existing_nullable=True)",
        CONTRACT,
        "changes the SQL default",
    ),
    "type change": (
        "op.alter_column('projects', 'title', type_=sa.Text)",
        CONTRACT,
        "changes the type of projects.title",
    ),
    "dropped column": ("op.drop_column('projects', 'title')", CONTRACT, "drops column"),
    "renamed table": ("op.rename_table('projects', 'films')", CONTRACT, "renames table"),
    "raw SQL": ("op.execute('UPDATE projects SET title = NULL')", CONTRACT, "cannot be derived"),
}


def revision_file(directory: Path, body: str, extra: str = "") -> Script:
    versions = directory / "versions"
    versions.mkdir(parents=True)
    (directory / "script.py.mako").write_text("")
    (versions / "r1.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        "revision = 'r1'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n"
        f"{extra}\n\ndef upgrade():\n    {body}\n\n\ndef downgrade():\n    pass\n"
    )
    config = alembic_config()
    config.set_main_option("script_location", str(directory))
    return ScriptDirectory.from_config(config).get_revision("r1")


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule(case: str, tmp_path: Path) -> None:
    body, expected, reason = CASES[case]
    kind = kind_of(revision_file(tmp_path, body), dialect_of("postgresql"))
    assert (kind.kind, reason in kind.reason) == (expected, True), kind.reason


def test_a_revision_may_declare_itself_contract_never_expand(tmp_path: Path) -> None:
    declared = revision_file(
        tmp_path,
        "op.execute('UPDATE projects SET title = NULL')",
        "CONTRACT_BECAUSE = 'clears titles'",
    )
    kind = kind_of(declared, dialect_of("sqlite"))
    assert kind == RevisionKind("r1", (), CONTRACT, "declared: clears titles")
