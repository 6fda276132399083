"""The tests show their shape: test modules import helpers from tests/support/, never from
each other, and every module outside tests/support/ is a test, a conftest or a package's
``__init__``."""

import ast
from pathlib import Path

import pytest

from tests.support.cli import REPO_ROOT

#: The only modules allowed outside tests/support/, besides test_*.py.
NOT_HELPERS = ("conftest.py", "__init__.py")


def imported_modules(path: Path, tests_dir: Path) -> set[str]:
    """Every module ``path`` imports (for ``from M import N``, both M and M.N, since N may be a
    module), relative imports resolved against its place under ``tests_dir``."""
    package = [tests_dir.name, *path.relative_to(tests_dir).parent.parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *filter(None, [node.module])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def layout_problems(tests_dir: Path) -> list[str]:
    """What breaks the layout under ``tests_dir``, one line per file and problem."""
    problems = []
    for path in sorted(tests_dir.rglob("*.py")):
        place = path.relative_to(tests_dir.parent)
        in_support = path.is_relative_to(tests_dir / "support")
        if not in_support and not (path.name.startswith("test_") or path.name in NOT_HELPERS):
            problems.append(f"{place} is a helper outside {tests_dir.name}/support/: move it there")
        for module in sorted(imported_modules(path, tests_dir)):
            parts = module.split(".")
            if parts[0] == tests_dir.name and parts[-1].startswith("test_"):
                problems.append(
                    f"{place} imports the test module {module}: move what it shares to "
                    f"{tests_dir.name}/support/"
                )
    return problems


def test_no_test_imports_another_and_helpers_live_in_support() -> None:
    problems = layout_problems(REPO_ROOT / "tests")
    assert not problems, "\n".join(problems)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "tests"


#: A layout that holds: a test of an area using a helper and a conftest fixture.
GOOD = {
    "tests/__init__.py": "",
    "tests/conftest.py": "from tests.support.rows import ROWS\n",
    "tests/support/__init__.py": "",
    "tests/support/rows.py": "ROWS = []\n",
    "tests/store/__init__.py": "",
    "tests/store/test_rows.py": "from tests.support.rows import ROWS\nfrom . import conftest\n",
}


def test_a_good_layout_has_no_problem(tmp_path: Path) -> None:
    assert layout_problems(write(tmp_path, GOOD)) == []


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (
            "tests/store/test_more.py",
            "from tests.store.test_rows import ROWS\n",
            "tests/store/test_more.py imports the test module tests.store.test_rows",
        ),
        (
            "tests/store/test_more.py",
            "from tests.store import test_rows\n",
            "tests/store/test_more.py imports the test module tests.store.test_rows",
        ),
        (
            "tests/store/test_more.py",
            "from .test_rows import ROWS\n",
            "tests/store/test_more.py imports the test module tests.store.test_rows",
        ),
        (
            "tests/test_top.py",
            "import tests.store.test_rows\n",
            "tests/test_top.py imports the test module tests.store.test_rows",
        ),
        (
            "tests/support/harness.py",
            "from ..store.test_rows import ROWS\n",
            "tests/support/harness.py imports the test module tests.store.test_rows",
        ),
        (
            "tests/store/builders.py",
            "ROWS = []\n",
            "tests/store/builders.py is a helper outside tests/support/",
        ),
    ],
    ids=["from-module", "from-package", "relative", "import", "support", "helper"],
)
def test_a_bad_layout_is_named(tmp_path: Path, name: str, text: str, problem: str) -> None:
    problems = layout_problems(write(tmp_path, {**GOOD, name: text}))
    assert len(problems) == 1 and problems[0].startswith(problem), problems
