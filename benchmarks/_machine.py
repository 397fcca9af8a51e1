"""The machine a benchmark ran on, for the header of its results."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

FLAGS = ("avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "f16c", "fma")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [f for f in FLAGS if f in present]
    except OSError:
        pass
    return []


def uptime() -> str:
    """`uptime`'s line (the load averages), or the load averages alone."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        return "load average: " + ", ".join(f"{x:.2f}" for x in load)


def header_lines() -> list[str]:
    """CPU, cores, instruction sets, llama.cpp build and the load right now."""
    import llama_cpp

    system = llama_cpp.llama_print_system_info().decode(errors="replace").strip(" |")
    return [
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, "
        f"flags {' '.join(cpu_flags()) or '-'}",
        f"llama-cpp-python {llama_cpp.__version__}; llama.cpp build: {system}",
        f"uptime: {uptime()}",
    ]
