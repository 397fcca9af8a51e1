"""Runs whose process died: the writer's pid and host on each run (schema 2), and a running
run whose process is gone from this host shown, and marked, as `died`."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.log import db
from ponder.log.db import connect, schema_version
from ponder.log.store import Store, iter_json, pid_alive, status_of

DEAD = 4_000_000  # above any pid_max: no such process
runner = CliRunner()


def run_fields(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"status": "running", "command": "ask", "question": "q?",
                            "model": "m", "strategy": "cot", "settings": {}, "sampling": {},
                            "seed": 0, "host": socket.gethostname()}
    return {**base, **fields}


def statuses(path: Path) -> dict[int, str]:
    conn = sqlite3.connect(path)
    return dict(conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall())


def test_schema_1_logs_gain_the_writer_columns_and_keep_their_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.db"
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:1])
    old = connect(path)
    old.execute("INSERT INTO runs (created, status, command, question, model, strategy, "
                "settings, sampling, seed) VALUES (1, 'running', 'ask', 'q?', 'm', 'cot', "
                "'{}', '{}', 0)")
    old.close()
    monkeypatch.undo()
    conn = connect(path)
    assert schema_version(conn) == len(db.MIGRATIONS) >= 2
    row = conn.execute("SELECT question, status, pid, host FROM runs").fetchone()
    assert tuple(row) == ("q?", "running", None, None)
    assert status_of(row) == "running"  # no writer known: it cannot be told dead


def test_a_running_run_whose_process_is_gone_is_marked_died(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    gone = store.add_run(run_fields(pid=DEAD))
    alive = store.add_run(run_fields(pid=os.getpid()))
    elsewhere = store.add_run(run_fields(pid=DEAD, host="another-host"))
    finished = store.add_run(run_fields(pid=DEAD, status="done"))
    rows = {int(r["id"]): r for r in store.runs()}
    assert status_of(rows[gone]) == "died" and status_of(rows[alive]) == "running"
    assert [d["status"] for d in iter_json([rows[gone], rows[finished]])] == ["died", "done"]
    assert store.mark_died() == 1
    assert statuses(store.path) == {gone: "died", alive: "running", elsewhere: "running",
                                    finished: "done"}
    assert store.mark_died() == 0


def test_the_liveness_test_is_injectable(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    run_id = store.add_run(run_fields(pid=os.getpid()))
    assert store.mark_died(alive=lambda pid: pid != os.getpid()) == 1
    assert statuses(store.path) == {run_id: "died"}


def test_pid_alive_knows_live_reaped_and_zombie_processes() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(DEAD)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)  # reaped (its pid is not reused this soon)
    if sys.platform.startswith("linux"):
        zombie = subprocess.Popen([sys.executable, "-c", "pass"])
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert not pid_alive(zombie.pid)
        zombie.wait()


def test_logs_list_and_show_say_a_dead_run_died(ponder_home: Path) -> None:
    store = Store(ponder_home / "log.db")
    run_id = store.add_run(run_fields(pid=DEAD))
    live = store.add_run(run_fields(pid=os.getpid()))
    store.close()
    listed = runner.invoke(app, ["logs", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].endswith("\tunfinished") and lines[1].endswith("\tdied")
    assert statuses(ponder_home / "log.db") == {run_id: "died", live: "running"}
    shown = runner.invoke(app, ["logs", "show", str(run_id)])
    assert "its process died mid-run" in shown.stderr
    shown = runner.invoke(app, ["logs", "show", str(live)])
    assert f"still running (process {os.getpid()})" in shown.stderr
