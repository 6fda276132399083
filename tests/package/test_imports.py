"""Importing the models or the store loads no Alembic: an application that only reads and
writes storyboards pays nothing for the migration machinery. vidpipe's errors are still one
``FAILED:`` line on Alembic's own command line."""

from pathlib import Path

from tests.support.cli import alembic, python


def test_the_models_and_the_store_import_without_alembic() -> None:
    loaded = python(
        "import sys\n"
        "import vidpipe.db.models, vidpipe.db.store, vidpipe.db\n"
        "from vidpipe.db import DatabaseURLError, create_engine\n"
        "from vidpipe.db.errors import StoryboardError\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))"
    )
    assert loaded.strip() == "[]"


def test_the_migration_api_loads_on_first_use() -> None:
    loaded = python(
        "import sys\n"
        "import vidpipe.db\n"
        "before = 'alembic' in sys.modules\n"
        "from vidpipe.db import upgrade_async, VERSION_TABLE\n"
        "print(before, 'alembic' in sys.modules, upgrade_async.__module__, VERSION_TABLE)"
    )
    assert loaded.split() == ["False", "True", "vidpipe.db.migrate", "vidpipe_alembic_version"]


def test_alembics_command_line_prints_vidpipes_errors_as_one_failed_line(tmp_path: Path) -> None:
    result = alembic("-x", "ddl_retries=many", "upgrade", "head", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "FAILED: ddl_retries must be a whole number >= 0, got 'many'" in output
    assert "Traceback" not in output
    assert not (tmp_path / "vidpipe.db").exists()
