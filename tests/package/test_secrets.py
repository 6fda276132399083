"""A database URL's password never shows: not in exceptions, logs, or the CLI's output."""

import logging
import traceback
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import sqlalchemy as sa

from tests.support.cli import alembic, vidpipe_db
from tests.support.databases import SERVER_URLS, dialect_params
from tests.support.fake_postgres import fake_postgres
from tests.support.revisions import HEAD
from vidpipe.db import DatabaseURLError, upgrade

SECRET = "Pw-9f3kQ-do-not-print"
#: A password with an "@" in it, and the parts an unencoded "@" would split it into.
AT_SECRET = "Pw-9f3kQ@do-not-print"
AT_PARTS = ("Pw-9f3kQ", "do-not-print")


def everything_said(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """The exception as a user could see it (message, repr, full chained traceback) and logs."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text])


def assert_kept_secret(
    url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    secrets: tuple[str, ...] = (SECRET,),
) -> str:
    """Fail the upgrade through the API, ``alembic`` and ``vidpipe-db``; return what the two
    commands said. No part of the password may show anywhere."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as raised:  # whatever the driver raises
        upgrade(url)
    said = [everything_said(raised.value, caplog)]
    for command in (alembic, vidpipe_db):
        result = command("upgrade", "head", cwd=tmp_path, url=url)
        assert result.returncode != 0
        said.append(result.stdout + result.stderr)
    for secret in secrets:
        for text in said:
            assert secret not in text
    return "\n".join(said[1:])


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


@pytest.mark.postgresql
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_postgresql_password_in_the_query_string(
    driver: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_postgres() as (port, received):
        url = f"postgresql+{driver}://vidpipe@127.0.0.1:{port}/vidpipe?password={SECRET}"
        output = assert_kept_secret(url, tmp_path, caplog)
    assert received and set(received) == {SECRET}
    assert "password authentication failed" in output


@pytest.mark.postgresql
def test_postgresql_percent_encoded_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    encoded = quote_plus(AT_SECRET)
    with fake_postgres() as (port, received):
        url = f"postgresql+psycopg://vidpipe:{encoded}@127.0.0.1:{port}/vidpipe"
        assert_kept_secret(url, tmp_path, caplog, (encoded, *AT_PARTS))
    assert received and set(received) == {AT_SECRET}  # decoded, as the driver sends it


@pytest.mark.mariadb
@pytest.mark.parametrize("driver", ["pymysql", "aiomysql"])
@pytest.mark.parametrize("where", ["query", "percent-encoded"])
def test_mariadb_password_in_other_forms(
    driver: str, where: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = sa.make_url(SERVER_URLS["mariadb"]).set(drivername=f"mariadb+{driver}")
    plain = server.render_as_string(hide_password=False)
    if where == "query":
        url, secrets = f"{plain}?password={SECRET}", (SECRET,)
    else:
        encoded = quote_plus(AT_SECRET)
        url, secrets = plain.replace("root@", f"root:{encoded}@"), (encoded, *AT_PARTS)
    output = assert_kept_secret(url, tmp_path, caplog, secrets)
    assert "Access denied" in output


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://vidpipe:{AT_SECRET}@127.0.0.1:5432/vidpipe",
        f"postgresql+asyncpg://vidpipe:{AT_SECRET}@127.0.0.1:5432/vidpipe",
        f"mariadb+pymysql://root:{AT_SECRET}@127.0.0.1:3306/test",
        f"mariadb+aiomysql://root:{AT_SECRET}@127.0.0.1:3306/test",
    ],
)
def test_an_unencoded_at_in_the_password_is_refused_unechoed(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The parser splits at the first "@", so the rest of the password became the host and
    every driver error showed it ("failed to resolve host 'do-not-print@127.0.0.1'")."""
    output = assert_kept_secret(url, tmp_path, caplog, AT_PARTS)
    assert "must write it percent-encoded, as %40" in output
    with pytest.raises(DatabaseURLError, match="more than one '@'"):
        upgrade(url)


@pytest.mark.parametrize("dialect", dialect_params("postgresql"), indirect=True)
def test_a_successful_run_does_not_print_a_query_string_password(
    database_url: sa.URL, tmp_path: Path
) -> None:
    """The test server trusts local connections, so the password is sent and ignored."""
    url = f"{database_url.render_as_string(hide_password=False)}?password={SECRET}"
    for command in (vidpipe_db, alembic):
        for args in (("upgrade", "head"), ("current",), ("check",)):
            result = command(*args, cwd=tmp_path, url=url)
            assert result.returncode == 0, result.stderr
            assert SECRET not in result.stdout + result.stderr
    shown = vidpipe_db("upgrade", cwd=tmp_path, url=url).stdout
    assert shown.strip() == f"{database_url.render_as_string(hide_password=True)}: at {HEAD}"
