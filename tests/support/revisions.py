"""Facts about vidpipe's revision history, read from the scripts rather than written down twice."""

from alembic.script import ScriptDirectory

from vidpipe.db.migrate import alembic_config

SCRIPT = ScriptDirectory.from_config(alembic_config())
#: The newest revision; tests that reach head compare against this.
HEAD: str = SCRIPT.get_current_head()
