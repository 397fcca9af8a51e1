"""The run log on the real SmolLM2-135M GGUF (integration): the cache and chain reuse on a
real engine, two processes writing at once, and a process killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.models import smollm2_path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model() -> Path:
    return smollm2_path()


def ponder(*args: str, home: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PONDER_HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "ponder", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[str]) -> str:
    stdout, stderr = proc.communicate(timeout=1800)
    assert proc.returncode == 0, stderr
    return stdout


def problems(path: Path, count: int, tag: str) -> Path:
    path.write_text("".join(json.dumps({"id": f"{tag}{i}", "question": f"What is {i} + {tag}?"})
                            + "\n" for i in range(count)), encoding="utf-8")
    return path


def check_consistent(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finished_without_chains = conn.execute(
        "SELECT count(*) FROM runs WHERE status = 'done' AND cached_from IS NULL AND id NOT IN "
        "(SELECT run_id FROM chains)").fetchone()
    assert finished_without_chains == (0,)
    return conn


def test_cache_and_reuse_on_a_real_model(model: Path, tmp_path: Path) -> None:
    args = ["ask", "--json", "--model", str(model), "--seed", "5", "-s", "vote",
            "--budget", "1500"]
    first = json.loads(finish(ponder(*args, "-o", "n=2", "What is 3 + 4?", home=tmp_path)))
    more = json.loads(finish(ponder(*args, "-o", "n=3", "What is 3 + 4?", home=tmp_path)))
    assert more["reuse"]["chains"] == 2
    for old, new in zip(first["samples"], more["samples"], strict=False):
        if old["finish_reason"] in ("eos", "stop"):  # replayed as it was
            assert (new["tokens"], new["answer"]) == (old["tokens"], old["answer"])
        else:  # cut short by the budget: continued, the logged part not paid for again
            assert new["tokens"] >= old["tokens"]
    new_tokens = sum(s["tokens"] for s in more["samples"]) - more["reuse"]["tokens_saved"]
    assert more["usage"]["completion_tokens"] >= new_tokens >= more["samples"][2]["tokens"]
    started = time.monotonic()
    again = json.loads(finish(ponder(*args, "-o", "n=3", "What is 3 + 4?", home=tmp_path)))
    assert again["cached"] is True and again["answer"] == more["answer"]
    assert time.monotonic() - started < 60  # no model run (the machine may be busy)
    conn = check_consistent(tmp_path / "log.db")
    assert conn.execute("SELECT model, length(model_sha256) FROM runs WHERE id = 1"
                        ).fetchone() == ("smollm2-135m", 64)


def test_no_log_writes_nothing(model: Path, tmp_path: Path) -> None:
    finish(ponder("ask", "--no-log", "--model", str(model), "--budget", "8", "Hi?",
                  home=tmp_path))
    assert not (tmp_path / "log.db").exists()


def test_two_processes_writing_at_once_lose_nothing(model: Path, tmp_path: Path) -> None:
    procs = [ponder("solve", str(problems(tmp_path / f"{tag}.jsonl", 4, tag)), "--model",
                    str(model), "--budget", "12", "--concurrency", "2", home=tmp_path)
             for tag in ("a", "b")]
    outputs = [finish(p) for p in procs]
    assert all(len(out.splitlines()) == 4 for out in outputs)
    conn = check_consistent(tmp_path / "log.db")
    rows = conn.execute("SELECT command, status FROM runs").fetchall()
    assert sorted(rows) == [("solve", "done")] * 8
    ids = {json.loads(line)["log_id"] for out in outputs for line in out.splitlines()}
    assert len(ids) == 8


def test_a_process_killed_mid_run_leaves_the_log_consistent(model: Path, tmp_path: Path
                                                            ) -> None:
    proc = ponder("solve", str(problems(tmp_path / "k.jsonl", 40, "k")), "--model", str(model),
                  "--budget", "12", "--concurrency", "2", home=tmp_path)
    db = tmp_path / "log.db"
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and _done(db) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    conn = check_consistent(db)
    done = _done(db)
    assert 3 <= done < 40
    after = finish(ponder("ask", "--json", "--model", str(model), "--budget", "8", "Hi?",
                          home=tmp_path))
    assert json.loads(after)["log_id"] > done
    killed = conn.execute("SELECT count(*) FROM runs WHERE status = 'running' AND pid = ?",
                          [proc.pid]).fetchone()[0]
    listed = finish(ponder("logs", "list", "-n", "100", home=tmp_path))
    assert listed.count("\tdied") == killed and "unfinished" not in listed
    by_status = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status"))
    died = {"died": killed} if killed else {}  # the problems it was solving when killed
    assert by_status == {"done": done + 1, **died}  # marked in the log, too


def _done(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=30)
        return int(conn.execute("SELECT count(*) FROM runs WHERE status = 'done'"
                                ).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
