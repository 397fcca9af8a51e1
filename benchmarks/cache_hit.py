"""How fast a repeated question is answered from the log, against `ponder --help`.

    python benchmarks/cache_hit.py [--model smollm2-135m] [--repeats 5] [--log FILE]

With a temporary log (or `--log FILE`, kept), `ponder ask --json -e low` answers a question
once (that run is not timed), then the same command runs `--repeats` times, each in a new
process and answered from the log, alternating with `ponder --help` and with the floors:
`python -c pass`, `import typer, rich.console`, and a one-command Typer app (what any Typer
CLI pays to parse its options: Typer imports pydantic for that). Prints the median wall
seconds and CPU seconds (user + system, which a loaded machine does not inflate) of each,
and the cost of the cache hit over starting ponder. Every cached answer is checked to be
`"cached": true` and the same answer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is 12 + 30?"


TYPER_APP = """
import typer
app = typer.Typer()
@app.command()
def ask(question: str, n: int = 1, json_out: bool = typer.Option(False, "--json")) -> None:
    print(question)
@app.command()
def other() -> None:
    pass
app()
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one process."""
    cpu, started = _cpu(), time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=1800)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {proc.stderr.strip()}")
    return seconds, _cpu() - cpu, proc.stdout


def line(label: str, runs: list[tuple[float, float]]) -> str:
    wall = [w for w, _ in runs]
    cpu = [c for _, c in runs]
    return (f"{label:<28} median {statistics.median(wall):.2f}s wall, "
            f"{statistics.median(cpu):.2f}s cpu  "
            f"(wall {', '.join(f'{s:.2f}' for s in wall)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--log", type=Path, help="use (and keep) this log file")
    args = parser.parse_args()
    python = sys.executable
    ponder = [python, "-m", "ponder"]
    ask = [*ponder, "ask", "--json", "-e", "low", "-m", args.model, args.question]
    others = {
        "ponder --help": [*ponder, "--help"],
        "python -c pass": [python, "-c", "pass"],
        "import typer, rich.console": [python, "-c", "import typer, rich.console"],
        "one-command Typer app": [python, "-c", TYPER_APP, "ask", "hi", "--json"],
    }
    with tempfile.TemporaryDirectory(prefix="ponder-cache-") as tmp:
        log = args.log or Path(tmp) / "log.db"
        env = dict(os.environ, PONDER_LOG=str(log))
        first_seconds, _, out = timed(ask, env)
        first = json.loads(out)
        hits: list[tuple[float, float]] = []
        baselines: dict[str, list[tuple[float, float]]] = {name: [] for name in others}
        for _ in range(args.repeats):
            seconds, cpu, out = timed(ask, env)
            record = json.loads(out)
            if not record["cached"] or record["answer"] != first["answer"]:
                sys.exit(f"not a cache hit: {record}")
            hits.append((seconds, cpu))
            for name, command in others.items():
                baselines[name].append(timed(command, env)[:2])
    print(f"# cache_hit: {args.model}, {args.repeats} repeats, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, nice {os.nice(0)}")
    print(f"first ask ({'cached' if first['cached'] else 'model loaded, not cached'}): "
          f"{first_seconds:.2f}s, {first['usage']['completion_tokens']} tokens")
    print(line("cached ask", hits))
    for name, runs in baselines.items():
        print(line(name, runs))
    help_runs = baselines["ponder --help"]
    for i, what in ((0, "wall"), (1, "cpu")):
        extra = (statistics.median(r[i] for r in hits)
                 - statistics.median(r[i] for r in help_runs))
        print(f"the cache hit itself: {extra:+.2f}s {what} over starting ponder")


if __name__ == "__main__":
    main()
