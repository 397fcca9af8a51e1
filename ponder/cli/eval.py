"""`ponder eval`: run several configurations over the same problems and compare them.

Each configuration (an effort, a strategy, or both) solves the same problems with the same
seed. The report (stdout) is a table (accuracy with a 95% Wilson interval, mean tokens,
mean seconds, tokens per correct answer) and a test-time-scaling chart; `--plot` also
writes the chart as a PNG. Records go to --out as JSON Lines, one per problem and
configuration, so `ponder eval --report FILE` redraws everything without running again.
Runs are logged and repeats answered from the log (with the cost they had), but no run
builds on another's chains: each configuration's tokens and seconds are its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
from ponder.cli.replay_view import replay_point, replay_points, replay_table
from ponder.cli.tables import eval_table
from ponder.engines import EngineOptions, Loaded
from ponder.errors import InputError
from ponder.evaluation import Summary, config_label, latest, summarize_all
from ponder.log.keys import Request
from ponder.plot import points_from, require_matplotlib, terminal_chart, write_png
from ponder.problems import Problem, check_limit, load_problems, pending
from ponder.records import Record, check_output, prepare_resume, read_records
from ponder.runner import Plan, make_plan, parse_overrides

CLOCK = time.monotonic

DataArg = Annotated[
    Path | None,
    typer.Argument(help="Problems with reference answers: .jsonl, .csv or .txt, or '-'.",
                   show_default=False),
]
EffortsOpt = Annotated[
    str | None,
    typer.Option("--effort", "-e", help="Effort levels to compare, comma-separated: "
                 "low,medium,high.", rich_help_panel=opt.THINK, show_default=False),
]
StrategiesOpt = Annotated[
    str | None,
    typer.Option("--strategy", "-s", help="Strategies to compare, comma-separated (crossed "
                 "with --effort when both are given).", rich_help_panel=opt.THINK,
                 show_default=False),
]
EvalOutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Save the records (JSON Lines) here, for --report and "
                 "--resume.", rich_help_panel=opt.OUTPUT, show_default=False),
]
EvalResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="Continue the evaluation saved in --out.",
                 rich_help_panel=opt.OUTPUT),
]
PlotOpt = Annotated[
    Path | None,
    typer.Option("--plot", help="Write the test-time-scaling plot to this PNG file.",
                 rich_help_panel=opt.OUTPUT, show_default=False),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", help="Redraw the table and plot from saved records; runs "
                 "nothing.", rich_help_panel=opt.OUTPUT, show_default=False),
]
SamplesOpt = Annotated[
    int | None,
    typer.Option("--samples", min=1, max=256, help="Draw N chains per problem once (the "
                 "first greedy) and record each chain's answer, tokens and confidence; "
                 "--report then replays every strategy on them at k = 1, 2, 4, 8, 16.",
                 rich_help_panel=opt.THINK, show_default=False),
]
EvalJsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON object per configuration instead of the "
                 "table and chart.", rich_help_panel=opt.OUTPUT),
]


@dataclass(frozen=True)
class Config:
    label: str
    plan: Plan


def eval_command(
    data: DataArg = None,
    effort: EffortsOpt = None,
    strategy: StrategiesOpt = None,
    option: opt.OptionOpt = None,
    limit: opt.LimitOpt = None,
    seed: opt.SeedOpt = 0,
    out: EvalOutOpt = None,
    resume: EvalResumeOpt = False,
    overwrite: opt.OverwriteOpt = False,
    plot: PlotOpt = None,
    report: ReportOpt = None,
    json_out: EvalJsonOpt = False,
    samples: SamplesOpt = None,
    field: opt.FieldOpt = None,
    fmt: opt.FormatOpt = None,
    blocks: opt.BlocksOpt = False,
    model: opt.ModelOpt = None,
    budget: opt.BudgetOpt = None,
    time_limit: opt.TimeOpt = None,
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
    """Compare efforts or strategies on DATA: accuracy (95% CI), tokens, time, and a plot."""
    err = Console(stderr=True)
    if plot is not None:
        require_matplotlib()  # before any work, not after the run
    if report is not None:
        if data is not None:
            raise InputError("give DATA or --report FILE, not both")
        show_report(_saved_records(err, report), plot=plot, json_out=json_out, err=err)
        return
    if data is None:
        raise InputError("no data file given", "pass DATA, or --report FILE to redraw one")
    check_limit(limit)
    requested = batch.parse_concurrency(concurrency)
    overrides = parse_overrides(option or [])
    if samples is not None:
        if effort or strategy:
            raise InputError("--samples draws chains for replay; it takes no --effort or "
                             "--strategy")
        configs = [sampling_config(samples, overrides)]
    else:
        configs = configurations(effort, strategy, overrides)
    seconds = opt.parse_duration(time_limit)
    problems = load_problems(data, fmt=fmt, field=field, blocks=blocks)[:limit]
    check_output(out, resume=resume, overwrite=overwrite, source=data)
    with outlock.hold(out):  # one writer per --out, for the whole run
        earlier = prepare_resume(out).records if resume and out else []
        options = EngineOptions(model, gpu_layers, ctx, threads, base_url=base_url,
                                api_key_env=api_key_env, optimize=optimize)
        loaded: Loaded | None = None
        log = open_log("eval", err, no_log, no_cache, reuse=False)
        records = list(earlier)
        interrupted = False
        with closing_writer(out, resume, overwrite, stdout=False) as writer:
            for i, config in enumerate(configs, 1):
                todo = _todo(problems, earlier, config.label)
                if not todo:
                    continue
                if loaded is None:
                    loaded = load(err, engine, options)
                sampling = sampling_for(loaded, seed, temperature,
                                        single_chain=config.plan.spec.single_chain)
                request = Request(config.plan, seed, temperature, budget, seconds, ctx)
                setup = Setup(loaded, config.plan, sampling, budget, seconds, CLOCK, config.label,
                              log.bind(request))
                workers = workers_for(err, requested, loaded, config.plan)
                name = f"{config.label} ({i}/{len(configs)})"
                with progress_view(err, len(todo), name) as view:
                    outcome = batch.run_batch(todo, setup, writer, view, workers)
                records += outcome.records
                if outcome.interrupted:
                    interrupted = True
                    break
    wanted = {(c.label, p.id) for c in configs for p in problems}
    kept = [r for r in records if (config_label(r), r["id"]) in wanted]
    show_report(kept, plot=plot, json_out=json_out, err=err)
    if interrupted:
        finish_interrupted(err, out)


def configurations(efforts: str | None, strategies: str | None,
                   overrides: dict[str, str]) -> list[Config]:
    """Every effort crossed with every strategy; each validated before anything runs."""
    configs = []
    efforts_list: list[str | None] = [*split_list(efforts, "--effort")] or [None]
    strategies_list: list[str | None] = [*split_list(strategies, "--strategy")] or [None]
    for e in efforts_list:
        for s in strategies_list:
            label = "/".join(x for x in (e, s) if x) or "default"
            configs.append(Config(label, make_plan(e, s, overrides)))
    return configs


def sampling_config(n: int, overrides: dict[str, str]) -> Config:
    """The configuration of a sampling run: n chains (greedy first) with logprobs kept."""
    options = {"n": str(n), "greedy_first": "true", "top_logprobs": "5", **overrides}
    return Config(f"samples@{n}", make_plan(None, "vote", options))


def split_list(value: str | None, name: str) -> list[str]:
    """'low, medium,high' into ['low', 'medium', 'high'] (repeats dropped)."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise InputError(f"{name} {value!r} has an empty item")
    return list(dict.fromkeys(items))


