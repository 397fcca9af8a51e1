"""Accuracy of a model's weight formats on GSM8K: the download against requantized copies.

    python benchmarks/formats.py --model qwen2.5-coder-0.5b --formats download q4_0 \
        [--data ../shared/data/gsm8k-dev.jsonl] [--limit 100] [--max-tokens 512]
        [--concurrency 8] [--threads T] [--chunk K] [--out benchmarks/results/formats.jsonl]

Every format answers the same first --limit problems greedily (temperature 0), with the
model's chat template and the system prompt of benchmarks/baseline.py ("Think step by step,
then give the final answer as \\boxed{N}."). A format is the file as downloaded or a copy
requantized from it by llama.cpp (`ponder.optimize.quantize`, as `ponder models optimize`
makes it) in a temporary folder. Problems run --concurrency at a time through one
LlamaCppEngine, so their tokens share decode batches (greedy text can differ slightly from
one-at-a-time decoding; every format is run the same way). Answers are graded with ponder's
`extract_answer`/`equivalent`.

Prints per format: accuracy with its 95% Wilson interval, mean tokens and tokens/s; then the
paired comparison with the first format (problems only one of the two got right). --out keeps
one JSON line per (format, problem) and is resumed. The last line is
`formats: download=A% [lo, hi] Q4_0=B% [lo, hi] (n=N)`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.answers import equivalent, extract_answer  # noqa: E402
from ponder.evaluation import wilson  # noqa: E402

SYSTEM = "Think step by step, then give the final answer as \\boxed{N}."


def load_problems(path: Path, limit: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit]


def load_done(path: Path | None) -> dict[tuple[str, str], dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            done[(rec["format"], rec["id"])] = rec
    return done


def solve_all(model: Path, fmt: str, problems: list[dict[str, Any]], args: argparse.Namespace,
              done: dict[tuple[str, str], dict[str, Any]], sink: Any) -> list[dict[str, Any]]:
    """Greedy answers of one format, `concurrency` problems at a time on one engine."""
    from ponder.engines.base import Sampling, generate
    from ponder.engines.llamacpp import LlamaCppEngine

    todo = [p for i, p in enumerate(problems) if (fmt, key(p, i)) not in done]
    records = {key(p, i): done[(fmt, key(p, i))] for i, p in enumerate(problems)
               if (fmt, key(p, i)) in done}
    if todo:
        lock = threading.Lock()
        engine = LlamaCppEngine(model, n_ctx=args.ctx, n_slots=args.concurrency,
                                n_threads=args.threads)
        sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens)

        def one(problem: dict[str, Any]) -> None:
            prompt = engine.chat_prompt([{"role": "system", "content": SYSTEM},
                                         {"role": "user", "content": problem["question"]}])
            started = time.perf_counter()
            (out,) = generate(engine, prompt, sampling)
            answer = extract_answer(out.text)
            rec = {"format": fmt, "id": problem["_key"], "answer": answer,
                   "reference": str(problem["answer"]),
                   "correct": equivalent(answer, str(problem["answer"])),
                   "tokens": out.tokens, "seconds": round(time.perf_counter() - started, 3),
                   "text": out.text}
            with lock:
                records[rec["id"]] = rec
                if sink:
                    sink.write(json.dumps(rec) + "\n")
                    sink.flush()
                print(f"{fmt} {len(records)}/{len(problems)} {rec['id']} {answer!r} vs "
                      f"{rec['reference']} {'ok' if rec['correct'] else 'WRONG'} "
                      f"{out.tokens} tok", file=sys.stderr)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, todo))
        wall = time.perf_counter() - t0
        engine.close()
        run_tokens = sum(records[p["_key"]]["tokens"] for p in todo)
        print(f"{fmt}: {len(todo)} problems in {wall:.0f} s, {run_tokens / wall:.1f} tok/s "
              f"(concurrency {args.concurrency})")
    return [records[key(p, i)] for i, p in enumerate(problems)]


def key(problem: dict[str, Any], i: int) -> str:
    problem.setdefault("_key", str(problem.get("id", i)))
    return str(problem["_key"])


def summary(fmt: str, recs: list[dict[str, Any]]) -> tuple[str, str]:
    n = len(recs)
    right = sum(bool(r["correct"]) for r in recs)
    lo, hi = wilson(right, n)
    tokens = sum(r["tokens"] for r in recs) / n
    line = (f"{fmt:<9} accuracy {100 * right / n:5.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"({right}/{n}), {tokens:.0f} tokens per problem")
    return line, f"{fmt}={100 * right / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="registry id or GGUF path (the download)")
    ap.add_argument("--formats", nargs="+", default=["download", "q4_0"])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/gsm8k-dev.jsonl")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="default: free cores")
    ap.add_argument("--out", type=Path, default=None, help="JSON lines, resumed if present")
    ap.add_argument("--chunk", type=int, default=0,
                    help="run the formats in turn on this many problems at a time, so a run "
                    "stopped early still compares them on the same problems (0: all at once)")
    args = ap.parse_args()

    import _machine
    from parallel import make_formats

    from ponder.registry import resolve_model

    download = resolve_model(args.model).path
    problems = load_problems(args.data, args.limit)
    done = load_done(args.out)
    for line in _machine.header_lines():
        print(line)
    print(f"model: {download.name}; {len(problems)} problems of {args.data.name}; greedy, "
          f"max_tokens {args.max_tokens}, concurrency {args.concurrency}, "
          f"threads {args.threads or 'free cores'}")
    results: dict[str, list[dict[str, Any]]] = {}
    sink = args.out.open("a") if args.out else None
    try:
        with tempfile.TemporaryDirectory(prefix="ponder-formats-") as tmp:
            files = make_formats(download, args.formats, Path(tmp), args.threads)
            step = args.chunk or len(problems)
            for start in range(0, len(problems), step):
                for fmt, path in files.items():
                    chunk = solve_all(path, fmt, problems[start:start + step], args, done, sink)
                    results.setdefault(fmt, []).extend(chunk)
    finally:
        if sink:
            sink.close()
    print()
    tails = []
    for fmt, recs in results.items():
        line, tail = summary(fmt, recs)
        print(line)
        tails.append(tail)
    first, *others = results
    for fmt in others:
        pairs = list(zip(results[first], results[fmt], strict=True))
        only_first = sum(a["correct"] and not b["correct"] for a, b in pairs)
        only_other = sum(b["correct"] and not a["correct"] for a, b in pairs)
        same = sum(a["answer"] == b["answer"] for a, b in pairs)
        print(f"{fmt} vs {first}: right only with {first} {only_first}, only with {fmt} "
              f"{only_other}; same final answer on {same}/{len(pairs)}")
    print(f"after: {_machine.uptime()}")
    print(f"formats: {' '.join(tails)} (n={len(problems)})")


if __name__ == "__main__":
    main()
