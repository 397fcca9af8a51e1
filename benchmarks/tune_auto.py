"""Stopping rules for `auto`/`medium`, replayed on one sampling run, tuned on one half of the
problems and checked on the other.

    python benchmarks/tune_auto.py benchmarks/results/samples-qwen1.5b.jsonl --limit 100

Every rule is `ponder.strategies.stopping.decide` (the code the live `adaptive` runs),
replayed with the greedy chain first and the samples in random orders (`ponder.replay`).
The grid varies the first round (`start`: the greedy chain alone, or with one sample), the
round size, the chain limit and the `confident` stop (every chain agrees and each is at
least that sure of its answer, by `answer_prob` or `mean_prob`). Rules are ranked on the
*tune* half (odd positions) by accuracy at no more than half of `high`'s tokens; the *check*
half (even positions) shows whether the ranking holds on problems it was not chosen on.

`--lead FILE` swaps each problem's greedy chain for the first chain of the same problem in
FILE (records of another run, e.g. `ponder eval --effort low`, whose one chain uses the
family's one-chain prompt): what the rules would do if the greedy chain were asked that way.
`--pool FILE...` adds the samples of `vote` records of the same problems (as in
`benchmarks/effort.py`), so that larger `max_n` can be replayed; `--high N` makes `high` the
vote over the greedy chain and N-1 samples drawn from the pool (default: every chain).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.evaluation import wilson  # noqa: E402
from ponder.replay import Chains, Replay, chains_from_records, pooled_samples, stopping, vote  # noqa: E402
from ponder.strategies.stopping import StopRule  # noqa: E402


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score(problems: Sequence[Chains], rule: StopRule | None, draws: int,
          high: int | None = None) -> tuple[float, float]:
    """Accuracy and mean tokens of `rule` (None: vote over `high` chains, default all) on
    `problems`."""
    replay = Replay(problems, draws=draws)
    k = min(len(p.samples) for p in problems)
    if rule is None:
        point = replay.curve("vote", vote, min(high or k, k), with_greedy=True)
    else:
        point = replay.curve("rule", stopping(rule), min(rule.max_n, k), with_greedy=True)
    return point.accuracy, point.tokens


def grid(steps: Sequence[int], limits: Sequence[int]) -> list[StopRule]:
    rules = []
    for start, step, max_n, (conf, measure) in itertools.product(
            (1, 2), steps, limits,
            [(0.0, "answer_prob"), (0.999, "answer_prob"), (0.95, "mean_prob")]):
        if start == 1 and not conf:
            continue  # one chain alone never agrees with anything: same as start 2
        rules.append(StopRule(start=start, step=step, max_n=max_n, window=2,
                              confident=conf, measure=measure))
    return rules


def label(rule: StopRule) -> str:
    conf = f" {rule.measure}>={rule.confident:g}" if rule.confident else ""
    return f"start={rule.start} step={rule.step} max_n={rule.max_n}{conf}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("samples", type=Path)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--lead", type=Path, default=None,
                    help="records whose first chain replaces each problem's greedy chain")
    ap.add_argument("--pool", type=Path, nargs="*", default=[],
                    help="records of `vote` runs on the same problems: their samples join the "
                         "pool each draw comes from")
    ap.add_argument("--high", type=int, default=None,
                    help="chains `high` votes over (default: every chain of the smallest pool)")
    ap.add_argument("--max-n", type=int, nargs="*", default=[4, 5, 6],
                    help="chain limits to try")
    ap.add_argument("--steps", type=int, nargs="*", default=[1, 2, 4],
                    help="round sizes to try")
    args = ap.parse_args()
    problems = [p for p in chains_from_records(read(args.samples)[:args.limit]) if p.greedy]
    pooled = pooled_samples(read(extra) for extra in args.pool)
    if pooled:
        problems = [replace(p, samples=(*p.samples, *pooled.get(p.id, []))) for p in problems]
        print(f"pooled with {', '.join(x.name for x in args.pool)}")
    if args.lead:
        leads = {p.id: p.samples[0] for p in chains_from_records(read(args.lead))}
        problems = [replace(p, samples=(leads[p.id], *p.samples[1:]))
                    for p in problems if p.id in leads]
        print(f"greedy chains taken from {args.lead.name}")
    halves = {"tune": problems[1::2], "check": problems[0::2], "all": problems}
    n = {k: len(v) for k, v in halves.items()}
    high = {k: score(v, None, args.draws, args.high) for k, v in halves.items()}
    smallest = min(len(p.samples) for p in problems)
    print(f"{len(problems)} problems ({n['tune']} tune, {n['check']} check), "
          f"{args.draws} draws; high = vote over {min(args.high or smallest, smallest)} "
          f"chains (pools of {smallest}+)")
    head = "  ".join(f"{h:>21}" for h in halves)
    print(f"{'rule':<48}  {head}")

    def cells(vals: dict[str, tuple[float, float]]) -> str:
        out = []
        for h, (acc, tok) in vals.items():
            out.append(f"{100 * acc:5.1f}% {tok:5.0f} ({tok / high[h][1]:4.0%})")
        return "  ".join(f"{c:>21}" for c in out)

    print(f"{'high (vote)':<48}  {cells(high)}")
    scored = []
    for rule in grid(args.steps, args.max_n):
        vals = {k: score(v, rule, args.draws) for k, v in halves.items()}
        scored.append((rule, vals))
    cheap = [s for s in scored if s[1]["tune"][1] <= 0.5 * high["tune"][1]]
    cheap.sort(key=lambda s: (-s[1]["tune"][0], s[1]["tune"][1]))
    print(f"\nrules at <= 50% of high's tokens on the tune half, best first "
          f"({len(cheap)} of {len(scored)}):")
    for rule, vals in cheap[:args.top]:
        print(f"{label(rule):<48}  {cells(vals)}")
    print("\nall rules, by accuracy on the tune half:")
    for rule, vals in sorted(scored, key=lambda s: -s[1]["tune"][0])[:args.top]:
        print(f"{label(rule):<48}  {cells(vals)}")
    lo, hi = wilson(round(high["all"][0] * n["all"]), n["all"])
    print(f"\n# {' '.join(sys.argv)}")
    print(f"high on all {n['all']}: {100 * high['all'][0]:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")


if __name__ == "__main__":
    main()
