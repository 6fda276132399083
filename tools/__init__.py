"""Maintainer scripts (run from the repository root); not part of the wheel."""
