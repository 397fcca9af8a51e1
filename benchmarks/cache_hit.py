"""How fast a repeated question is answered from the log, against `ponder --help`.

    python benchmarks/cache_hit.py [--model smollm2-135m] [--repeats 5]

With a temporary log, `ponder ask --json -e low` answers a question once (that run is not
timed), then the same command runs `--repeats` times, each in a new process and answered
from the log, alternating with `ponder --help` (Python, Typer and ponder's imports; no
work). Prints the median wall seconds of both and their difference: the cost of the cache
hit itself. Every cached answer is checked to be `"cached": true` and the same answer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is 12 + 30?"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=1800)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {proc.stderr.strip()}")
    return seconds, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ponder = [sys.executable, "-m", "ponder"]
    ask = [*ponder, "ask", "--json", "-e", "low", "-m", args.model, QUESTION]
    with tempfile.TemporaryDirectory(prefix="ponder-cache-") as tmp:
        env = dict(os.environ, PONDER_LOG=str(Path(tmp) / "log.db"))
        first_seconds, out = timed(ask, env)
        first = json.loads(out)
        hits, helps = [], []
        for _ in range(args.repeats):
            seconds, out = timed(ask, env)
            record = json.loads(out)
            if not record["cached"] or record["answer"] != first["answer"]:
                sys.exit(f"not a cache hit: {record}")
            hits.append(seconds)
            helps.append(timed([*ponder, "--help"], env)[0])
    hit, baseline = statistics.median(hits), statistics.median(helps)
    print(f"# cache_hit: {args.model}, {args.repeats} repeats, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"first ask (model loaded, not cached): {first_seconds:.2f}s, "
          f"{first['usage']['completion_tokens']} tokens")
    print(f"cached ask:    median {hit:.2f}s wall  ({', '.join(f'{s:.2f}' for s in hits)})")
    print(f"ponder --help: median {baseline:.2f}s wall  ({', '.join(f'{s:.2f}' for s in helps)})")
    print(f"the cache hit itself: {hit - baseline:+.2f}s over starting ponder")


if __name__ == "__main__":
    main()
