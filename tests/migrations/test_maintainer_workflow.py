"""The next revision, written the way a maintainer writes it (README, "Adding a revision"), in a
scratch copy of the repository: add a column to a model, ``alembic revision --autogenerate``,
and the file that comes out migrates every dialect up, up again, down and up with no hand edit.
The same for a plain ``op.batch_alter_table`` revision, as a host or an Alembic user writes it.

One scratch copy per test process (module scope): the dialects share the generated revision.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.cli import REPO_ROOT, python
from tests.support.databases import dialect_params
from tests.support.scratch_repository import alembic, copy_repository
from vidpipe.db.revision_rewriter import operations_left_as_written

#: The model edit of the README's example: a nullable column on scene_manifests.
MODEL = Path("vidpipe/db/models/scenes.py")
LAST_COLUMN = "    rewritten_video_prompt: Mapped[str | None] = mapped_column(Text)\n"
NEW_COLUMN = "    lighting_notes: Mapped[str | None] = mapped_column(Text)\n"
#: The batch revision's column, on the model too so that ``alembic check`` stays clean.
BATCH_COLUMN = "    mood: Mapped[str | None] = mapped_column(Text)\n"
RUFF = Path(sys.executable).with_name("ruff")


def add_to_model(repository: Path, line: str) -> None:
    model = repository / MODEL
    text = model.read_text()
    assert text.count(LAST_COLUMN) == 1, "scene_manifests' last column moved: update this test"
    model.write_text(text.replace(LAST_COLUMN, LAST_COLUMN + line))


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def url_text(url: sa.URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository with ``scene_manifests.lighting_notes`` on the model and the revision
    ``alembic revision --autogenerate`` wrote for it (against a SQLite database at head)."""
    repository = copy_repository(tmp_path_factory.mktemp("repository"))
    add_to_model(repository, NEW_COLUMN)
    database = f"sqlite:///{repository / 'autogenerate.db'}"
    succeeded(alembic(repository, "upgrade", "head", url=database))
    succeeded(
        alembic(repository, "revision", "--autogenerate", "-m", "lighting notes", url=database)
    )
    return repository


def written(repository: Path) -> Path:
    (path,) = (repository / "migrations" / "versions").glob("*_vidpipe_0007_*.py")
    return path


def test_autogenerate_writes_the_next_revision_in_the_projects_idiom(repository: Path) -> None:
    path = written(repository)
    assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_vidpipe_0007_lighting_notes\.py", path.name)
    text = path.read_text()
    assert 'revision: str = "vidpipe_0007"' in text
    assert 'down_revision: str | Sequence[str] | None = "vidpipe_0006"' in text
    assert "from vidpipe.db.idempotent import drop_columns, ensure_columns" in text
    assert (
        'ensure_columns("scene_manifests", sa.Column("lighting_notes", sa.Text(), nullable=True))'
        in text
    )
    assert 'drop_columns("scene_manifests", "lighting_notes")' in text
    assert "op." not in text and "from alembic import op" not in text
    assert "\nWhy: " in text and "SQUAWK_ACCEPTED: dict[str, str] = {}" in text
    assert "NOT IDEMPOTENT" not in text
    # The post-write hooks left nothing for ruff to change.
    succeeded(subprocess.run([RUFF, "check", str(path)], capture_output=True, text=True))
    succeeded(
        subprocess.run([RUFF, "format", "--check", str(path)], capture_output=True, text=True)
    )


def test_migrating_never_loads_the_rewriter(tmp_path: Path) -> None:
    """env.py imports vidpipe.db.revision_rewriter for ``revision --autogenerate`` only: an
    offline script, an upgrade and ``alembic check`` run without it."""
    ini = str(REPO_ROOT / "alembic.ini")
    url = f"url=sqlite:///{tmp_path / 'vidpipe.db'}"
    loaded = python(
        "import sys\n"
        "from alembic.config import main\n"
        f"for args in (['upgrade', 'head', '--sql'], ['upgrade', 'head'], ['check']):\n"
        f"    main(['-c', {ini!r}, '-x', {url!r}, *args])\n"
        "print('vidpipe.db.revision_rewriter' in sys.modules)\n"
    )
    assert loaded.splitlines()[-1] == "False"


def test_an_operation_no_helper_covers_is_left_as_written_and_named(
    repository: Path, tmp_path: Path
) -> None:
    """A type change has no vidpipe.db.idempotent helper: autogenerate's own operation stays,
    under the comment that tests/migrations/test_idempotency.py turns into a failure naming it."""
    own = shutil.copytree(repository, tmp_path / "repository")
    model = own / MODEL
    model.write_text(
        model.read_text().replace(LAST_COLUMN, LAST_COLUMN.replace("Text", "String(2000)"))
    )
    database = f"sqlite:///{own / 'autogenerate.db'}"
    succeeded(alembic(own, "upgrade", "head", url=database))
    succeeded(alembic(own, "revision", "--autogenerate", "-m", "longer prompts", url=database))

    (path,) = (own / "migrations" / "versions").glob("*_vidpipe_0008_longer_prompts.py")
    lines = path.read_text().splitlines()
    marked = [n for n, line in enumerate(lines, start=1) if "# NOT IDEMPOTENT" in line]
    assert len(marked) == 2  # the upgrade's and the downgrade's
    for number in marked:
        assert lines[number - 1].strip() == (
            "# NOT IDEMPOTENT: op.alter_column on scene_manifests, as autogenerate wrote it."
        )
        following = "\n".join(lines[number : number + 8])
        assert 'with op.batch_alter_table("scene_manifests"' in following
        assert '"rewritten_video_prompt"' in following
    assert operations_left_as_written(path.parent) == [
        f"{path.name}:{number}: op.alter_column on scene_manifests" for number in marked
    ]


