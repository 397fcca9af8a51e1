"""How should an instruct model be asked to think? System prompt alone vs prefilled `<think>`.

    python benchmarks/instruct_prompt.py --model qwen2.5-coder-1.5b \
        --data ../shared/data/gsm8k-dev.jsonl --limit 100 --out-dir benchmarks/results/prompt

`system` and `prefill` use the tag-asking system prompt ("think step by step inside <think>
and </think> tags ... put the final result in \\boxed{}"), `plain-prefill` the usual one
("Think step by step, then give the final answer as \\boxed{N}."); all run one greedy chain
(`cot`, temperature 0, the same problems); the `prefill` variants also write "<think>\\n" at
the start of the assistant turn. Problems run side by side in the engine's shared batch
(`--workers`). For each variant it prints accuracy with a 95% Wilson interval, mean tokens, how many
chains really thought inside the tags (non-empty thinking), mean thinking tokens, and how
many answered at all. `--out-dir` keeps every record (JSON lines, one file per variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder import batch, thinking  # noqa: E402
from ponder.engines import EngineOptions, Loaded, load_engine  # noqa: E402
from ponder.engines.base import Sampling  # noqa: E402
from ponder.evaluation import wilson  # noqa: E402
from ponder.problems import Problem, load_problems  # noqa: E402
from ponder.records import Record, RecordWriter  # noqa: E402
from ponder.runner import make_plan  # noqa: E402

TAGS = thinking.PROMPTED_SYSTEM
PLAIN = "Think step by step, then give the final answer as \\boxed{N}."
VARIANTS = {"system": (TAGS, ""), "prefill": (TAGS, "<think>\n"),
            "plain-prefill": (PLAIN, "<think>\n")}


def run_variant(loaded: Loaded, system: str, prefix: str, problems: list[Problem],
                cap: int, workers: int, out: Path | None) -> list[Record]:
    thinking.PROMPTED_SYSTEM = system
    variant = dataclasses.replace(
        loaded, defaults=dataclasses.replace(loaded.defaults, assistant_prefix=prefix))
    plan = make_plan(None, "cot", {"think_cap": str(cap)})
    sampling = Sampling(temperature=0.0, seed=0, max_tokens=loaded.engine.context_length)
    setup = batch.Setup(variant, plan, sampling)
    stream = out.open("w", encoding="utf-8") if out else None
    writer = RecordWriter(stream, str(out or "-"))
    try:
        return batch.run_batch(problems, setup, writer, workers=workers).records
    finally:
        writer.close()


def summary(name: str, records: list[Record], seconds: float) -> str:
    n = len(records)
    right = sum(bool(r["correct"]) for r in records)
    lo, hi = wilson(right, n)
    thought = [r for r in records if r.get("thinking")]
    think_tokens = sum(r["usage"]["thinking_tokens"] for r in records) / n
    answered = sum(r.get("answer") is not None for r in records)
    tokens = sum(r["tokens"] for r in records) / n
    return (f"{name:<8} accuracy {100 * right / n:5.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"({right}/{n})  tokens {tokens:.0f}  thought in tags {len(thought)}/{n}  "
            f"thinking tokens {think_tokens:.0f}  answered {answered}/{n}  "
            f"wall {seconds:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/gsm8k-dev.jsonl")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--think-cap", type=int, default=768)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out-dir", type=Path, default=None)
    args = ap.parse_args()

    problems = load_problems(args.data)[: args.limit]
    loaded = load_engine("llama", EngineOptions(model=args.model, n_ctx=4096,
                                                threads=args.threads, slots=args.workers))
    print(f"# {loaded.model_id}, {len(problems)} problems of {args.data.name}, greedy cot, "
          f"think_cap {args.think_cap}, workers {args.workers}, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        out = args.out_dir / f"{name}.jsonl" if args.out_dir else None
        started = time.monotonic()
        records = run_variant(loaded, *VARIANTS[name], problems, args.think_cap,
                              args.workers, out)
        print(summary(name, records, time.monotonic() - started), flush=True)


if __name__ == "__main__":
    main()
