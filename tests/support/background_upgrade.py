"""An ``alembic upgrade head`` running in a process of its own while a test acts around it, and
waiting, without timing, for what it (or anything else) does to the database."""

import subprocess
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from tests.support.cli import start_alembic

#: How long a test waits for something the other sessions must do; a failure, not a timing.
PATIENCE = 120.0


class Upgrade(threading.Thread):
    """``alembic [OPTIONS] upgrade head`` in its own process; a thread collects its log."""

    def __init__(self, url: sa.URL, cwd: Path, *options: str) -> None:
        super().__init__(daemon=True)
        self.url = url.render_as_string(hide_password=False)
        self.cwd = cwd
        self.options = options
        self.log: list[str] = []
        self.result: subprocess.CompletedProcess[str] | None = None

    def run(self) -> None:
        process = start_alembic(*self.options, "upgrade", "head", cwd=self.cwd, url=self.url)
        assert process.stderr is not None
        for line in process.stderr:
            self.log.append(line)
        returncode = process.wait()
        self.result = subprocess.CompletedProcess(process.args, returncode, "", "".join(self.log))

    def logged(self, text: str) -> None:
        """Wait until the upgrade has logged a line holding ``text``."""
        deadline = time.monotonic() + PATIENCE
        while not any(text in line for line in list(self.log)):
            assert self.is_alive(), f"the upgrade ended without logging {text!r}"
            assert time.monotonic() < deadline, f"the upgrade never logged {text!r}"
            time.sleep(0.05)

    def finished(self) -> subprocess.CompletedProcess[str]:
        self.join(PATIENCE)
        assert self.result is not None, "the upgrade did not finish"
        return self.result


def wait_for(engine: sa.Engine, query: str, what: str) -> object:
    """Poll ``query`` until it returns a row; its first column."""
    deadline = time.monotonic() + PATIENCE
    with engine.connect() as connection:
        while True:
            found = connection.exec_driver_sql(query).first()
            connection.rollback()
            if found is not None:
                return found[0]
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.05)
