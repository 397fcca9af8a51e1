"""Test-time scaling on a data set: accuracy, tokens and seconds per effort and strategy.

    python benchmarks/scaling.py --model ID_OR_PATH --data FILE --limit K
        [--configs low medium high auto vote:n=8] [--set think_cap=384] [--seed 0]
        [--slots 8] [--ctx 4096] [--budget N] [--out FILE]

The model is loaded once. Every config solves the first K problems of FILE (JSON lines
with `question` and `answer`); an answer is right when it is mathematically equivalent to
the reference (`ponder.answers.equivalent`). A config is an effort level (low, medium,
high, auto) or a strategy name, optionally with options: `confidence:n=8,warmup=3`.
`--set key=value` applies to every config whose strategy takes that option (use it to cap
thinking on a slow machine). Prints one table and one summary line per config; --out
also writes them to a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.answers import equivalent  # noqa: E402
from ponder.engines import EngineOptions, Loaded, load_engine  # noqa: E402
from ponder.engines.base import Sampling  # noqa: E402
from ponder.runner import Plan, drain, make_plan, make_task, run_plan  # noqa: E402
from ponder.strategies import get_strategy  # noqa: E402
from ponder.strategies.effort import EFFORTS  # noqa: E402

DEFAULT_CONFIGS = ["low", "medium", "high", "auto", "vote"]


@dataclass
class Problem:
    question: str
    answer: str


@dataclass
class Config:
    """One row of the table: an effort or strategy with its option overrides."""

    label: str
    effort: str | None
    strategy: str | None
    options: dict[str, str]

    def plan(self, common: dict[str, str]) -> Plan:
        name = self.strategy or EFFORTS[self.effort or "medium"].strategy
        fields = {f.name for f in dataclasses.fields(get_strategy(name).options)}
        merged = {k: v for k, v in common.items() if k.replace("-", "_") in fields}
        merged.update(self.options)
        return make_plan(self.effort, self.strategy, merged)


@dataclass
class Outcome:
    correct: bool
    tokens: int
    seconds: float
    chains: int


@dataclass
class Row:
    config: Config
    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(o.correct for o in self.outcomes) / max(1, len(self.outcomes))

    def mean(self, attr: str) -> float:
        values = [float(getattr(o, attr)) for o in self.outcomes]
        return sum(values) / max(1, len(values))

    def summary(self) -> str:
        right = sum(o.correct for o in self.outcomes)
        return (f"{self.config.label}: accuracy {self.accuracy:.1%} ({right}/"
                f"{len(self.outcomes)}) at {self.mean('tokens'):.0f} tokens and "
                f"{self.mean('seconds'):.1f} s per question "
                f"({self.plan.spec.name}, {self.mean('chains'):.1f} chains)")


def parse_config(text: str) -> Config:
    name, _, rest = text.partition(":")
    options = dict(pair.split("=", 1) for pair in rest.split(",") if pair)
    if name in EFFORTS:
        return Config(text, name, None, options)
    get_strategy(name)
    return Config(text, None, name, options)


def load_problems(path: Path, limit: int) -> list[Problem]:
    problems = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                problems.append(Problem(record["question"], str(record["answer"])))
            if len(problems) == limit:
                break
    return problems


def solve(loaded: Loaded, plan: Plan, problem: Problem, seed: int, budget: int | None
          ) -> Outcome:
    sampling = Sampling(seed=seed, max_tokens=loaded.engine.context_length)
    task = make_task(problem.question, loaded, sampling, budget=budget)
    started = time.monotonic()
    result = drain(run_plan(task, plan))
    seconds = time.monotonic() - started
    return Outcome(equivalent(result.answer, problem.answer), result.completion_tokens,
                   seconds, max(1, len(result.samples)))


def table(rows: list[Row]) -> list[str]:
    head = (f"{'config':<28} {'strategy':<11} {'accuracy':>8} {'tokens/q':>9} "
            f"{'sec/q':>7} {'chains':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.config.label:<28} {r.plan.spec.name:<11} {r.accuracy:>8.1%} "
                     f"{r.mean('tokens'):>9.0f} {r.mean('seconds'):>7.1f} "
                     f"{r.mean('chains'):>6.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = load_problems(Path(args.data), args.limit)
    configs = [parse_config(c) for c in args.configs]
    common = dict(pair.split("=", 1) for pair in args.set)
    rows = [Row(c, c.plan(common)) for c in configs]
    load_at_start = _load()
    started = time.monotonic()
    loaded = load_engine("llama", EngineOptions(model=args.model, n_ctx=args.ctx,
                                                slots=args.slots, threads=args.threads))
    load_seconds = time.monotonic() - started
    for row in rows:
        for i, problem in enumerate(problems):
            outcome = solve(loaded, row.plan, problem, args.seed + i, args.budget)
            row.outcomes.append(outcome)
            print(f"  {row.config.label} #{i + 1}: {'right' if outcome.correct else 'wrong'} "
                  f"{outcome.tokens} tokens {outcome.seconds:.1f}s", file=sys.stderr,
                  flush=True)
    lines = header(args, loaded, len(problems), load_seconds, rows, load_at_start)
    lines += table(rows) + [""] + [r.summary() for r in rows]
    lines.append(f"\ntotal {time.monotonic() - started:.0f} s; load average at end {_load()}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


def header(args: argparse.Namespace, loaded: Loaded, n: int, load_seconds: float,
           rows: list[Row], load_at_start: str) -> list[str]:
    settings = "; ".join(f"{r.config.label}: {_settings(r.plan)}" for r in rows)
    return [
        f"ponder test-time scaling: {loaded.model_id} on {Path(args.data).name}, "
        f"first {n} problems",
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}; slots {args.slots}, ctx {args.ctx}, seed {args.seed}, "
        f"budget {args.budget}; threads {loaded_threads(loaded)}; model loaded in "
        f"{load_seconds:.1f} s; load average at start {load_at_start}",
        f"settings: {settings}",
        "",
    ]


def loaded_threads(loaded: Loaded) -> object:
    return getattr(loaded.engine, "n_threads", "?")


def _load() -> str:
    """The machine's 1-minute load average: other work on it slows every timing."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


def _settings(plan: Plan) -> str:
    return ",".join(f"{k}={v}" for k, v in plan.settings().items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="registered model id or .gguf path")
    p.add_argument("--data", required=True, help="JSON lines with question and answer")
    p.add_argument("--limit", type=int, default=10, help="problems to solve per config")
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS,
                   help="efforts or strategies with options, e.g. low vote:n=8,think_cap=256")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="option for every config whose strategy takes it (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--budget", type=int, default=None, help="token budget per question")
    p.add_argument("--out", default=None, help="also write the table to this file")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
