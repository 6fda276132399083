"""Every test and module the README and the docs cite exists, so a citation cannot rot.

The pages prove their claims by naming tests: `test_locking.py::test_eight_processes_...` (file
and function), `tests/test_store.py` (a file, with or without its directory) or a bare
`test_a_run_that_...` (a function). A file is looked for by its name anywhere under tests/, so
moving test files between subpackages keeps their citations true; a renamed or deleted test
fails here, naming the page and the citation. The code they point at
(`vidpipe/db/dialects/mariadb.py`, `tools/release.py`, `benchmarks/write_load.py`,
`migrations/env.py`) must exist at that path.
"""

import re
from collections.abc import Iterable
from pathlib import Path

from tests.support.cli import REPO_ROOT

TESTS = REPO_ROOT / "tests"
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]

#: A citation in a code span: an optional directory, a test file, an optional ``::function``;
#: or a function alone.
_FILE_CITATION = re.compile(r"`(?:[\w./]*/)?(test_\w+\.py)(?:::(test_\w+))?`")
_FUNCTION_CITATION = re.compile(r"`(test_\w+)`")
_MODULE_CITATION = re.compile(r"`((?:vidpipe|tools|benchmarks|migrations)/[\w/.]+\.py)`")


def _definitions(files: Iterable[Path]) -> set[str]:
    names: set[str] = set()
    for path in files:
        names.update(re.findall(r"^\s*(?:async )?def (test_\w+)\(", path.read_text(), flags=re.M))
    return names


def missing_citations(text: str, tests: Path = TESTS) -> list[str]:
    """Each citation in ``text`` whose file or test function does not exist under ``tests``."""
    by_name: dict[str, list[Path]] = {}
    for path in tests.rglob("test_*.py"):
        by_name.setdefault(path.name, []).append(path)
    everywhere = _definitions(p for paths in by_name.values() for p in paths)
    missing = []
    for file_name, function in _FILE_CITATION.findall(text):
        if file_name not in by_name:
            missing.append(f"{file_name}: no such test file under tests/")
        elif function and function not in _definitions(by_name[file_name]):
            missing.append(f"{file_name}::{function}: no such test in {file_name}")
    for function in _FUNCTION_CITATION.findall(text):
        if function not in everywhere:
            missing.append(f"{function}: no such test under tests/")
    for module in _MODULE_CITATION.findall(text):
        if not (tests.parent / module).is_file():
            missing.append(f"{module}: no such file")
    return missing


def test_every_cited_test_exists() -> None:
    found = [
        f"{page.relative_to(REPO_ROOT)}: {line}"
        for page in PAGES
        for line in missing_citations(page.read_text())
    ]
    assert not found, "\n".join(found)


def test_a_citation_that_rotted_is_named() -> None:
    """The check above can fail: a renamed test, a deleted file, a bare name nobody defines, a
    module that moved."""
    text = (
        "`test_locking.py::test_eight_processes_upgrade_one_database_at_once` and "
        "`vidpipe/db/dialects/mariadb.py` hold; `test_locking.py::test_nine_processes`, "
        "`tests/test_lighting.py`, `test_nobody_wrote_this` and `vidpipe/db/index_builds.py` do "
        "not."
    )
    assert missing_citations(text) == [
        "test_locking.py::test_nine_processes: no such test in test_locking.py",
        "test_lighting.py: no such test file under tests/",
        "test_nobody_wrote_this: no such test under tests/",
        "vidpipe/db/index_builds.py: no such file",
    ]
