"""``vidpipe-db``, the console command installed with the package, run as a user runs it."""

import hashlib
import importlib.metadata
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.cli import vidpipe_db
from tests.support.databases import as_async, url_text
from tests.support.revisions import HEAD, SCRIPT
from vidpipe.db import VERSION_TABLE, upgrade
from vidpipe.db.cli import _parser
from vidpipe.db.runner.settings import run_options


def test_help_says_where_the_url_comes_from(tmp_path: Path) -> None:
    result = vidpipe_db("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--url, else $VIDPIPE_DATABASE_URL, else sqlite:///vidpipe.db" in result.stdout
    for command in ("upgrade", "downgrade", "current", "check", "sql", "stamp", "history", "heads"):
        assert command in result.stdout


def test_upgrade_current_check_downgrade_on_the_default_database(tmp_path: Path) -> None:
    upgraded = vidpipe_db("upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"sqlite:///vidpipe.db: at {HEAD}"
    assert vidpipe_db("current", cwd=tmp_path).stdout.strip() == HEAD
    checked = vidpipe_db("check", cwd=tmp_path)
    assert checked.returncode == 0
    assert "No new upgrade operations detected" in checked.stdout
    assert vidpipe_db("downgrade", "base", cwd=tmp_path).returncode == 0
    assert sa.inspect(
        sa.create_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}")
    ).get_table_names() == [VERSION_TABLE]


def test_url_option_wins_over_the_environment(tmp_path: Path) -> None:
    chosen, ignored = tmp_path / "chosen.db", tmp_path / "ignored.db"
    result = vidpipe_db(
        "--url", f"sqlite:///{chosen}", "upgrade", cwd=tmp_path, url=f"sqlite:///{ignored}"
    )
    assert result.returncode == 0, result.stderr
    assert chosen.exists()
    assert not ignored.exists()
    assert not (tmp_path / "vidpipe.db").exists()


def test_sql_prints_the_script_for_the_urls_dialect_without_connecting(tmp_path: Path) -> None:
    result = vidpipe_db("sql", cwd=tmp_path, url="postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE scene_manifests" in result.stdout
    assert "JSONB" in result.stdout


def test_drift_and_errors_are_one_line_and_exit_non_zero(tmp_path: Path) -> None:
    assert vidpipe_db("upgrade", cwd=tmp_path).returncode == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE scene_audio_manifests")
    engine.dispose()
    outcomes = {
        "drift": vidpipe_db("check", cwd=tmp_path),
        "bad url": vidpipe_db("--url", "postgresql://u:s3cret@h:port/d", "current", cwd=tmp_path),
        "no server": vidpipe_db(
            "--url", "postgresql+psycopg://nobody@127.0.0.1:1/nowhere", "upgrade", cwd=tmp_path
        ),
    }
    for outcome in outcomes.values():
        assert outcome.returncode == 1
        assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
        assert outcome.stderr.startswith("vidpipe-db: error: ")
    assert "scene_audio_manifests" in outcomes["drift"].stderr
    assert "--url is not a valid SQLAlchemy URL" in outcomes["bad url"].stderr
    assert "s3cret" not in outcomes["bad url"].stderr
    assert "Connection refused" in outcomes["no server"].stderr


def test_downgrade_with_data_is_refused_unless_allowed(tmp_path: Path) -> None:
    assert vidpipe_db("upgrade", cwd=tmp_path).returncode == 0
    with sa.create_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}").begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO projects (id, prompt, style, aspect_ratio, target_clip_duration, "
            "target_scene_count, status) VALUES ('0123456789abcdef0123456789abcdef', 'p', 's', "
            "'16:9', 8, 3, 'draft')"
        )
    refused = vidpipe_db("downgrade", "base", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("vidpipe-db: error: Downgrade to base refused")
    assert "projects (1 row)" in refused.stderr
    assert vidpipe_db("current", cwd=tmp_path).stdout.strip() == HEAD

    allowed = vidpipe_db("downgrade", "base", "--allow-data-loss", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert vidpipe_db("current", cwd=tmp_path).stdout.startswith("none")


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error line of a failed command, after checking that it is one line and exit 1."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("vidpipe-db: error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_every_command_works_with_the_async_driver(
    dialect: str, database_url: sa.URL, tmp_path: Path
) -> None:
    url = url_text(as_async(database_url, dialect))
    shown = as_async(database_url, dialect).render_as_string(hide_password=True)

    def run(*args: str) -> str:
        result = vidpipe_db("--url", url, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert not result.stderr.strip() or "Traceback" not in result.stderr
        return result.stdout.strip()

    if dialect == "sqlite":
        sqlite3.connect(str(database_url.database)).close()  # empty, not missing (an error)
    assert run("current").startswith("none")
    assert run("upgrade") == f"{shown}: at {HEAD}"
    assert run("current") == HEAD
    assert "No new upgrade operations detected" in run("check")
    assert run("downgrade", "vidpipe_0002") == f"{shown}: at vidpipe_0002"
    assert run("stamp", "--purge", "vidpipe_0001") == f"{shown}: stamped vidpipe_0001"
    assert run("current") == "vidpipe_0001"
    assert run("stamp", "vidpipe_0002") == f"{shown}: stamped vidpipe_0002"
    assert run("upgrade") == f"{shown}: at {HEAD}"
    assert run("downgrade", "base", "--allow-data-loss") == f"{shown}: at base (no vidpipe tables)"


def test_history_and_heads_need_no_database(tmp_path: Path) -> None:
    """From an empty directory with a URL that could not be reached or even parsed."""
    history = vidpipe_db("history", cwd=tmp_path, url="not a url")
    heads = vidpipe_db("heads", cwd=tmp_path, url="not a url")
    assert history.returncode == 0, history.stderr
    assert heads.returncode == 0, heads.stderr
    revisions = [script.revision for script in SCRIPT.walk_revisions()]
    listed = [line.split(" -> ")[1].split()[0] for line in history.stdout.splitlines()]
    assert listed == revisions, history.stdout  # newest first, each once
    assert heads.stdout.split()[0] == HEAD
    assert not list(tmp_path.iterdir())


def test_stamp_purge_is_the_repair_the_error_names(tmp_path: Path) -> None:
    """Contradictory version rows: upgrade refuses and names `vidpipe-db stamp --purge`, which
    then repairs the table so that upgrades run again."""
    assert vidpipe_db("upgrade", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "vidpipe.db") as connection:
        connection.execute(f"INSERT INTO {VERSION_TABLE} VALUES ('vidpipe_0001')")
    refused = one_line_error(vidpipe_db("upgrade", cwd=tmp_path))
    assert "vidpipe-db stamp --purge <revision>" in refused

    repaired = vidpipe_db("stamp", "--purge", HEAD, cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stderr
    with sqlite3.connect(tmp_path / "vidpipe.db") as connection:
        assert connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [
            (HEAD,)
        ]
    assert vidpipe_db("upgrade", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "soon"])
def test_a_lock_timeout_that_cannot_work_is_a_one_line_error(value: str, tmp_path: Path) -> None:
    for command in (["upgrade"], ["downgrade", "base"], ["stamp", "base"]):
        error = one_line_error(vidpipe_db(*command, "--lock-timeout", value, cwd=tmp_path))
        assert f"lock_timeout must be a positive, finite number of seconds, got '{value}'" in error
    assert not (tmp_path / "vidpipe.db").exists()


def test_junk_in_the_version_table_is_a_one_line_error(
    engine: sa.Engine, database_url: sa.URL, dialect: str, tmp_path: Path
) -> None:
    """A value no revision id can be: a BLOB (only SQLite stores one in the VARCHAR column),
    or text with a line break in it. Every command that reads the table refuses it."""
    upgrade(engine)
    junk: object = b"\x00\xffjunk" if dialect == "sqlite" else "vidpipe_0004\nedited by hand"
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = :junk"), {"junk": junk})
    url = url_text(database_url)
    for command in (["upgrade"], ["current"], ["downgrade", "base"]):
        error = one_line_error(vidpipe_db("--url", url, *command, cwd=tmp_path))
        assert f"{VERSION_TABLE} holds {junk!r}"[:60] in error
        assert "which is not a revision id" in error


@pytest.fixture
def rollback_journal_file(tmp_path: Path) -> Path:
    """A vidpipe database at head in rollback-journal mode, as files from before this package
    are, alone in its directory."""
    path = tmp_path / "vidpipe.db"
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    return path


@pytest.mark.parametrize("command", ["current", "check"])
def test_a_read_only_command_leaves_a_sqlite_file_exactly_as_it_was(
    command: str, rollback_journal_file: Path
) -> None:
    before = hashlib.sha256(rollback_journal_file.read_bytes()).hexdigest()
    result = vidpipe_db(command, cwd=rollback_journal_file.parent)
    assert result.returncode == 0, result.stderr
    assert HEAD in result.stdout if command == "current" else "No new upgrade" in result.stdout
    assert hashlib.sha256(rollback_journal_file.read_bytes()).hexdigest() == before
    with sqlite3.connect(rollback_journal_file) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert sorted(p.name for p in rollback_journal_file.parent.iterdir()) == ["vidpipe.db"]


def test_read_only_commands_work_on_a_read_only_sqlite_file(rollback_journal_file: Path) -> None:
    with read_only(rollback_journal_file):
        current = vidpipe_db("current", cwd=rollback_journal_file.parent)
        checked = vidpipe_db("check", cwd=rollback_journal_file.parent)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == HEAD
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` unwritable for this user: the mode bits, and for root (whom they do not stop)
    the immutable attribute."""
    path.chmod(0o444)
    root = os.geteuid() == 0
    if root:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def test_read_only_commands_refuse_a_missing_file_naming_its_path(tmp_path: Path) -> None:
    """A mistyped path is an error (exit 1) for current as for check, not "never applied";
    nothing is created."""
    for command in ("current", "check"):
        error = one_line_error(vidpipe_db(command, cwd=tmp_path))
        assert f"no SQLite database file at vidpipe.db ({tmp_path.resolve() / 'vidpipe.db'})" in error
        assert "vidpipe-db upgrade" in error
    assert not list(tmp_path.iterdir())


def test_version_names_the_package_and_its_newest_revision(tmp_path: Path) -> None:
    result = vidpipe_db("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vidpipe-db {importlib.metadata.version('vidpipe-data')} (newest revision {HEAD})"


def test_every_command_has_a_description(tmp_path: Path) -> None:
    commands = next(action for action in _parser()._actions if action.dest == "command")
    for name, parser in commands.choices.items():  # type: ignore[union-attr]
        assert parser.description, name
    shown = vidpipe_db("upgrade", "--help", cwd=tmp_path).stdout
    assert "Never goes down" in " ".join(shown.split())


def test_every_run_setting_is_a_flag_with_its_documentation(tmp_path: Path) -> None:
    for command in ("upgrade", "downgrade", "stamp"):
        shown = " ".join(vidpipe_db(command, "--help", cwd=tmp_path).stdout.split())
        for option in run_options():
            assert option.flag in shown
            assert option.doc in shown


@pytest.mark.parametrize("option", [o for o in run_options() if o.metavar], ids=lambda o: o.name)
def test_a_bad_value_of_a_flag_is_a_one_line_error_naming_the_setting(option: object, tmp_path: Path) -> None:
    error = one_line_error(vidpipe_db("upgrade", option.flag, "soon; DROP TABLE x", cwd=tmp_path))  # type: ignore[attr-defined]
    assert option.name in error  # type: ignore[attr-defined]
    assert not (tmp_path / "vidpipe.db").exists()


def test_the_readmes_advice_for_heavy_traffic_works_with_flags(tmp_path: Path) -> None:
    result = vidpipe_db("upgrade", "--ddl-lock-timeout", "1s", "--ddl-retries", "10", "--ddl-retry-delay", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sqlite:///vidpipe.db: at {HEAD}"


def test_wrong_causes_are_named_in_one_line(tmp_path: Path) -> None:
    assert vidpipe_db("upgrade", cwd=tmp_path).returncode == 0
    errors = {
        "scheme": one_line_error(vidpipe_db("--url", "postgres://u@h/d", "current", cwd=tmp_path)),
        "directory": one_line_error(vidpipe_db("--url", f"sqlite:///{tmp_path}/no/x.db", "upgrade", cwd=tmp_path)),
        "down": one_line_error(vidpipe_db("upgrade", "vidpipe_0004", cwd=tmp_path)),
        "typo": one_line_error(vidpipe_db("upgrade", "vidpipe_00O4", cwd=tmp_path)),
    }
    assert "did you mean postgresql://?" in errors["scheme"]
    assert "No driver" not in errors["scheme"]
    assert f"its directory {tmp_path}/no does not exist" in errors["directory"]
    assert "past vidpipe_0004: upgrade never goes down" in errors["down"]
    assert "vidpipe-db downgrade vidpipe_0004" in errors["down"]
    assert "Did you mean vidpipe_0004?" in errors["typo"]
    assert vidpipe_db("current", cwd=tmp_path).stdout.strip() == HEAD
