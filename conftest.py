"""Collect the documentation's Python examples (README.md and docs/) as tests: each page runs
its ```python blocks in order against SQLite (tests/support/doc_examples.py)."""

from tests.support.doc_examples import page_collector

# pytester: tests/docs/test_docs.py runs the collector on pages of its own.
pytest_plugins = ["pytester"]

pytest_collect_file = page_collector("README.md", "docs/*.md")