def _todo(problems: Sequence[Problem], earlier: Sequence[Record], label: str) -> list[Problem]:
    done = {r["id"] for r in earlier if config_label(r) == label}
    return pending(problems, done)


def _saved_records(err: Console, path: Path) -> list[Record]:
    if not path.exists():
        raise InputError(f"cannot read {path}: No such file or directory")
    existing = read_records(path)
    if existing.unreadable:
        say(err, f"ponder: note: skipped {existing.unreadable} unreadable line(s) in {path}",
            "yellow")
    if not existing.records:
        raise InputError(f"no records in {path}")
    return existing.records


def show_report(records: Sequence[Record], *, plot: Path | None, json_out: bool,
                err: Console) -> list[Summary]:
    """The table and chart on stdout (or JSON), and the PNG when asked for."""
    summaries = summarize_all(latest(records))
    out = Console()
    if not out.is_terminal:
        out = Console(width=max(out.width, 120))
    if json_out:
        for s in summaries:
            out.file.write(json.dumps(s.to_json()) + "\n")
        out.file.flush()
    else:
        out.print(eval_table(summaries, plain=not out.is_terminal))
        replayed = replay_points(records)
        if replayed:
            out.print(replay_table(replayed, plain=not out.is_terminal))
        points = points_from(summaries) + [replay_point(p) for p in replayed]
        if points:
            out.print(terminal_chart(points, width=max(24, min(64, out.width - 12))))
        else:
            say(err, "ponder: note: no reference answers, so no accuracy to chart", "yellow")
    if plot is not None:
        write_png(plot, points_from(summaries) + [replay_point(p) for p in
                                                  replay_points(records)])
        say(err, f"ponder: plot written to {plot}")
    return summaries
