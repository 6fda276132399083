"""The migration runner's machinery: what happens around and inside one Alembic run.

``migrations/env.py`` hands every run to :func:`vidpipe.db.runner.environment.run_migrations`;
the public entry points are :mod:`vidpipe.db.migrate` (the API) and :mod:`vidpipe.db.cli`
(``vidpipe-db``). Nothing here is imported by the models or the store.
"""
