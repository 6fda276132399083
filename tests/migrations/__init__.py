"""The revisions and the runs that apply them: idempotent, reversible without silent data loss,
surviving a crash, linted, of a derived kind, released unchanged, and written the way a
maintainer writes the next one."""
