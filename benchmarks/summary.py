"""Milliseconds to summarize real reasoning traces with `ponder.summary.summarize`.

    python benchmarks/summary.py [--data FILE] [--repeats 5]

For each of the 50 MATH-500 traces in DATA (../shared/data/traces beside the checkout),
the thinking (before </think>) is summarized --repeats times and the best CPU time of
this process is kept (time.process_time: on a shared machine wall-clock time measures
the other processes too). Prints the traces by
length, then the median and the largest time and the time on the longest trace, with its
length in characters and in generated tokens as the source counted them. No model runs:
the summary is extractive.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ponder.engines  # noqa: E402,F401  (import order: see issue 11, section 6)
from ponder.answers import extract_answer  # noqa: E402
from ponder.summary import summarize  # noqa: E402

TRACES = ("shared", "data", "traces", "math500-reasoning-traces.jsonl")
# shared/ sits beside the checkout; a git worktree kept one folder deeper looks one up
DATA = next((p for p in (ROOT.parent.joinpath(*TRACES), ROOT.parent.parent.joinpath(*TRACES))
             if p.is_file()), ROOT.parent.joinpath(*TRACES))


def best_ms(thinking: str, answer: str | None, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        summarize(thinking, answer)
        times.append(time.process_time() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines()]
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{len(rows)} traces, best CPU time of {args.repeats}")
    results = []
    for row in rows:
        thinking, _, answer_text = row["text"].partition("</think>")
        answer = extract_answer(answer_text) if answer_text.strip() else None
        ms = best_ms(thinking, answer, args.repeats)
        results.append((len(thinking), row["generated_tokens"], ms, row["id"]))
    for chars, tokens, ms, trace_id in sorted(results)[-5:]:
        print(f"{trace_id:45} {chars:>7,} chars {tokens:>7,} tokens {ms:7.1f} ms CPU")
    times = [ms for _, _, ms, _ in results]
    chars, tokens, ms, trace_id = max(results)
    print(f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms CPU; "
          f"longest trace ({chars:,} chars, {tokens:,} tokens) {ms:.1f} ms CPU")


if __name__ == "__main__":
    main()
