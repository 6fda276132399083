"""What each database does under a run: the migration lock, poolers, lock and statement
timeouts, the application writing during an upgrade, retries, a full disk, one class per
dialect."""
