"""A database URL's password never shows: not in exceptions, logs, or the CLI's output."""

import logging
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cli import alembic
from tests.databases import SERVER_URLS
from tests.fake_postgres import fake_postgres
from vidpipe.db import upgrade

SECRET = "Pw-9f3kQ-do-not-print"


def everything_said(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """The exception as a user could see it (message, repr, full chained traceback) and logs."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text])


def assert_kept_secret(url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
    """Fail the upgrade through the API and the CLI; return the CLI's output."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as raised:  # whatever the driver raises
        upgrade(url)
    assert SECRET not in everything_said(raised.value, caplog)

    result = alembic("upgrade", "head", cwd=tmp_path, url=url)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert SECRET not in output
    return output


@pytest.mark.postgresql
def test_postgresql_wrong_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with fake_postgres() as (port, received):
        url = f"postgresql+psycopg://vidpipe:{SECRET}@127.0.0.1:{port}/vidpipe"
        output = assert_kept_secret(url, tmp_path, caplog)
    assert received and set(received) == {SECRET}  # the password really went out
    assert "password authentication failed" in output


@pytest.mark.mariadb
def test_mariadb_wrong_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = sa.make_url(SERVER_URLS["mariadb"])
    url = server.set(password=SECRET).render_as_string(hide_password=False)
    output = assert_kept_secret(url, tmp_path, caplog)
    assert "Access denied" in output


@pytest.mark.sqlite
def test_sqlite_encrypted_url_passphrase(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite URLs carry a secret only as an SQLCipher passphrase; its driver is not installed."""
    output = assert_kept_secret(f"sqlite+pysqlcipher://:{SECRET}@/enc.db", tmp_path, caplog)
    assert "No driver for 'sqlite+pysqlcipher'" in output
