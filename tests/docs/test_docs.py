"""The documentation's own checks: its examples run (and a broken one fails), the README stays a
landing page whose links lead somewhere, and every error the package raises has its entry in
the troubleshooting page. (The modules and tests the pages cite: tests/docs/test_docs_citations.py.)"""

import re
from pathlib import Path

import pytest

import vidpipe.db.errors

COLLECTOR = """\
from tests.support.doc_examples import page_collector

pytest_collect_file = page_collector("*.md")
"""


@pytest.fixture
def repo_root(pytestconfig: pytest.Config) -> Path:
    return pytestconfig.rootpath


@pytest.fixture
def pages(pytester: pytest.Pytester, repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of its own whose conftest collects its pages as the repository's does."""
    monkeypatch.setenv("PYTHONPATH", str(repo_root))
    pytester.makeconftest(COLLECTOR)
    return pytester.path


def run_pages(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")


def test_a_pages_examples_share_one_namespace_in_a_temporary_directory(
    pytester: pytest.Pytester, pages: Path, repo_root: Path
) -> None:
    (pages / "page.md").write_text(
        "# A page\n\n"
        "```python\nimport os\nfrom vidpipe.db import current_revision, upgrade\n"
        "upgrade('sqlite:///vidpipe.db')\n```\n\n"
        "Some prose, then a block that needs the first one's names and directory:\n\n"
        f"```python\nassert os.getcwd() not in ({str(pages)!r}, {str(repo_root)!r})\n"
        "assert current_revision('sqlite:///vidpipe.db') is not None\n```\n\n"
        "<!-- skip: next -->\n```python\nraise SystemExit('skipped')\n```\n\n"
        "```sh\nfalse\n```\n"
    )
    result = run_pages(pytester)
    result.assert_outcomes(passed=1)
    assert not (pages / "vidpipe.db").exists()


def test_a_broken_example_fails_naming_the_page_and_line(
    pytester: pytest.Pytester, pages: Path
) -> None:
    (pages / "broken.md").write_text(
        "# Broken\n\n```python\nfrom vidpipe.db import upgrade\n```\n\n"
        "```python\nupgrade('sqlite:///vidpipe.db', revision='vidpipe_0066')\n```\n"
    )
    result = run_pages(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*broken.md, the example at line 7: UnknownRevisionError: vidpipe has no revision "
            "'vidpipe_0066'. Did you mean vidpipe_0006?*",
            "*broken.md:8*",
        ]
    )


def test_a_page_with_a_python_example_is_collected_wherever_it_is(
    pytester: pytest.Pytester, pages: Path
) -> None:
    """The repository's conftest collects docs/*.md at any depth (docs/reference/api.md)."""
    (pages / "docs" / "reference").mkdir(parents=True)
    (pages / "docs" / "reference" / "deep.md").write_text("```python\nassert False\n```\n")
    run_pages(pytester).assert_outcomes(failed=1)


README_LINES = 250


def test_the_readme_is_a_landing_page(repo_root: Path) -> None:
    lines = (repo_root / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES, f"README.md has {len(lines)} lines; move topics to docs/"


def test_the_readmes_links_into_the_docs_lead_to_pages(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme)
    assert any(link.startswith("docs/") for link in links)
    assert sorted(link for link in links if not (repo_root / link).is_file()) == []


def undocumented_errors(page: str) -> list[str]:
    """The errors of vidpipe.db.errors that have no heading (`` ## `Name` ``) on ``page``."""
    headings = set(re.findall(r"^#+ `(\w+)`", page, flags=re.M))
    errors = [
        name
        for name in vidpipe.db.errors.__all__
        if isinstance(getattr(vidpipe.db.errors, name), type)
        and issubclass(getattr(vidpipe.db.errors, name), BaseException)
    ]
    assert errors
    return sorted(name for name in errors if name not in headings)


def test_every_error_the_package_defines_is_in_troubleshooting(repo_root: Path) -> None:
    page = (repo_root / "docs" / "troubleshooting.md").read_text()
    assert undocumented_errors(page) == []


def test_an_error_without_its_entry_is_named(repo_root: Path) -> None:
    page = (repo_root / "docs" / "troubleshooting.md").read_text()
    without = re.sub(r"^#+ `UnknownProjectError`.*$", "", page, flags=re.M)
    assert undocumented_errors(without) == ["UnknownProjectError"]
