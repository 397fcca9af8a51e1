"""One writer per output file: ponder.outlock on its own (the CLI rows are in the catalogue)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ponder import outlock
from ponder.errors import InputError


def test_held_then_released(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    with outlock.hold(out):
        assert outlock.lock_path(out).read_text(encoding="ascii") == f"{os.getpid()}\n"
        with pytest.raises(InputError) as busy, outlock.hold(out):
            pass
        assert str(busy.value) == (f"{out} is being written by another ponder run (pid "
                                   f"{os.getpid()}) (wait for it to finish, or choose "
                                   "another --out)")
    assert not outlock.lock_path(out).exists()
    with outlock.hold(out):  # free again
        pass


def test_stdout_needs_no_lock() -> None:
    with outlock.hold(None), outlock.hold(None):
        pass


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    code = ("import sys; from pathlib import Path; from ponder import outlock; "
            "outlock.acquire(Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=root, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    with pytest.raises(InputError, match=f"pid {proc.pid}"):
        outlock.acquire(out)
    proc.kill()
    proc.wait()
    assert outlock.lock_path(out).read_text(encoding="ascii").strip() == str(proc.pid)
    fd = outlock.acquire(out)  # the file is stale, the lock went with the process
    assert outlock.lock_path(out).read_text(encoding="ascii") == f"{os.getpid()}\n"
    outlock.release(out, fd)


def test_a_lock_file_removed_while_waiting_is_locked_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last holder removed the file between our open and our lock: lock a fresh one."""
    out = tmp_path / "r.jsonl"
    real_flock = fcntl.flock
    calls = {"n": 0}

    def flock(fd: int, op: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # the holder releases: removes the file, then unlocks
            outlock.lock_path(out).unlink()
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    fd = outlock.acquire(out)
    assert calls["n"] == 2
    assert os.fstat(fd).st_ino == outlock.lock_path(out).stat().st_ino
    outlock.release(out, fd)


def test_a_directory_that_cannot_hold_the_lock(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot write .*: No such file or directory"):
        outlock.acquire(tmp_path / "missing" / "r.jsonl")
