"""Other versions meeting this one: files older vidpipe and backend versions left behind, a
database ahead of the code, the previous release on the new schema, and a rolling deploy."""
