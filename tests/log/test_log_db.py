"""The log database: where it lives, WAL, and self-migrating versioned schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ponder.log import db
from ponder.log.db import LogError, connect, log_path, schema_version


def test_the_log_lives_in_ponder_home_or_where_ponder_log_says(
        ponder_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert log_path() == ponder_home / "log.db"
    monkeypatch.setenv("PONDER_LOG", str(tmp_path / "elsewhere.db"))
    assert log_path() == tmp_path / "elsewhere.db"


def test_a_new_log_has_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    conn = connect(tmp_path / "a" / "log.db")
    assert schema_version(conn) == len(db.MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "chains", "files"} <= tables


def test_an_older_log_is_migrated_and_keeps_its_runs(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.db"
    conn = connect(path)
    conn.execute("INSERT INTO runs (created, status, command, question, model, strategy, "
                  "settings, sampling, seed) VALUES (1, 'done', 'ask', 'q?', 'm', 'cot', "
                  "'{}', '{}', 0)")
    conn.close()
    newer = [*db.MIGRATIONS, "ALTER TABLE runs ADD COLUMN tags TEXT;\n"
             "UPDATE runs SET tags = 'migrated';"]
    monkeypatch.setattr(db, "MIGRATIONS", newer)
    conn = connect(path)
    assert schema_version(conn) == len(newer)
    rows = conn.execute("SELECT question, tags FROM runs").fetchall()
    assert [tuple(r) for r in rows] == [("q?", "migrated")]


def test_a_failing_migration_changes_nothing(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.db"
    connect(path).close()
    version = len(db.MIGRATIONS)
    broken = [*db.MIGRATIONS, "CREATE TABLE extra (x);\nTHIS IS NOT SQL;"]
    monkeypatch.setattr(db, "MIGRATIONS", broken)
    with pytest.raises(LogError, match="cannot use the log"):
        connect(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == version
    names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}
    assert "extra" not in names


def test_a_log_from_a_newer_ponder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(db.MIGRATIONS) + 5}")
    raw.close()
    with pytest.raises(LogError, match="written by a newer ponder"):
        connect(path)


def test_reading_a_missing_log_does_not_create_it(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="no log"):
        connect(tmp_path / "log.db", create=False)
    assert not (tmp_path / "log.db").exists()
