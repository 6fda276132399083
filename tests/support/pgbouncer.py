"""A real PgBouncer in front of the test PostgreSQL server, started and stopped by a test.

Each call starts its own ``pgbouncer`` process with its own ini in a temporary directory, on a
free local port, never the system service. A small server pool (2 connections for 8 clients)
makes clients share server connections, which is what strands session state under
``pool_mode = transaction``.
"""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

#: Where Debian's package installs it (not on a normal user's PATH).
PGBOUNCER_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")
#: Server connections per database/user pair: fewer than the concurrent clients of the tests.
POOL_SIZE = 2


#: How a test reaches the server: through PgBouncer in either pool mode, or directly.
ROUTES = ("transaction", "session", "direct")


@contextmanager
def route(name: str, database_url: sa.URL, directory: Path) -> Iterator[sa.URL]:
    """``database_url`` reached by route ``name``; without pgbouncer the test is skipped, or
    fails under ``VIDPIPE_REQUIRE_ALL_DIALECTS=1`` (an untested pooler is a failed one)."""
    if name == "direct":
        yield database_url
        return
    if pgbouncer_executable() is None:
        reason = "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
        if os.environ.get("VIDPIPE_REQUIRE_ALL_DIALECTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with pgbouncer(database_url, name, directory) as url:
        yield url


def pgbouncer_executable() -> str | None:
    """The pgbouncer binary, or None if it is not installed."""
    for candidate in PGBOUNCER_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@contextmanager
def pgbouncer(server: sa.URL, pool_mode: str, directory: Path) -> Iterator[sa.URL]:
    """Run PgBouncer in ``pool_mode`` before ``server``; yield ``server``'s URL through it."""
    executable = pgbouncer_executable()
    if executable is None:
        raise FileNotFoundError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    users = directory / "users.txt"
    users.write_text(f'"{server.username}" ""\n')
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={server.host} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        f"pool_mode = {pool_mode}\ndefault_pool_size = {POOL_SIZE}\n"
        "max_client_conn = 200\nserver_round_robin = 1\n"
        # What asyncpg and some drivers send at start-up and PgBouncer would otherwise refuse.
        "ignore_startup_parameters = extra_float_digits\n"
    )
    # PgBouncer refuses to run as root; it reads its ini before switching user, and logs to
    # stderr (a file opened here) because the new user could not open one in this directory.
    command = [executable, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(ini)]
    log = directory / "pgbouncer.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        yield server.set(host="127.0.0.1", port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited at start-up: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not listen on {port}: {log.read_text()}") from None
            time.sleep(0.05)
