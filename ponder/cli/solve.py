"""`ponder solve`: answer every problem of a file, one JSON record per problem.

Records go to --out (or stdout) as each problem finishes; progress and the closing summary
go to stderr. `--resume` continues an interrupted run from its output file.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ponder import batch, outlock
from ponder.batch import Setup
from ponder.cli import _options as opt
from ponder.cli._engine import load, sampling_for
from ponder.cli._runlog import NoCacheOpt, NoLogOpt, open_log
from ponder.cli._runs import closing_writer, finish_interrupted, say, workers_for
from ponder.cli.progress import progress_view
from ponder.cli.tables import run_table
from ponder.engines import EngineOptions
from ponder.evaluation import summarize
from ponder.log.keys import Request
from ponder.problems import Problem, check_limit, load_problems, pending
from ponder.records import Record, check_output, prepare_resume
from ponder.runner import make_plan, parse_overrides

CLOCK = time.monotonic

FileArg = Annotated[
    Path,
    typer.Argument(help="Problems: a .txt, .jsonl or .csv file, or '-' for stdin.",
                   show_default=False),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write the JSON Lines records to this file (default: stdout).",
                 rich_help_panel=opt.OUTPUT, show_default=False),
]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="Continue the run in --out: skip the problems it already "
                 "holds, redo interrupted ones.", rich_help_panel=opt.OUTPUT),
]
def solve(
    file: FileArg,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    overwrite: opt.OverwriteOpt = False,
    field: opt.FieldOpt = None,
    fmt: opt.FormatOpt = None,
    blocks: opt.BlocksOpt = False,
    limit: opt.LimitOpt = None,
    model: opt.ModelOpt = None,
    effort: opt.EffortOpt = None,
    strategy: opt.StrategyOpt = None,
    option: opt.OptionOpt = None,
    budget: opt.BudgetOpt = None,
    time_limit: opt.TimeOpt = None,
    seed: opt.SeedOpt = 0,
    temperature: opt.TemperatureOpt = None,
    concurrency: opt.ConcurrencyOpt = None,
    engine: opt.EngineOpt = None,
    base_url: opt.BaseUrlOpt = None,
    api_key_env: opt.ApiKeyEnvOpt = None,
    gpu_layers: opt.GpuLayersOpt = None,
    ctx: opt.CtxOpt = None,
    threads: opt.ThreadsOpt = None,
    optimize: opt.OptimizeOpt = True,
    no_log: NoLogOpt = False,
    no_cache: NoCacheOpt = False,
) -> None:
    """Solve every problem in FILE; one JSON record per problem to --out or stdout."""
    check_limit(limit)
    requested = batch.parse_concurrency(concurrency)
    plan = make_plan(effort, strategy, parse_overrides(option or []))
    seconds = opt.parse_duration(time_limit)
    problems = load_problems(file, fmt=fmt, field=field, blocks=blocks)[:limit]
    check_output(out, resume=resume, overwrite=overwrite, source=file)
    with outlock.hold(out):  # one writer per --out, for the whole run
        err = Console(stderr=True)
        earlier = _earlier_records(out, problems) if resume and out else []
        todo = pending(problems, {r["id"] for r in earlier})
        if not todo:
            say(err, f"ponder: nothing to do: all {len(problems)} problems are already in {out}")
            return
        options = EngineOptions(model, gpu_layers, ctx, threads, base_url=base_url,
                                api_key_env=api_key_env, optimize=optimize)
        loaded = load(err, engine, options)
        sampling = sampling_for(loaded, seed, temperature, single_chain=plan.spec.single_chain)
        setup = Setup(loaded, plan, sampling, budget, seconds, CLOCK,
                      log=open_log("solve", err, no_log, no_cache).bind(
                          Request(plan, seed, temperature, budget, seconds, ctx)))
        workers = workers_for(err, requested, loaded, plan)
        started = CLOCK()
        with closing_writer(out, resume, overwrite) as writer:
            to_terminal = out is None and _stdout_is_terminal()
            with progress_view(err, len(todo), "solving", live_ok=not to_terminal) as view:
                outcome = batch.run_batch(todo, setup, writer, view, workers)
        summary = summarize([*earlier, *outcome.records])
        run_tokens = sum(int(r.get("tokens") or 0) for r in outcome.records)
        err.print(run_table(summary, elapsed=CLOCK() - started, run_tokens=run_tokens,
                            skipped=len(earlier),
                            plain=not err.is_terminal, out=str(out) if out else None))
        if outcome.interrupted:
            finish_interrupted(err, out)


def _earlier_records(out: Path, problems: Sequence[Problem]) -> list[Record]:
    """The records --resume keeps (the file is repaired first), for these problems only."""
    existing = prepare_resume(out)
    wanted = {p.id for p in problems}
    return [r for r in existing.records if r["id"] in wanted]


def _stdout_is_terminal() -> bool:
    return Console().is_terminal
