"""How many CPU cores are free right now: the default thread count of the llama.cpp engine."""

from __future__ import annotations

import os
import time


def free_cores() -> int:
    """CPU cores this process may use that are not busy right now (at least 1).

    Busy = CPU time used by other processes over a short window (/proc/stat minus this
    process's own share), so a neighbour's build or model run lowers the thread count while
    the 1-minute load average of work that already ended does not.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, round(cores - busy_cpus())))


def _read_cpu_times() -> tuple[int, int]:
    """(total, idle) jiffies of the whole machine."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


def busy_cpus(interval: float = 0.3) -> float:
    """How many CPUs other processes keep busy, measured over `interval` seconds."""
    try:
        total0, idle0 = _read_cpu_times()
        own0 = time.process_time()
        wall0 = time.perf_counter()
        time.sleep(interval)
        total1, idle1 = _read_cpu_times()
        own = (time.process_time() - own0) / max(time.perf_counter() - wall0, 1e-6)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    elapsed = total1 - total0
    if elapsed <= 0:
        return 0.0
    busy = (1.0 - (idle1 - idle0) / elapsed) * (os.cpu_count() or 1)
    return max(0.0, busy - own)
