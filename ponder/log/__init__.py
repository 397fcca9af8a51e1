"""ponder's log: every run in a local SQLite database, the cache, and chains to build on.

`db` opens and migrates the database, `store` reads and writes it, `keys` says what makes
runs and chains the same, and `session` is what the commands use.
"""
