"""Problems per minute through an OpenAI-compatible server vs the same work in-process.

    python benchmarks/remote.py --model PATH [--limit 6] [--budget 96] [--threads 2]
                                [--repeat 2]

Starts llama-cpp-python's server (`python -m llama_cpp.server`) on a free loopback port
with the GGUF at PATH, solves the first K problems with `--effort low` and a token budget
through `--engine openai` at concurrency 1, 2 and 4 (problems sent from that many
threads), then the same problems with the in-process LlamaCppEngine (4 slots, shared by
the problems in flight) at the same concurrencies, and prints one table. Same seeds,
budget and thread count everywhere. The table is also written to
benchmarks/results/remote-<model>.txt (see --out).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.engines import Loaded  # noqa: E402
from ponder.engines.base import Sampling  # noqa: E402
from ponder.runner import drain, make_plan, make_task, run_plan  # noqa: E402

PROBLEMS = [
    "What is 17 + 25?", "What is 9 times 8?", "What is 100 minus 37?",
    "What is half of 64?", "What is 3 squared plus 4 squared?", "What is 12 divided by 4?",
    "How many minutes are in 3 hours?", "What is 15% of 200?",
]
CONCURRENCY = (1, 2, 4)


@dataclass
class Row:
    engine: str
    concurrency: int
    problems: int
    seconds: float
    tokens: int

    @property
    def per_minute(self) -> float:
        return 60.0 * self.problems / self.seconds

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def llama_server(model: Path, threads: int, n_ctx: int) -> Iterator[str]:
    """llama-cpp-python's server on loopback; yields its /v1 URL; always killed."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
           "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads",
           str(threads), "--n_threads_batch", str(threads), "--interrupt_requests", "False"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            time.sleep(0.25)
        else:
            raise SystemExit("llama_cpp.server did not start")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def solve(loaded: Loaded, question: str, seed: int, budget: int) -> int:
    """One problem, effort low with a token budget; returns the tokens it generated."""
    sampling = Sampling(seed=seed, max_tokens=loaded.engine.context_length)
    task = make_task(question, loaded, sampling, budget=budget)
    result = drain(run_plan(task, make_plan("low", None)))
    return result.completion_tokens


def measure(name: str, loaded: Loaded, problems: list[str], workers: int,
            args: argparse.Namespace) -> Row:
    """The fastest of --repeat runs (the machine may be shared)."""
    return min((_once(name, loaded, problems, workers, args.budget)
                for _ in range(args.repeat)), key=lambda row: row.seconds)


def _once(name: str, loaded: Loaded, problems: list[str], workers: int, budget: int) -> Row:
    work: Callable[[int], int] = lambda i: solve(loaded, problems[i], i, budget)  # noqa: E731
    started = time.perf_counter()
    if workers == 1:
        tokens = [work(i) for i in range(len(problems))]
    else:
        with ThreadPoolExecutor(workers) as pool:
            tokens = list(pool.map(work, range(len(problems))))
    return Row(name, workers, len(problems), time.perf_counter() - started, sum(tokens))


def remote_rows(model: Path, problems: list[str], args: argparse.Namespace) -> list[Row]:
    from ponder.engines.openai import OpenAIEngine, OpenAISettings

    rows = []
    with llama_server(model, args.threads, args.ctx) as url:
        engine = OpenAIEngine(OpenAISettings(url, context_length=args.ctx))
        loaded = Loaded(engine, engine.style, engine.model_name)
        solve(loaded, problems[0], 0, 8)  # warm-up: probes, prompt cache
        for workers in CONCURRENCY:
            rows.append(measure("openai (llama-cpp-python server)", loaded, problems,
                                workers, args))
            print(format_row(rows[-1]), flush=True)
        engine.close()
    return rows


def local_rows(model: Path, problems: list[str], args: argparse.Namespace) -> list[Row]:
    try:
        from ponder.engines.llamacpp import LlamaCppEngine
    except ImportError:
        print("in-process LlamaCppEngine not available: column left out", flush=True)
        return []
    engine = LlamaCppEngine(model, n_ctx=args.ctx, n_slots=max(CONCURRENCY),
                            n_threads=args.threads, n_threads_batch=args.threads)
    loaded = Loaded(engine, "prompted", model.name)
    solve(loaded, problems[0], 0, 8)
    rows = []
    for workers in CONCURRENCY:
        rows.append(measure("llama (in-process)", loaded, problems, workers, args))
        print(format_row(rows[-1]), flush=True)
    engine.close()
    return rows


def format_row(row: Row) -> str:
    return (f"{row.engine:<34} {row.concurrency:>4} {row.problems:>8} {row.seconds:>8.1f} "
            f"{row.per_minute:>12.1f} {row.tokens_per_second:>9.1f}")


HEADER = (f"{'engine':<34} {'conc':>4} {'problems':>8} {'seconds':>8} "
          f"{'problems/min':>12} {'tokens/s':>9}")


def table(rows: list[Row], args: argparse.Namespace, model: Path) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"benchmarks/remote.py --model {model.name} --limit {args.limit} "
        f"--budget {args.budget} --threads {args.threads} --repeat {args.repeat}",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; 1-min load average at the end: {load:.2f}",
        "work per problem: --effort low (one chain of thought), token budget as above, "
        "seed = problem index; each row is the fastest of --repeat runs",
        "", HEADER, "-" * len(HEADER), *(format_row(r) for r in rows),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="path to a GGUF file")
    parser.add_argument("--limit", type=int, default=6, help="problems to solve (max 8)")
    parser.add_argument("--budget", type=int, default=96, help="tokens per problem")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for llama.cpp")
    parser.add_argument("--repeat", type=int, default=2, help="runs per row; the best counts")
    parser.add_argument("--ctx", type=int, default=2048, help="context size")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to save the table [benchmarks/results/remote-<model>.txt]")
    args = parser.parse_args()
    model = args.model.expanduser()
    if not model.is_file():
        raise SystemExit(f"no such model file: {model}")
    problems = PROBLEMS[: max(1, min(args.limit, len(PROBLEMS)))]
    print(HEADER, flush=True)
    rows = remote_rows(model, problems, args) + local_rows(model, problems, args)
    text = table(rows, args, model)
    print("\n" + text, end="")
    stem = model.stem.split("-")[0].split(".")[0].lower()
    out = args.out or ROOT / "benchmarks" / "results" / f"remote-{stem}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"saved to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
