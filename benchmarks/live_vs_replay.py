"""Live effort runs against their replay: does `benchmarks/effort.py`'s replay predict what
`ponder eval --effort ...` really does?

    python -m ponder eval ../shared/data/gsm8k-dev.jsonl -e auto,high --limit 20 \
        --model qwen2.5-coder-1.5b --no-optimize --no-log --out LIVE.jsonl
    python benchmarks/live_vs_replay.py LIVE.jsonl \
        --samples benchmarks/results/samples-qwen1.5b.jsonl \
        --low benchmarks/results/low-qwen1.5b.jsonl

For each level in LIVE.jsonl, on the problems it holds: accuracy (95% Wilson interval),
mean tokens and seconds per question as run, beside the replay of the same level on the
same problems (the sampling run's chains with `low`'s greedy chain first, as effort.py
replays them). Then how often the live greedy chain gave the same answer as `low`'s
logged one: the same prompt and greedy decoding, but batched decoding (eval runs problems
side by side) changes the floating point, so long chains can part ways.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.answers import equivalent  # noqa: E402
from ponder.evaluation import wilson  # noqa: E402
from ponder.replay import Replay, chains_from_records, pooled_samples, replayable  # noqa: E402
from ponder.runner import make_plan  # noqa: E402


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pct(right: int, n: int) -> str:
    lo, hi = wilson(right, n)
    return f"{100 * right / n:5.1f}% [{100 * lo:4.1f}, {100 * hi:4.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("live", type=Path)
    ap.add_argument("--samples", type=Path, required=True)
    ap.add_argument("--low", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="records of benchmarks/baseline.py, shown on the same problems")
    ap.add_argument("--pool", type=Path, nargs="*", default=[],
                    help="records of other vote runs with the same chain settings whose samples "
                         "join each problem's pool (as in effort.py); needed to replay n=10")
    ap.add_argument("--draws", type=int, default=400)
    args = ap.parse_args()

    low = {r["id"]: r for r in read(args.low)}
    leads = {p.id: p.samples[0] for p in chains_from_records(low.values())}
    pooled = pooled_samples(read(extra) for extra in args.pool)
    sampled = {p.id: replace(p, samples=(leads[p.id], *p.samples[1:], *pooled.get(p.id, [])))
               for p in chains_from_records(read(args.samples)) if p.id in leads}
    by_level: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in read(args.live):
        if r.get("status") == "ok" and r["id"] in sampled:
            by_level[str(r["config"]).split("/")[0]].append(r)

    print(f"live: {args.live.name}; replay: {args.samples.name} led by {args.low.name}")
    print(f"{'level':<7} {'n':>3}  {'live accuracy':>22} {'tokens':>7} {'sec/q':>6}   "
          f"{'replay accuracy':>16} {'tokens':>7}")
    same = total = 0
    for level, records in by_level.items():
        n = len(records)
        right = sum(bool(r["correct"]) for r in records)
        tokens = statistics.mean(r["tokens"] for r in records)
        seconds = statistics.median(r["seconds"] for r in records)
        plan = make_plan(level, None)
        rp = replayable(plan.spec.name, plan.options)
        problems = [sampled[r["id"]] for r in records]
        point = Replay(problems, draws=args.draws).curve(level, rp.policy, rp.k,
                                                         with_greedy=rp.with_greedy)
        print(f"{level:<7} {n:>3}  {pct(right, n):>22} {tokens:7.0f} {seconds:6.1f}   "
              f"{100 * point.accuracy:15.1f}% {point.tokens:7.0f}")
        for r in records:
            first = (r.get("samples") or [{}])[0].get("answer")
            logged = leads[r["id"]].answer
            total += 1
            same += first is not None and logged is not None and equivalent(first, logged)
    ids = {r["id"] for records in by_level.values() for r in records}
    right = sum(bool(low[i]["correct"]) for i in ids)
    print(f"on these {len(ids)} problems: low (logged) {pct(right, len(ids))}", end="")
    if args.baseline:
        base = {r["id"]: r for r in read(args.baseline)}
        right = sum(equivalent(base[i]["answer"], base[i]["reference"]) for i in ids)
        print(f", plain greedy {pct(right, len(ids))}", end="")
    print(f"\nsec/q is the median over questions. The live greedy chain gave low's logged "
          f"answer on {same}/{total} runs.")


if __name__ == "__main__":
    main()
