"""Run the Python examples of the documentation: README.md and every page under docs/.

Sybil's markdown parsers find the ```python blocks (and ``<!-- skip: next -->``); each page is
one pytest item that runs its blocks in order, in one namespace, in a fresh temporary working
directory, so ``sqlite:///vidpipe.db`` in an example lands there. One item per page rather
than Sybil's item per block: the blocks of a page build on each other, and pytest-xdist's
``worksteal`` may hand consecutive items of one file to different workers.

The root conftest.py installs :func:`page_collector` as its ``pytest_collect_file`` hook.
"""

import fnmatch
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import SkipTest

import pytest
from sybil import Document, Example
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

__all__ = ["DocExampleFailure", "page_collector"]

#: Environment variables that would point an example elsewhere than its own directory.
_ISOLATED_ENVIRONMENT = ("VIDPIPE_DATABASE_URL",)


class DocExampleFailure(Exception):
    """An example of a page raised: the page, the block's line and the error."""


def page_collector(*patterns: str) -> Callable[[Path, pytest.Collector], "PageFile | None"]:
    """A ``pytest_collect_file`` hook that collects the markdown pages whose path, relative
    to the rootdir, matches one of ``patterns`` (``fnmatch``: ``docs/*.md`` matches
    ``docs/reference/api.md`` too)."""

    def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> "PageFile | None":
        try:
            relative = file_path.relative_to(parent.config.rootpath).as_posix()
        except ValueError:
            return None
        if any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
            return PageFile.from_parent(parent, path=file_path)
        return None

    return pytest_collect_file


class PageFile(pytest.File):
    """A markdown page: one item that runs all of its examples."""

    def collect(self) -> Iterator[pytest.Item]:
        document = Document.parse(str(self.path), PythonCodeBlockParser(), SkipParser())
        examples = list(document.examples())
        if examples:
            yield PageExamples.from_parent(self, name="examples", examples=examples)


class PageExamples(pytest.Item):
    """The page's examples, run in order in a temporary working directory."""

    def __init__(self, *, examples: list[Example], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.examples = examples

    def runtest(self) -> None:
        try:
            with _working_directory():
                for example in self.examples:
                    try:
                        example.evaluate()
                    except SkipTest:
                        continue  # a ``skip: next`` with a reason: that block only
                    except Exception as exc:
                        raise DocExampleFailure(
                            f"{self.path.name}, the example at line {example.line}: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
        finally:
            # The page's engines and sessions go with it, before the next page runs here.
            self.examples[0].namespace.clear()

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, DocExampleFailure) and excinfo.value.__cause__ is not None:
            # The example's own traceback, whose lines are the page's (Sybil compiles each
            # block with the page's path and line numbers).
            cause = pytest.ExceptionInfo.from_exception(excinfo.value.__cause__)
            return f"{excinfo.value}\n\n{cause.getrepr(style='short')}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}: Python examples"


@contextmanager
def _working_directory() -> Iterator[None]:
    """A fresh temporary working directory, and no database URL from the environment."""
    saved = {name: os.environ.pop(name) for name in _ISOLATED_ENVIRONMENT if name in os.environ}
    previous = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="vidpipe-doc-") as directory:
        os.chdir(directory)
        try:
            yield
        finally:
            os.chdir(previous)
            os.environ.update(saved)
