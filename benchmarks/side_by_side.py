"""Decode speed of this tree's llama.cpp engine against another commit's, side by side.

    python benchmarks/side_by_side.py --base ef3df7a --model smollm2-135m --n 1 8 \
        [--tokens 128] [--rounds 5] [--threads 2]

The base commit is checked out into a temporary git worktree. Each round runs, for every
N, one batched generation of N sequences through each tree's own `LlamaCppEngine`, by each
tree's own `benchmarks/parallel.py --worker engine` (a fresh process each, `PYTHONPATH`
set to that tree), with the same prompt, seeds, tokens and threads; the order of the two
trees alternates from round to round so that drifting load hits both alike. Prints the
median tokens/s of each tree, the median of the per-round ratios (this tree / base) with
their range, and the time per decode step spent outside `llama_decode` (Python and
sampling). Ends with `side_by_side: n=N ratio=R ...` per N.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROMPT = ("Write a long, detailed story about a lighthouse keeper who finds a mysterious "
          "message in a bottle. Describe the setting, the characters and what happens next.\n")


def measure(tree: Path, model: Path, payload: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(tree / "benchmarks/parallel.py"), "--worker", "engine",
           "--model", str(model), json.dumps(payload)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker in {tree} failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def resolve(spec: str) -> Path:
    path = Path(spec)
    if path.exists():
        return path
    from ponder.registry import resolve_model

    return resolve_model(spec).path  # the download, never an optimized copy


def overhead_ms(r: dict[str, Any]) -> float:
    """Milliseconds per step of the step loop outside llama_decode."""
    steps = max(int(r.get("steps") or 0), 1)
    return 1000 * (float(r["step_s"]) - float(r["decode_s"])) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git commit to compare against")
    ap.add_argument("--model", required=True, help="GGUF path or registry id")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model = resolve(args.model)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(base_tree), args.base], check=True)
        try:
            runs = run_rounds(args, model, {"base": base_tree, "this": ROOT})
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(base_tree)], check=False)
    report(args, head, runs)


Runs = dict[tuple[str, int], list[dict[str, Any]]]


def run_rounds(args: argparse.Namespace, model: Path, trees: dict[str, Path]) -> Runs:
    runs: Runs = {(name, n): [] for name in trees for n in args.n}
    order = list(trees)
    for i in range(args.rounds):
        for n in args.n:
            payload = {"n": n, "n_ctx": 512 * max(n, 1) + args.tokens * n, "threads":
                       args.threads, "prompt": PROMPT, "tokens": args.tokens,
                       "flash_attn": True}
            for name in (order if i % 2 == 0 else order[::-1]):
                r = measure(trees[name], model, payload)
                runs[(name, n)].append(r)
                print(f"round {i + 1} n={n} {name}: {r['tokens'] / r['seconds']:.1f} tok/s "
                      f"(load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    return runs


def report(args: argparse.Namespace, head: str, runs: Runs) -> None:
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"this tree: {head}; base: {args.base}; model {Path(args.model).name}; "
          f"{args.tokens} tokens per sequence; threads {args.threads}; {args.rounds} rounds, "
          f"order alternating; {os.cpu_count()} cores, load now {os.getloadavg()[0]:.2f}")
    print(f"{'N':>3}  {'base tok/s':>10}  {'this tok/s':>10}  {'ratio (median, range)':>24}  "
          f"{'outside decode ms/step base -> this':>36}")
    finals = []
    for n in args.n:
        base = [r["tokens"] / r["seconds"] for r in runs[("base", n)]]
        this = [r["tokens"] / r["seconds"] for r in runs[("this", n)]]
        ratios = [t / b for t, b in zip(this, base, strict=True)]
        ob = statistics.median(overhead_ms(r) for r in runs[("base", n)])
        ot = statistics.median(overhead_ms(r) for r in runs[("this", n)])
        med = statistics.median(ratios)
        print(f"{n:>3}  {statistics.median(base):>10.1f}  {statistics.median(this):>10.1f}  "
              f"{med:>8.3f} ({min(ratios):.2f}-{max(ratios):.2f})  "
              f"{ob:>22.2f} -> {ot:.2f}")
        finals.append(f"n={n} ratio={med:.3f}")
    print("side_by_side: " + " ".join(finals))


if __name__ == "__main__":
    main()
