"""``vidpipe-db``, the console command installed with the package, run as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.revisions import HEAD
from vidpipe.db import VERSION_TABLE

VIDPIPE_DB = Path(sys.executable).with_name("vidpipe-db")


def vidpipe_db(*args: str, cwd: Path, url: str | None = None) -> subprocess.CompletedProcess:
    """The installed console script, with ``$VIDPIPE_DATABASE_URL`` = url (unset if None)."""
    env = {k: v for k, v in os.environ.items() if k != "VIDPIPE_DATABASE_URL"}
    if url is not None:
        env["VIDPIPE_DATABASE_URL"] = url
    return subprocess.run(
        [str(VIDPIPE_DB), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_help_says_where_the_url_comes_from(tmp_path: Path) -> None:
    result = vidpipe_db("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--url, else $VIDPIPE_DATABASE_URL, else sqlite:///vidpipe.db" in result.stdout
    for command in ("upgrade", "downgrade", "current", "check", "sql"):
        assert command in result.stdout


def test_upgrade_current_check_downgrade_on_the_default_database(tmp_path: Path) -> None:
    assert vidpipe_db("current", cwd=tmp_path).stdout.startswith("none")
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
