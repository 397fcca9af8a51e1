"""Every `--effort` level against plain greedy decoding, from one sampling run.

    python benchmarks/effort.py --model qwen2.5-coder-1.5b --limit 30 \
        --samples benchmarks/results/samples-qwen1.5b.jsonl \
        --baseline benchmarks/results/baseline-qwen1.5b.jsonl \
        --low benchmarks/results/low-qwen1.5b.jsonl \
        --out benchmarks/results/effort-qwen1.5b.txt

1. The greedy baseline: `benchmarks/baseline.py` (plain llama-cpp-python, one greedy chain).
2. One sampling run: `ponder eval DATA --samples N` (the greedy chain, then N-1 samples at
   the family's temperature, every chain's answer, tokens and confidence recorded).
3. `low` runs for real: `ponder eval --effort low` (one greedy chain with the family's
   one-chain prompt, on the downloaded weights).
4. `medium`, `high` and `auto` are replayed on the sampling run's chains with their own
   decision code (`ponder.replay.replayable`): `medium`/`auto` run the adaptive stopping
   rule over random orders of the samples after the greedy chain, `high` votes over the
   greedy chain and random draws of the samples. Their greedy chain is `low`'s: they ask
   it exactly as `low` does (`Task.lead`: the same prompt, greedy, the same cap; see
   tests/strategies/test_lead.py), so the replay takes it from `low`'s records (a sampling
   run made before the lead existed holds a greedy chain asked the tag way instead).

`--pool FILE...` adds the chains of later runs with the same settings (another sampling
run, or live `ponder eval --effort high` records; only `vote` records are taken, since a
stopping rule's chains are not a fair draw): draws then come from each problem's larger
pool, which steadies the estimate of what a level does on average.

Steps 1 to 3 run only when their files are missing (all resume). The time per question
of a level is estimated from the measured decode rates (the median over questions): the
greedy chain and rounds of one chain at the baseline's rate, chains decoded together at the
sampling run's rate. The last line is
`effort: greedy=A low=B medium=C high=D auto=E tokens: greedy=a low=b medium=c high=d auto=e (n=N)`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.answers import equivalent  # noqa: E402
from ponder.evaluation import wilson  # noqa: E402
from ponder.replay import Replay, chains_from_records, pooled_samples, replayable, vote  # noqa: E402
from ponder.runner import make_plan  # noqa: E402
from ponder.strategies.effort import EFFORTS  # noqa: E402

LEVELS = ("low", "medium", "high", "auto")


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ensure(path: Path, command: list[str]) -> None:
    """Run `command` (which writes and resumes `path`) unless `path` already holds results."""
    print("$ " + " ".join(shlex.quote(c) for c in command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def row(name: str, right: float, n: int, tokens: float, seconds: float) -> str:
    lo, hi = wilson(round(right), n)
    what = EFFORTS[name].description if name in EFFORTS else "plain llama-cpp-python, greedy"
    return (f"{name:<8} {100 * right / n:6.1f}%  [{100 * lo:5.1f}, {100 * hi:5.1f}]  "
            f"{tokens:8.0f}  {seconds:7.1f}  {what}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/gsm8k-dev.jsonl")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--n", type=int, default=6, help="chains per problem in the sampling run")
    ap.add_argument("--samples", type=Path, required=True)
    ap.add_argument("--pool", type=Path, nargs="*", default=[],
                    help="records of later runs with the same chain settings (more sampling "
                         "runs, or live `--effort high` runs): their chains after the first "
                         "join each problem's samples, so draws come from a larger pool")
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--low", type=Path, required=True,
                    help="records of `ponder eval --effort low` (run when missing)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    py = sys.executable
    if not args.baseline.exists() or len(read(args.baseline)) < args.limit:
        ensure(args.baseline, [py, str(ROOT / "benchmarks/baseline.py"), "--model", args.model,
                               "--data", str(args.data), "--limit", str(args.limit),
                               "--threads", str(args.threads), "--out", str(args.baseline)])
    if not args.samples.exists() or len(read(args.samples)) < args.limit:
        resume = ["--resume"] if args.samples.exists() else []
        ensure(args.samples, [py, "-m", "ponder", "eval", str(args.data), "--samples",
                              str(args.n), "--limit", str(args.limit), "--model", args.model,
                              "--no-optimize", "--threads", str(args.threads), "--out",
                              str(args.samples), *resume])
    if not args.low.exists() or len(read(args.low)) < args.limit:
        resume = ["--resume"] if args.low.exists() else []
        ensure(args.low, [py, "-m", "ponder", "eval", str(args.data), "--effort", "low",
                          "--limit", str(args.limit), "--model", args.model, "--no-optimize",
                          "--threads", str(args.threads), "--out", str(args.low), *resume])
    base = {r["id"]: r for r in read(args.baseline)}
    low = {r["id"]: r for r in read(args.low)}
    sample_records = [r for r in read(args.samples)[:args.limit]
                      if r["id"] in base and r["id"] in low]
    leads = {p.id: p.samples[0] for p in chains_from_records(low.values())}
    pooled = pooled_samples(read(extra) for extra in args.pool)
    problems = [replace(p, samples=(leads[p.id], *p.samples[1:], *pooled.get(p.id, [])))
                for p in chains_from_records(sample_records) if p.id in leads]
    ids = {p.id for p in problems}
    greedy = [base[i] for i in ids]
    n = len(problems)

    # decode rates, for the time estimates: the median per question, so that questions run
    # while the machine was busy elsewhere (these runs resume across sessions) do not skew it
    one_rate = statistics.median(r["tokens"] / r["seconds"] for r in greedy)
    ok = [r for r in sample_records if r["id"] in ids]
    many_rate = statistics.median(r["tokens"] / r["seconds"] for r in ok)

    replay = Replay(problems, draws=args.draws)
    acc: dict[str, float] = {}
    tokens: dict[str, float] = {}
    secs: dict[str, float] = {}
    right = sum(equivalent(r["answer"], r["reference"]) for r in greedy)
    acc["greedy"], tokens["greedy"] = right, sum(r["tokens"] for r in greedy) / n
    secs["greedy"] = tokens["greedy"] / one_rate
    lows = [low[i] for i in ids]
    acc["low"] = sum(bool(r["correct"]) for r in lows)
    tokens["low"] = sum(r["tokens"] for r in lows) / n
    secs["low"] = tokens["low"] / one_rate
    for level in LEVELS[1:]:
        plan = make_plan(level, None)
        rp = replayable(plan.spec.name, plan.options)
        point = replay.curve(level, rp.policy, rp.k, with_greedy=rp.with_greedy)
        acc[level], tokens[level] = point.accuracy * n, point.tokens
        # the greedy chain decodes alone; then rounds of one chain alone, or chains together
        alone = rp.k == 1 or getattr(plan.options, "step", 0) == 1
        rest = max(0.0, point.tokens - tokens["low"])
        secs[level] = tokens["low"] / one_rate + rest / (one_rate if alone else many_rate)

    lines = [
        f"ponder effort levels vs plain greedy: {args.model}, first {n} problems of "
        f"{args.data.name}",
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
        f"machine: {platform.machine()}, {os.cpu_count()} cores, threads {args.threads}; "
        f"load average now {os.getloadavg()[0]:.2f}",
        f"pooled with: {', '.join(x.name for x in args.pool) or 'nothing'} "
        f"({sum(len(v) for v in pooled.values())} more samples on {len(pooled)} problems; "
        f"draws of k chains come from each problem's whole pool)",
        f"sampling run: {args.samples.name}, {min(len(p.samples) for p in problems)}-"
        f"{max(len(p.samples) for p in problems)} chains "
        f"per problem (the first replaced by low's greedy chain, as every level asks it), "
        f"{args.draws} random draws per problem and level",
        f"decode rates measured in these runs (median per question): one chain "
        f"{one_rate:.1f} tok/s, {args.n} chains together {many_rate:.1f} tok/s "
        f"(seconds below: tokens at those rates)",
        "",
        f"{'level':<8} {'accuracy':>7}  {'95% CI':>14}  {'tokens':>8}  {'sec/q':>7}  what",
    ]
    lines += [row(name, acc[name], n, tokens[name], secs[name])
              for name in ("greedy", *LEVELS)]
    lines.append("")
    lines.append("effort: " + " ".join(f"{k}={100 * acc[k] / n:.1f}" for k in ("greedy", *LEVELS))
                 + " tokens: " + " ".join(f"{k}={tokens[k]:.0f}" for k in ("greedy", *LEVELS))
                 + f" (n={n})")
    most = min(len(p.samples) for p in problems)
    if most > 6:
        lines += ["", f"vote over the greedy chain and k-1 samples drawn from the pool "
                      f"(k up to {most}, the smallest pool):"]
        for k in sorted({2, 4, 6, 8, 10, most} & set(range(2, most + 1))):
            point = replay.curve(f"vote@{k}", vote, k, with_greedy=True)
            seconds = tokens["low"] / one_rate + (point.tokens - tokens["low"]) / many_rate
            lines.append(f"  vote@{k:<3} {100 * point.accuracy:5.1f}%  {point.tokens:6.0f} "
                         f"tokens  {seconds:5.1f} s")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
