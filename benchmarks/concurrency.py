"""Problems per minute of `ponder solve` on the in-process engine, by --concurrency.

    python benchmarks/concurrency.py --model ID_OR_PATH [--data FILE] [--limit 16]
        [--effort low] [--budget N] [--concurrency 1 2 4 8] [--slots 8] [--ctx 2048]
        [--threads 2] [--out FILE]

The model is loaded once, with --slots slots. For each concurrency K, in one run, the first
--limit problems of DATA (JSON lines with `question` and `answer`) are solved as
`ponder solve --concurrency K` solves them: `batch.run_batch` with K worker threads, so the
chains of up to K problems share each decode batch of the one llama.cpp context. Same seed
(0, as `ponder solve`), sampling (the family's, greedy for one-chain efforts on instruct
models, as `ponder solve`), effort and budget for every K. Prints per K: seconds,
problems/min, tokens/s, accuracy, the share of decode steps that served more than one
problem, and the speed-up over the first K; ends with `concurrency=K speedup=X.XX` for the
largest K.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder import batch  # noqa: E402
from ponder.cli._engine import sampling_for  # noqa: E402
from ponder.engines import EngineOptions, Loaded, load_engine  # noqa: E402
from ponder.problems import Problem, load_problems  # noqa: E402
from ponder.records import Record, RecordWriter  # noqa: E402
from ponder.runner import make_plan  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gsm8k-dev.jsonl"


@dataclass
class Row:
    concurrency: int
    seconds: float
    records: list[Record]
    figures: dict[str, float]

    @property
    def tokens(self) -> int:
        return sum(int(r.get("tokens") or 0) for r in self.records)

    @property
    def correct(self) -> int:
        return sum(r.get("correct") is True for r in self.records)

    def line(self, base: Row) -> str:
        n, f = len(self.records), self.figures
        shared = f["shared"] / f["steps"] if f["steps"] else 0.0
        rest = self.seconds - f["decode_s"] - f["prefill_s"]
        return (f"{self.concurrency:>4} {n:>8} {self.seconds:>8.1f} "
                f"{60 * n / self.seconds:>12.1f} {self.tokens / self.seconds:>9.1f} "
                f"{self.correct:>4}/{n:<3} {shared:>7.0%} {f['batch']:>6.1f} "
                f"{f['ms_per_decode']:>7.1f} {f['prefill_s']:>8.1f} {rest:>6.1f} "
                f"{base.seconds / self.seconds:>8.2f}x")


HEADER = (f"{'conc':>4} {'problems':>8} {'seconds':>8} {'problems/min':>12} {'tokens/s':>9} "
          f"{'correct':>8} {'shared':>7} {'batch':>6} {'ms/dec':>7} {'prefill':>8} "
          f"{'other':>6} {'speedup':>9}")


class StepCounter:
    """Counts, by wrapping the engine's methods: steps and those that served several
    generations (from each generation's stats), and the calls, tokens and seconds of
    llama_decode, prompt evaluation apart."""

    def __init__(self, engine: Any) -> None:
        self.stats: list[Any] = []
        self.calls = self.tokens = 0
        self.decode_s = self.prefill_s = 0.0
        context, slots = engine.context, engine.slots
        start, decode, prefill = engine.start, context.decode, slots.prefill

        def counting_start(*args: Any, **kwargs: Any) -> Any:
            gen = start(*args, **kwargs)
            self.stats.append(gen.stats)
            return gen

        def timed_decode(n_tokens: int) -> None:
            t0 = time.perf_counter()
            decode(n_tokens)
            self.calls += 1
            self.tokens += n_tokens
            self.decode_s += time.perf_counter() - t0

        def timed_prefill(*args: Any) -> Any:
            t0 = time.perf_counter()
            calls, tokens, decode_s = self.calls, self.tokens, self.decode_s
            done = prefill(*args)
            self.calls, self.tokens, self.decode_s = calls, tokens, decode_s
            self.prefill_s += time.perf_counter() - t0
            return done

        engine.start, context.decode, slots.prefill = counting_start, timed_decode, timed_prefill

    def reset(self) -> None:
        self.stats = []
        self.calls = self.tokens = 0
        self.decode_s = self.prefill_s = 0.0

    def take(self) -> dict[str, float]:
        figures = {
            "steps": sum(s.steps for s in self.stats),
            "shared": sum(s.shared_steps for s in self.stats),
            "batch": self.tokens / max(self.calls, 1),
            "ms_per_decode": 1000 * self.decode_s / max(self.calls, 1),
            "decode_s": self.decode_s,
            "prefill_s": self.prefill_s,
        }
        self.reset()
        return figures


def run(loaded: Loaded, problems: list[Problem], setup: batch.Setup, workers: int,
        counter: StepCounter) -> Row:
    writer = RecordWriter(None, "nowhere")
    started = time.perf_counter()
    outcome = batch.run_batch(problems, setup, writer, None, workers)
    seconds = time.perf_counter() - started
    return Row(workers, seconds, outcome.records, counter.take())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = load_problems(Path(args.data))[: args.limit]
    loaded = load_engine("llama", EngineOptions(model=args.model, n_ctx=args.ctx,
                                                slots=args.slots, threads=args.threads))
    engine = loaded.engine
    plan = make_plan(args.effort, None, {})
    sampling = sampling_for(loaded, 0, None, single_chain=plan.spec.single_chain)
    setup = batch.Setup(loaded, plan, sampling, args.budget)
    counter = StepCounter(engine)
    batch.run_batch(problems[:1], setup, RecordWriter(None, "nowhere"))  # warm-up
    counter.take()
    print(HEADER, flush=True)
    rows: list[Row] = []
    for k in args.concurrency:
        rows.append(run(loaded, problems, setup, k, counter))
        print(rows[-1].line(rows[0]), flush=True)
    text = report(args, loaded, plan.spec.name, rows)
    print("\n" + text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


def report(args: argparse.Namespace, loaded: Loaded, strategy: str, rows: list[Row]) -> str:
    engine: Any = loaded.engine
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    last = rows[-1]
    lines = [
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
        f"model: {loaded.model_id}; effort {args.effort} ({strategy}), token budget per "
        f"problem {args.budget or 'none'}; slots {engine.n_slots}, ctx {args.ctx}, threads "
        f"{engine.n_threads}, flash attention {engine.flash_attn}",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; 1-min load average at the end: {load:.2f}",
        "shared = decode steps whose batch held sequences of more than one problem; batch = "
        "mean tokens per llama_decode call (prompts apart); ms/dec = mean ms per call; "
        "prefill = seconds evaluating prompts; other = seconds outside llama_decode and "
        "prompts (Python, sampling, waiting)",
        "", HEADER, "-" * len(HEADER), *(r.line(rows[0]) for r in rows), "",
        f"concurrency={last.concurrency} speedup={rows[0].seconds / last.seconds:.2f}",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="registry id or path to a GGUF file")
    parser.add_argument("--data", default=str(DATA), help="JSON lines problems [%(default)s]")
    parser.add_argument("--limit", type=int, default=16, help="problems per run")
    parser.add_argument("--effort", default="low", help="effort level for every problem")
    parser.add_argument("--budget", type=int, default=None,
                        help="token budget per problem (default: none, the effort's own caps)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--slots", type=int, default=8, help="engine slots")
    parser.add_argument("--ctx", type=int, default=2048, help="context per request")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: free)")
    parser.add_argument("--out", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.limit < 1 or any(k < 1 for k in args.concurrency):
        parser.error("--limit and --concurrency must be at least 1")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
