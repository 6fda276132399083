"""The package as a host and a user meet it: the wheel, imports, the API, ``vidpipe-db``, run
settings and where they come from, secrets, a host's own Alembic project, the benchmarks."""
