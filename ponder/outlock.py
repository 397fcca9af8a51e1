"""One writer per output file: an exclusive lock held for the whole run.

The lock is ``fcntl.flock`` on a hidden file next to the output (``.NAME.lock``), which
holds the pid of the run that owns it. Why not the `filelock` library (already installed
with huggingface-hub): its flock lock does not record who holds it, and a second run must
name that process; flock itself is a few lines. Why flock: the kernel drops it when the
process dies, so a run killed with SIGKILL never leaves a lock behind that blocks the next
one (the stale file, if any, is simply locked again). The output file itself is not the
lock because ``--resume`` replaces it atomically (a new inode) when it repairs it.

On systems without ``fcntl`` (Windows) runs are not locked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ponder.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_path(out: Path) -> Path:
    """The lock file of `out`: hidden, in the same directory."""
    return out.with_name(f".{out.name}.lock")


@contextlib.contextmanager
def hold(out: Path | None) -> Iterator[None]:
    """Hold the lock on `out` while the block runs (nothing for stdout, `None`).

    Raises InputError at once when another process holds it (naming its pid) or when the
    lock cannot be created (a missing or read-only directory).
    """
    if out is None or fcntl is None:
        yield
        return
    fd = acquire(out)
    try:
        yield
    finally:
        release(out, fd)


def acquire(out: Path) -> int:
    """Lock `out` for this process; the open descriptor keeps the lock."""
    path = lock_path(out)
    while True:
        fd = _open(path, out)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise InputError(f"{out} is being written by another ponder run ({who})",
                             "wait for it to finish, or choose another --out") from None
        if _is_current(fd, path):
            break
        os.close(fd)  # its holder released and removed it meanwhile: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def release(out: Path, fd: int) -> None:
    """Remove the lock file, then drop the lock (closing the descriptor drops it).

    Removing it first is safe: a run that opened it meanwhile finds, once it has the
    lock, that the file is gone and locks a new one.
    """
    with contextlib.suppress(OSError):
        lock_path(out).unlink()
    os.close(fd)


def _open(path: Path, out: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_current(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (not one removed by its last holder)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
