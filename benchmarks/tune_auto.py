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
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.evaluation import wilson  # noqa: E402
from ponder.replay import Chains, Replay, chains_from_records, stopping, vote  # noqa: E402
from ponder.strategies.stopping import StopRule  # noqa: E402


def score(problems: Sequence[Chains], rule: StopRule | None, draws: int) -> tuple[float, float]:
    """Accuracy and mean tokens of `rule` (None: vote over all chains) on `problems`."""
    replay = Replay(problems, draws=draws)
    k = min(len(p.samples) for p in problems)
    policy = vote if rule is None else stopping(rule)
    point = replay.curve("rule", policy, k, with_greedy=True)
    return point.accuracy, point.tokens


def grid() -> list[StopRule]:
    rules = []
    for start, step, max_n, (conf, measure) in itertools.product(
            (1, 2), (1, 2, 4), (4, 5, 6),
            [(0.0, "answer_prob"), (0.999, "answer_prob"), (0.99, "answer_prob"),
             (0.95, "mean_prob")]):
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
    args = ap.parse_args()
    records = [json.loads(line) for line in args.samples.read_text().splitlines() if line]
    problems = [p for p in chains_from_records(records[:args.limit]) if p.greedy]
    halves = {"tune": problems[1::2], "check": problems[0::2], "all": problems}
    n = {k: len(v) for k, v in halves.items()}
    high = {k: score(v, None, args.draws) for k, v in halves.items()}
    print(f"{len(problems)} problems ({n['tune']} tune, {n['check']} check), "
          f"{args.draws} draws; high = vote over all {len(problems[0].samples)} chains")
    head = "  ".join(f"{h:>21}" for h in halves)
    print(f"{'rule':<48}  {head}")

    def cells(vals: dict[str, tuple[float, float]]) -> str:
        out = []
        for h, (acc, tok) in vals.items():
            out.append(f"{100 * acc:5.1f}% {tok:5.0f} ({tok / high[h][1]:4.0%})")
        return "  ".join(f"{c:>21}" for c in out)

    print(f"{'high (vote, all chains)':<48}  {cells(high)}")
    scored = []
    for rule in grid():
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
    print(f"\nhigh on all {n['all']}: {100 * high['all'][0]:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")


if __name__ == "__main__":
    main()
