"""Tree search at equal budgets: mcts against beam, vote and best-of-n on a data set.

    python benchmarks/mcts.py --model ID_OR_PATH [--data FILE] [--limit K]
        [--budgets 2000 4000] [--strategies mcts beam vote best-of-n]
        [--set STRATEGY.KEY=VALUE] [--ctx 4096] [--slots 8] [--threads N] [--seed 0]
        [--out FILE] [--records FILE.jsonl]

The model is loaded once. Every strategy solves the first K problems of FILE (JSON lines
with `question` and `answer`) under each --budget, the same hard token cap for all of
them; an answer is right when it is mathematically equivalent to the reference. Chain
counts are sized to the budget (n = budget // (CHAIN_TOKENS + answer_reserve), at least 2,
for vote and best-of-n: the reserve each chain keeps back to state a forced answer comes out
of the same budget, and chains cut short of their answer would lose votes; mcts iterations
and beam steps high enough that the budget binds first) so that every strategy can spend
it; `--set vote.n=8` overrides any option. Sampling is the model family's (models.toml), as
`ponder ask` and `ponder eval` use it.
Prints, per strategy and budget: accuracy with its 95% Wilson interval and n, mean tokens
and seconds per question, prompt tokens the engine evaluated (prefill) and reused from the
KV it held, per question; and for mcts the mean tree (nodes, depth, rollouts, iterations).
Problems run one by one, every strategy on each in turn; --out is rewritten after every
problem, so a run stopped early leaves a table of the problems done (marked partial);
`--records FILE` keeps every outcome as it finishes, and a later run given the same file
runs only what is missing (a 50-problem run at two budgets takes many hours on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.answers import equivalent  # noqa: E402
from ponder.cli._engine import sampling_for  # noqa: E402
from ponder.engines import EngineOptions, Loaded, load_engine  # noqa: E402
from ponder.engines.base import Sampling  # noqa: E402
from ponder.evaluation import sign_test, wilson  # noqa: E402
from ponder.runner import Plan, drain, make_plan, make_task, run_plan  # noqa: E402
from ponder.strategies.options import ChainOptions  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "gsm8k-dev.jsonl"
STRATEGIES = ["mcts", "beam", "vote", "best-of-n"]
CHAIN_TOKENS = 320
"""About what one full GSM8K solution takes a small instruct model, with its answer."""
TREE_STATS = ("nodes", "depth", "rollouts", "iterations")


@dataclass
class Problem:
    question: str
    answer: str


@dataclass
class Outcome:
    correct: bool
    tokens: int
    seconds: float
    run: dict[str, Any]
    evaluated: int = 0
    reused: int = 0
    answer: str = ""


class Recorder:
    """The engine, with each generation kept to read its prefill statistics afterwards
    (prompt tokens evaluated, and reused from the KV the engine held)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.generations: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def start(self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
              ) -> Any:
        gen = self.engine.start(prompt, sampling, n=n, budget=budget)
        self.generations.append(gen)
        return gen

    def prefill(self) -> tuple[int, int]:
        stats = [g.stats for g in self.generations if hasattr(g, "stats")]
        self.generations.clear()
        return (sum(s.prompt_evaluated for s in stats), sum(s.prompt_reused for s in stats))


@dataclass
class Row:
    strategy: str
    budget: int
    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)

    def mean(self, attr: str) -> float:
        return sum(float(getattr(o, attr)) for o in self.outcomes) / max(1, len(self.outcomes))

    def line(self) -> str:
        n = len(self.outcomes)
        right = sum(o.correct for o in self.outcomes)
        lo, hi = wilson(right, n) if n else (0.0, 0.0)
        return (f"{self.strategy:<10} {self.budget:>6} {right / max(1, n):>8.1%} "
                f"{f'[{lo:.0%}, {hi:.0%}]':>11} {n:>3} {self.mean('tokens'):>8.0f} "
                f"{self.mean('seconds'):>7.1f} {self.mean('evaluated'):>9.0f} "
                f"{self.mean('reused'):>8.0f}")

    def tree(self) -> str:
        means = {k: sum(float(o.run.get(k, 0)) for o in self.outcomes) / max(1, len(self.outcomes))
                 for k in TREE_STATS}
        return f"mcts at {self.budget}: mean " + ", ".join(f"{k} {v:.1f}"
                                                         for k, v in means.items())