def round_trip(
    repository: Path, database_url: sa.URL, previous: str, revision: str, column: str
) -> None:
    """Upgrade, upgrade again (a no-op), ``alembic check`` (clean), downgrade one, upgrade:
    each step must succeed, and the column must be there at the end."""
    url = url_text(database_url)
    upgraded = f"Running upgrade {previous} -> {revision}"
    steps = [
        (("upgrade", "head"), upgraded),
        (("upgrade", "head"), None),
        (("check",), "No new upgrade operations detected"),
        (("downgrade", "-1"), f"Running downgrade {revision} ->"),
        (("upgrade", "head"), upgraded),
    ]
    for step, expected in steps:
        result = alembic(repository, *step, url=url)
        said = result.stdout + result.stderr
        assert result.returncode == 0, f"alembic {' '.join(step)} failed:\n{said}"
        if expected is None:
            assert "Running upgrade" not in said, f"the second upgrade ran something:\n{said}"
        else:
            assert expected in said, said
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("scene_manifests")}
    finally:
        engine.dispose()
    assert column in columns


def test_the_written_revision_upgrades_checks_downgrades_and_upgrades(
    repository: Path, database_url: sa.URL
) -> None:
    round_trip(repository, database_url, "vidpipe_0006", "vidpipe_0007", "lighting_notes")


NEW_TABLE = '''

class LightingRig(Base):
    """A lighting rig of a scene (a table with a foreign key and an index, for the tests)."""

    __tablename__ = "lighting_rigs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    scene_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenes.id"), index=True)
    label: Mapped[str] = mapped_column(String(50))
'''


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
def test_a_new_table_with_a_key_and_an_index_is_written_with_the_helpers(
    repository: Path, database_url: sa.URL, tmp_path: Path
) -> None:
    own = shutil.copytree(repository, tmp_path / "repository")
    with (own / MODEL).open("a") as model:
        model.write(NEW_TABLE)
    database = f"sqlite:///{own / 'autogenerate.db'}"
    succeeded(alembic(own, "upgrade", "head", url=database))
    succeeded(alembic(own, "revision", "--autogenerate", "-m", "lighting rigs", url=database))

    (path,) = (own / "migrations" / "versions").glob("*_vidpipe_0008_lighting_rigs.py")
    text = path.read_text()
    assert "op.create_table" not in text and "NOT IDEMPOTENT" not in text
    assert 'sa.Table("scenes", metadata, sa.Column("id", sa.Uuid()' in text  # referred to only
    assert 'sa.Index("ix_lighting_rigs_scene_id", "scene_id")' in text
    assert "ensure_table(lighting_rigs)" in text
    assert 'drop_tables("lighting_rigs")' in text
    round_trip(own, database_url, "vidpipe_0007", "vidpipe_0008", "lighting_notes")
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys("lighting_rigs")] == [
            "scenes"
        ]
        assert [ix["name"] for ix in inspector.get_indexes("lighting_rigs")] == [
            "ix_lighting_rigs_scene_id"
        ]
    finally:
        engine.dispose()


BATCH_REVISION = """
def upgrade() -> None:
    with op.batch_alter_table("scene_manifests") as batch:
        batch.add_column(sa.Column("mood", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scene_manifests") as batch:
        batch.drop_column("mood")
"""


@pytest.mark.parametrize("dialect", dialect_params("sqlite"), indirect=True)
def test_a_plain_batch_revision_upgrades_checks_downgrades_and_upgrades(
    repository: Path, database_url: sa.URL, tmp_path: Path
) -> None:
    """A revision written with plain Alembic (``alembic revision`` without autogenerate, a
    random id, ``op.batch_alter_table``): SQLite's batch mode must reflect the live table."""
    own = shutil.copytree(repository, tmp_path / "repository")  # the shared copy keeps its head
    add_to_model(own, BATCH_COLUMN)
    succeeded(alembic(own, "revision", "-m", "mood"))
    (path,) = (own / "migrations" / "versions").glob("*_mood.py")
    text = path.read_text()
    revision = re.search(r'^revision: str = "(\w+)"', text, flags=re.M)
    assert revision is not None
    path.write_text(text[: text.index("\ndef upgrade() -> None:")] + BATCH_REVISION)

    round_trip(own, database_url, "vidpipe_0007", revision.group(1), "mood")
