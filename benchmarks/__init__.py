"""Benchmarks of the moments users feel this layer: start-up, saving, and migrating big databases.

Every row is a ratio to a baseline measured in the same run, never an absolute target.
"""