def options_for(strategy: str, budget: int, sets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The strategy's options at `budget`: chain counts sized to it, then --set."""
    chains = str(max(2, budget // (CHAIN_TOKENS + ChainOptions.answer_reserve)))
    sized = {"vote": {"n": chains}, "best-of-n": {"n": chains},
             "mcts": {"iterations": str(max(12, budget // 100))},
             "beam": {"max_steps": str(max(12, budget // 100))}}.get(strategy, {})
    return {**sized, **sets.get(strategy, {})}


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


def solve(loaded: Loaded, plan: Plan, problem: Problem, seed: int, budget: int) -> Outcome:
    sampling = sampling_for(loaded, seed, None)
    task = make_task(problem.question, loaded, sampling, budget=budget)
    started = time.monotonic()
    result = drain(run_plan(task, plan))
    seconds = time.monotonic() - started
    evaluated, reused = (loaded.engine.prefill() if isinstance(loaded.engine, Recorder)
                         else (0, 0))
    return Outcome(equivalent(result.answer, problem.answer), result.completion_tokens,
                   seconds, dict(result.settings), evaluated, reused, result.answer or "")


def record_key(args: argparse.Namespace, loaded: Loaded, i: int, problem: Problem, row: Row
               ) -> str:
    """What decides one outcome: model, problem, strategy, budget, settings, sampling
    and seed."""
    d = loaded.defaults
    sampling = [d.temperature, d.top_p, d.top_k, d.min_p]
    return json.dumps([args.model, args.ctx, problem.question, row.strategy, row.budget,
                       row.plan.settings(), sampling, args.seed + i], sort_keys=True,
                      default=str)


def read_records(path: str | None) -> dict[str, Outcome]:
    """The outcomes a stopped run left in --records (a torn last line is skipped)."""
    kept: dict[str, Outcome] = {}
    if not path or not Path(path).is_file():
        return kept
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            continue
        key = raw.pop("key")
        kept[key] = Outcome(**raw)
    return kept


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.data).is_file():
        print(f"error: no data file at {args.data} (pass --data FILE)", file=sys.stderr)
        return 2
    problems = load_problems(Path(args.data), args.limit)
    sets: dict[str, dict[str, str]] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        strategy, _, option = key.partition(".")
        sets.setdefault(strategy, {})[option] = value
    rows = [Row(s, b, make_plan(None, s, options_for(s, b, sets)))
            for b in args.budgets for s in args.strategies]
    load_at_start, text = _load(), ""
    started = time.monotonic()
    loaded = load_engine("llama", EngineOptions(model=args.model, n_ctx=args.ctx,
                                                slots=args.slots, threads=args.threads))
    loaded = Loaded(Recorder(loaded.engine), loaded.style, loaded.model_id)
    # problem by problem, every strategy in turn: the machine's load weighs on all alike,
    # and a run stopped early still compares them on the same problems
    kept = read_records(args.records)
    for i, problem in enumerate(problems):
        for row in rows:
            key = record_key(args, loaded, i, problem, row)
            outcome = kept.get(key)
            if outcome is None:
                outcome = solve(loaded, row.plan, problem, args.seed + i, row.budget)
                if args.records:
                    with Path(args.records).open("a", encoding="utf-8") as f:
                        f.write(json.dumps({"key": key, **asdict(outcome)}) + "\n")
            row.outcomes.append(outcome)
            print(f"  {row.strategy}@{row.budget} #{i + 1}: "
                  f"{'right' if outcome.correct else 'wrong'} {outcome.tokens} tokens "
                  f"{outcome.seconds:.1f}s{' (kept)' if key in kept else ''}",
                  file=sys.stderr, flush=True)
        text = report(args, loaded, rows, load_at_start, time.monotonic() - started,
                      done=i + 1, of=len(problems))
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def report(args: argparse.Namespace, loaded: Loaded, rows: list[Row], load_at_start: str,
           elapsed: float, done: int, of: int) -> str:
    head = (f"{'strategy':<10} {'budget':>6} {'accuracy':>8} {'95% CI':>11} {'n':>3} "
            f"{'tokens/q':>8} {'sec/q':>7} {'prefill/q':>9} {'reused/q':>8}")
    partial = "" if done == of else f" (partial: {done} of {of} problems done)"
    lines = [
        f"ponder equal-budget search: {loaded.model_id} on {Path(args.data).name}, "
        f"first {done} problems{partial}",
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
        f"machine: {platform.machine()}, {os.cpu_count()} cpus; slots {args.slots}, ctx "
        f"{args.ctx}, seed {args.seed}; threads {getattr(loaded.engine, 'n_threads', '?')}; "
        f"load average at start {load_at_start}",
        "settings: " + "; ".join(f"{r.strategy}@{r.budget}: " + ",".join(
            f"{k}={v}" for k, v in r.plan.settings().items()) for r in rows),
        "", head, "-" * len(head),
    ]
    lines += [r.line() for r in rows]
    lines += [""] + [r.tree() for r in rows if r.strategy == "mcts"]
    lines += paired(rows)
    lines.append(f"\ntotal {elapsed:.0f} s; load average now {_load()}")
    return "\n".join(lines)


def paired(rows: list[Row]) -> list[str]:
    """mcts against each other strategy at the same budget, problem by problem: the
    problems only one of the two got right, and the sign test on them."""
    lines = []
    for tree in (r for r in rows if r.strategy == "mcts"):
        for other in (r for r in rows if r.budget == tree.budget and r is not tree):
            pairs = list(zip(tree.outcomes, other.outcomes, strict=True))
            only_tree = sum(a.correct and not b.correct for a, b in pairs)
            only_other = sum(b.correct and not a.correct for a, b in pairs)
            lines.append(f"mcts vs {other.strategy} at {tree.budget}: right only with mcts "
                         f"{only_tree}, only with {other.strategy} {only_other}, both "
                         f"{sum(a.correct and b.correct for a, b in pairs)} of {len(pairs)} "
                         f"(sign test p={sign_test(only_tree, only_other):.2f})")
    return lines


def _load() -> str:
    """The 1-minute load average: other work on the machine slows every timing."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--model", required=True, help="registered model id or .gguf path")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="JSON lines: question, answer")
    p.add_argument("--limit", type=int, default=50, help="problems per strategy and budget")
    p.add_argument("--budgets", type=int, nargs="+", default=[2000, 4000])
    p.add_argument("--strategies", nargs="+", default=STRATEGIES)
    p.add_argument("--set", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
                   help="an option of one strategy, e.g. mcts.expand=3 (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="also write the table to this file")
    p.add_argument("--records", default=None,
                   help="JSON lines of every outcome, appended as they finish; a run given "
                        "the same file keeps those and runs only the rest")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
