"""What a user gets without ponder: plain llama-cpp-python, one greedy chain per problem.

    python benchmarks/baseline.py --model qwen2.5-coder-1.5b \
        --data ../shared/data/gsm8k-dev.jsonl --limit 100 --out benchmarks/results/baseline.jsonl

`Llama.create_chat_completion` with the model's own chat template, temperature 0, the usual
system prompt ("Think step by step, then give the final answer as \\boxed{N}.") and up to
`--max-tokens` tokens, one problem after another. Answers are extracted and compared with
ponder's own `extract_answer`/`equivalent`, so the baseline is graded exactly like ponder.

`--out` keeps one JSON line per problem and is resumed: problems already in it are not run
again. The last line printed is
`baseline: accuracy=A% [lo, hi] tokens=T seconds=S (n=N)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.answers import equivalent, extract_answer  # noqa: E402
from ponder.evaluation import wilson  # noqa: E402
from ponder.registry import resolve_model  # noqa: E402

SYSTEM = "Think step by step, then give the final answer as \\boxed{N}."


def load_problems(path: Path, limit: int | None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def load_done(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    done: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            done[str(rec["id"])] = rec
    return done


def solve(llm: Any, question: str, max_tokens: int) -> tuple[str, int]:
    out = llm.create_chat_completion(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        temperature=0.0, max_tokens=max_tokens, seed=0,
    )
    text = out["choices"][0]["message"]["content"] or ""
    return text, int(out["usage"]["completion_tokens"])


def summary_line(records: list[dict[str, Any]]) -> str:
    n = len(records)
    correct = sum(bool(r["correct"]) for r in records)
    lo, hi = wilson(correct, n)
    tokens = sum(r["tokens"] for r in records) / n
    seconds = sum(r["seconds"] for r in records) / n
    return (f"baseline: accuracy={100 * correct / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"tokens={tokens:.0f} seconds={seconds:.1f} (n={n})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="registered id/alias or a .gguf path")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/gsm8k-dev.jsonl")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", type=Path, default=None, help="JSON lines, resumed if present")
    args = ap.parse_args()

    from llama_cpp import Llama

    path = resolve_model(args.model).path
    llm = Llama(model_path=str(path), n_ctx=args.ctx, n_threads=args.threads, verbose=False)
    problems = load_problems(args.data, args.limit)
    done = load_done(args.out)
    records: list[dict[str, Any]] = []
    sink = args.out.open("a") if args.out else None
    print(f"# model={path.name} threads={args.threads} max_tokens={args.max_tokens} "
          f"problems={len(problems)} load={os.getloadavg()[0]:.2f}", file=sys.stderr)
    for i, p in enumerate(problems):
        key = str(p.get("id", i))
        if key in done:
            records.append(done[key])
            continue
        started = time.perf_counter()
        text, tokens = solve(llm, p["question"], args.max_tokens)
        answer = extract_answer(text)
        rec = {"id": key, "answer": answer, "reference": str(p["answer"]),
               "correct": equivalent(answer, str(p["answer"])), "tokens": tokens,
               "seconds": round(time.perf_counter() - started, 3), "text": text}
        records.append(rec)
        if sink:
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
        print(f"{i + 1}/{len(problems)} {key} {answer!r} vs {p['answer']} "
              f"{'ok' if rec['correct'] else 'WRONG'} {tokens} tok {rec['seconds']:.1f}s",
              file=sys.stderr)
    if sink:
        sink.close()
    print(summary_line(records))


if __name__ == "__main__":
    main()
