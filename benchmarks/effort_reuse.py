"""Effort that builds on the log: one question at low, then medium, then high, against high cold.

    python benchmarks/effort_reuse.py [--model ID_OR_PATH] [--data FILE] [--index I]
        [--seed 0] [--threads N] [--ctx 4096] [--slots 8] [--out FILE]

The model is loaded once. "cold" asks problem I of FILE at `high` with an empty log.
"building" asks the same question at `low`, then `medium`, then `high` with one log, so
that each step replays the chains the earlier steps logged (same sampling settings, same
seed) and samples only what is new. For each step it prints the tokens and seconds the
step adds, the chains it reused and the tokens they saved, and the answer; then the
building chain's totals and its `high` step against `high` cold. Last, `ponder ask -e high`
asks the question again in a new process (wall time from start to exit, a cache hit) and
the size of the log is printed. Both logs are temporary. The default model is
qwen2.5-coder-0.5b when it is installed, else smollm2-135m.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ponder.answers import equivalent  # noqa: E402
from ponder.cli._engine import sampling_for  # noqa: E402
from ponder.engines import EngineOptions, Loaded, load_engine  # noqa: E402
from ponder.log.keys import Request  # noqa: E402
from ponder.log.session import RunLog, Switches  # noqa: E402
from ponder.registry import installed_path, load_registry  # noqa: E402
from ponder.runner import drain, make_plan, make_task, result_record, run_plan  # noqa: E402

STEPS = ("low", "medium", "high")


@dataclass
class Step:
    label: str
    tokens: int
    seconds: float
    chains: int
    reused: int
    saved: int
    answer: str | None
    correct: bool


def default_model() -> str:
    entry = load_registry().find("qwen2.5-coder-0.5b")
    return "qwen2.5-coder-0.5b" if entry and installed_path(entry) else "smollm2-135m"


def ask(loaded: Loaded, log: RunLog, question: str, reference: str, effort: str,
        seed: int, label: str, ctx: int) -> Step:
    """One logged `ask` at `effort`, as the CLI runs it (minus the model load)."""
    plan = make_plan(effort, None)
    single = plan.spec.single_chain
    task = make_task(question, loaded, sampling_for(loaded, seed, None, single_chain=single),
                     single_chain=single)
    entry = log.begin(task, loaded, Request(plan, seed, ctx=ctx))
    started = time.perf_counter()
    result = drain(run_plan(task, plan))
    seconds = time.perf_counter() - started
    record = entry.finish(result_record(question, result, loaded, plan, seconds), result)
    return Step(label, result.completion_tokens, seconds, len(result.samples),
                record["reuse"]["chains"], record["reuse"]["tokens_saved"], result.answer,
                equivalent(result.answer, reference))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default="/work/shared/data/gsm8k-dev.jsonl")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model = args.model or default_model()
    lines = Path(args.data).read_text(encoding="utf-8").splitlines()
    problem = json.loads(lines[args.index])
    question, reference = problem["question"], str(problem["answer"])
    load_started = time.perf_counter()
    loaded = load_engine("llama", EngineOptions(model, n_ctx=args.ctx, threads=args.threads,
                                                slots=args.slots))
    load_seconds = time.perf_counter() - load_started
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ponder-bench-") as tmp:
        cold_log = RunLog("bench", Switches(), notes.append, Path(tmp) / "cold.db")
        cold = ask(loaded, cold_log, question, reference, "high", args.seed, "high (cold)",
                   args.ctx)
        db = Path(tmp) / "building.db"
        log = RunLog("bench", Switches(), notes.append, db)
        steps = [ask(loaded, log, question, reference, e, args.seed, f"{e} (building)",
                     args.ctx) for e in STEPS]
        log.close()
        again = ask_again(model, question, args, db)
        size = sum(p.stat().st_size for p in Path(tmp).glob("building.db*"))
    report = render(model, problem["id"], reference, load_seconds, cold, steps, args, notes)
    report += (f"\nask -e high again (new process, answered from the log): {again}"
               f"\nlog after the three steps: {size / 1e6:.2f} MB")
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")


def ask_again(model: str, question: str, args: argparse.Namespace, db: Path) -> str:
    """`ponder ask -e high` in a new process on the building log: wall seconds and cached."""
    env = dict(os.environ, PONDER_LOG=str(db))
    command = [sys.executable, "-m", "ponder", "ask", "--json", "--no-optimize", "-m", model,
               "-e", "high", "--seed", str(args.seed), "--ctx", str(args.ctx), question]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=1800)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        return f"failed ({proc.stderr.strip().splitlines()[-1:]})"
    record = json.loads(proc.stdout)
    return f"{seconds:.2f}s wall, cached {record['cached']}"


def render(model: str, pid: str, reference: str, load_seconds: float, cold: Step,
           steps: list[Step], args: argparse.Namespace, notes: list[str]) -> str:
    out = [f"# effort_reuse: {model}, problem {pid} (reference {reference}), seed {args.seed}",
           f"# {platform.machine()}, {os.cpu_count()} cores, threads {args.threads or 'auto'},"
           f" ctx {args.ctx}, slots {args.slots}; model load {load_seconds:.1f}s (not counted)",
           f"{'step':<18}{'new tokens':>11}{'seconds':>9}{'chains':>8}{'reused':>8}"
           f"{'tokens saved':>14}  answer"]
    for s in [cold, *steps]:
        mark = "right" if s.correct else "wrong"
        out.append(f"{s.label:<18}{s.tokens:>11}{s.seconds:>9.1f}{s.chains:>8}{s.reused:>8}"
                   f"{s.saved:>14}  {s.answer} ({mark})")
    high = steps[-1]
    total_tokens = sum(s.tokens for s in steps)
    total_seconds = sum(s.seconds for s in steps)
    out.append(f"building, all three steps: {total_tokens} tokens, {total_seconds:.1f}s "
               f"(high cold: {cold.tokens} tokens, {cold.seconds:.1f}s)")
    out.append(f"high after low and medium: {high.tokens} new tokens "
               f"({_share(high.tokens, cold.tokens)} of cold), {high.seconds:.1f}s "
               f"({_share(high.seconds, cold.seconds)} of cold)")
    out.extend(f"# note: {n}" for n in notes)
    return "\n".join(out)


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


if __name__ == "__main__":
    main()
