"""The log's SQLite database: where it lives, how it is opened, and its versioned schema.

Several ponder processes may write at once: the database runs in WAL mode (readers never
block the writer) with a busy timeout (a writer waits for another instead of failing), and
every write is one short `BEGIN IMMEDIATE` transaction, so a process killed mid-run leaves
the file consistent and loses at most the write it was making. The schema version is
SQLite's `user_version`; opening a database applies the migrations it lacks, in one
transaction, and refuses one written by a newer ponder.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from ponder.config import APP_NAME
from ponder.errors import PonderError

BUSY_TIMEOUT_MS = 30_000
DB_NAME = "log.db"

MIGRATIONS: list[str] = [
    # 1: runs, their chains, and the sha256 of model files by path, size and mtime
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        created REAL NOT NULL,
        finished REAL,
        status TEXT NOT NULL,
        command TEXT NOT NULL,
        question TEXT NOT NULL,
        model TEXT NOT NULL,
        model_sha256 TEXT,
        effort TEXT,
        strategy TEXT NOT NULL,
        settings TEXT NOT NULL,
        sampling TEXT NOT NULL,
        seed INTEGER NOT NULL,
        cache_key TEXT,
        cached_from INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        conversation TEXT,
        turn INTEGER,
        answer TEXT,
        finish_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        thinking_tokens INTEGER,
        seconds REAL,
        chains_reused INTEGER NOT NULL DEFAULT 0,
        tokens_saved INTEGER NOT NULL DEFAULT 0,
        record TEXT
    );
    CREATE INDEX runs_cache ON runs(cache_key) WHERE cache_key IS NOT NULL;
    CREATE INDEX runs_created ON runs(created);
    CREATE TABLE chains (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        chain INTEGER NOT NULL,
        key TEXT NOT NULL,
        seed INTEGER NOT NULL,
        answer TEXT,
        text TEXT NOT NULL,
        thinking TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        confidence REAL,
        score REAL,
        finish_reason TEXT NOT NULL,
        stream_reason TEXT NOT NULL,
        sampled INTEGER NOT NULL DEFAULT 0,
        top_logprobs INTEGER NOT NULL DEFAULT 0,
        stream BLOB,
        reused_from INTEGER REFERENCES chains(id) ON DELETE SET NULL,
        reused_tokens INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX chains_run ON chains(run_id);
    CREATE INDEX chains_key ON chains(key) WHERE stream IS NOT NULL;
    CREATE INDEX chains_reused ON chains(reused_from) WHERE reused_from IS NOT NULL;
    CREATE TABLE files (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    """,
    # 2: who writes a run (process id and host name): a running run whose process is gone
    # from this host died mid-run (killed, or crashed) and is shown, and marked, as `died`
    """
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    ALTER TABLE runs ADD COLUMN host TEXT;
    """,
]


class LogError(PonderError):
    """The log database cannot be opened, read or written."""


def log_path() -> Path:
    """`$PONDER_LOG` (a file), else `log.db` in `$PONDER_HOME`, else the user data dir."""
    explicit = os.environ.get("PONDER_LOG")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("PONDER_HOME")
    base = Path(home).expanduser() if home else Path(platformdirs.user_data_dir(APP_NAME))
    return base / DB_NAME


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (and migrate) the log; LogError with one line when that is not possible."""
    if not create and not path.exists():
        raise LogError(f"no log at {path} yet", "runs are logged as they happen")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise LogError(f"cannot open the log {path}: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.row_factory = sqlite3.Row
        migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise LogError(f"cannot use the log {path}: {exc}") from None
    except LogError:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path | str = "the log") -> int:
    """Bring the schema up to date (all of it or nothing); returns the version."""
    if schema_version(conn) == len(MIGRATIONS):
        return len(MIGRATIONS)
    with transaction(conn):
        version = schema_version(conn)  # again: another process may have migrated meanwhile
        if version > len(MIGRATIONS):
            raise LogError(f"the log {path} was written by a newer ponder "
                           f"(schema {version}; this one knows {len(MIGRATIONS)})",
                           "upgrade ponder, or set PONDER_LOG to use another file")
        for number in range(version, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    return len(MIGRATIONS)


def _statements(script: str) -> Iterator[str]:
    """A script's statements, so that they run inside the caller's transaction
    (`executescript` would commit first)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (`BEGIN IMMEDIATE`): committed or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
