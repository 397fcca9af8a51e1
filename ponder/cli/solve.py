"""`ponder solve`: answer every problem of a file, one JSON record per problem.

Records go to --out (or stdout) as each problem finishes; progress and the closing summary
go to stderr. `--resume` continues an interrupted run from its output file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
from rich.progress import Progress as RichProgress

from ponder import batch
from ponder.batch import Problem, Record, Setup
from ponder.cli import _options as opt
from ponder.cli._engine import load, sampling_for
from ponder.cli._runlog import NoCacheOpt, NoLogOpt, open_log
from ponder.engines import EngineOptions, Loaded
from ponder.evaluation import percent, run_table, summarize
from ponder.events import BudgetUpdate, StrategyEvent
from ponder.log.keys import Request
from ponder.runner import Plan, make_plan, parse_overrides

CLOCK = time.monotonic
INPUT = "Input"

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
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace an --out file that already holds results.",
                 rich_help_panel=opt.OUTPUT),
]
FieldOpt = Annotated[
    str | None,
    typer.Option("--field", help="The question field of .jsonl/.csv input (default: "
                 "question); 'answer' is the reference and 'id' the id when present.",
                 rich_help_panel=INPUT, show_default=False),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="Input format: txt, jsonl or csv (default: from the file "
                 "suffix).", rich_help_panel=INPUT, show_default=False),
]
BlocksOpt = Annotated[
    bool,
    typer.Option("--blocks", help="Text input: problems are separated by blank lines "
                 "(default: one per line).", rich_help_panel=INPUT),
]
LimitOpt = Annotated[
    int | None,
    typer.Option("--limit", help="Only the first K problems.", rich_help_panel=INPUT,
                 show_default=False, metavar="K"),
]
ConcurrencyOpt = Annotated[
    str | None,
    typer.Option("--concurrency", help="Problems run at once: a number or auto (default: "
                 "auto: as many as the engine's slots or connections hold with the "
                 "strategy's chains). Their chains share the engine's decode batches.",
                 rich_help_panel=opt.ENGINE, show_default=False, metavar="K|auto"),
]


def solve(
    file: FileArg,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    field: FieldOpt = None,
    fmt: FormatOpt = None,
    blocks: BlocksOpt = False,
    limit: LimitOpt = None,
    model: opt.ModelOpt = None,
    effort: opt.EffortOpt = None,
    strategy: opt.StrategyOpt = None,
    option: opt.OptionOpt = None,
    budget: opt.BudgetOpt = None,
    time_limit: opt.TimeOpt = None,
    seed: opt.SeedOpt = 0,
    temperature: opt.TemperatureOpt = None,
    concurrency: ConcurrencyOpt = None,
    engine: opt.EngineOpt = None,
    base_url: opt.BaseUrlOpt = None,
    api_key_env: opt.ApiKeyEnvOpt = None,
    gpu_layers: opt.GpuLayersOpt = 0,
    ctx: opt.CtxOpt = None,
    threads: opt.ThreadsOpt = None,
    optimize: opt.OptimizeOpt = True,
    no_log: NoLogOpt = False,
    no_cache: NoCacheOpt = False,
) -> None:
    """Solve every problem in FILE; one JSON record per problem to --out or stdout."""
    batch.check_limit(limit)
    requested = batch.parse_concurrency(concurrency)
    plan = make_plan(effort, strategy, parse_overrides(option or []))
    seconds = opt.parse_duration(time_limit)
    problems = batch.load_problems(file, fmt=fmt, field=field, blocks=blocks)[:limit]
    batch.check_output(out, resume=resume, overwrite=overwrite, source=file)
    err = Console(stderr=True)
    earlier = _earlier_records(out, problems) if resume and out else []
    todo = batch.pending(problems, {r["id"] for r in earlier})
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
    workers = workers_for(err, requested, loaded, plan, options.slots)
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


def workers_for(err: Console, requested: int | None, loaded: Loaded, plan: Plan,
                slots: int) -> int:
    """Problems at once; says so when an asked-for concurrency cannot be used."""
    workers = batch.choose_workers(requested, loaded, plan, slots)
    if requested is not None and requested > workers:
        say(err, f"ponder: note: this engine solves one problem at a time; --concurrency "
            f"{requested} runs them in turn", "yellow")
    return workers


def _earlier_records(out: Path, problems: Sequence[Problem]) -> list[Record]:
    """The records --resume keeps (the file is repaired first), for these problems only."""
    existing = batch.prepare_resume(out)
    wanted = {p.id for p in problems}
    return [r for r in existing.records if r["id"] in wanted]


def _stdout_is_terminal() -> bool:
    return Console().is_terminal


@contextmanager
def closing_writer(out: Path | None, resume: bool, overwrite: bool,
                   stdout: bool = True) -> Iterator[batch.RecordWriter]:
    writer = batch.open_writer(out, resume=resume, overwrite=overwrite, stdout=stdout)
    try:
        yield writer
    finally:
        writer.close()


def say(console: Console, text: str, style: str | None = None) -> None:
    """One plain line on `console`: no markup, no highlighting, never wrapped."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def finish_interrupted(err: Console, out: Path | None) -> None:
    """Tell how to continue after Ctrl-C, then exit 130."""
    hint = f"; continue with --resume --out {out}" if out else ""
    say(err, f"ponder: interrupted{hint}", "yellow")
    raise typer.Exit(130)


# ---------------------------------------------------------------------------------------
# Progress on stderr


@dataclass
class Tally:
    """Running totals for the progress display."""

    total: int
    started: float
    done: int = 0
    tokens: int = 0
    scored: int = 0
    correct: int = 0
    live: dict[str, int] = field(default_factory=dict)

    def record(self, record: Record) -> None:
        self.live.pop(record["id"], None)
        self.done += 1
        self.tokens += int(record.get("tokens") or 0)
        if record.get("reference") is not None and record.get("status") != "interrupted":
            self.scored += 1
            self.correct += record.get("correct") is True

    def text(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        parts = []
        if 0 < self.done < self.total:
            parts.append("ETA " + _clock_text(elapsed / self.done * (self.total - self.done)))
        parts.append(f"{(self.tokens + sum(self.live.values())) / elapsed:,.1f} tok/s")
        if self.scored:
            parts.append(f"acc {self.correct}/{self.scored} {percent(self.correct / self.scored)}")
        return " · ".join(parts)


def _clock_text(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class BarView:
    """A live progress bar (terminal): done/total, ETA, tokens/s, running accuracy."""

    def __init__(self, console: Console, total: int, label: str) -> None:
        self.tally = Tally(total, CLOCK())
        self.bar = RichProgress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            console=console, redirect_stdout=False, redirect_stderr=False,
        )
        self.task = self.bar.add_task(label, total=total, stats="")

    def started(self, problem: Problem) -> None:
        self.tally.live[problem.id] = 0

    def event(self, problem: Problem, event: StrategyEvent) -> None:
        if isinstance(event, BudgetUpdate):
            self.tally.live[problem.id] = event.used
            self.bar.update(self.task, stats=self.tally.text(CLOCK()))

    def finished(self, problem: Problem, record: Record) -> None:
        self.tally.record(record)
        self.bar.update(self.task, completed=self.tally.done, stats=self.tally.text(CLOCK()))


class LineView:
    """Plain progress (not a terminal): one line per finished problem."""

    def __init__(self, console: Console, total: int, label: str) -> None:
        self.console = console
        self.label = label
        self.tally = Tally(total, CLOCK())

    def started(self, problem: Problem) -> None:
        self.tally.live[problem.id] = 0

    def event(self, problem: Problem, event: StrategyEvent) -> None:
        if isinstance(event, BudgetUpdate):
            self.tally.live[problem.id] = event.used

    def finished(self, problem: Problem, record: Record) -> None:
        self.tally.record(record)
        head = f"[{self.label} {self.tally.done}/{self.tally.total}] {record['id']}: "
        self.console.print(head + describe(record) + " · " + self.tally.text(CLOCK()),
                           markup=False, highlight=False, soft_wrap=True)


def describe(record: Record) -> str:
    """A one-line account of a record for the plain progress display."""
    if record["status"] == "error":
        return f"error: {record.get('error')}"
    answer = record.get("answer")
    text = "no answer" if answer is None else f"answer {answer}"
    if record["status"] == "interrupted":
        text += " [interrupted]"
    elif record.get("reference") is not None:
        verdict = "correct" if record.get("correct") else "wrong"
        text += f" ({verdict}, reference {record['reference']})"
    return f"{text} · {record.get('tokens', 0)} tokens · {record.get('seconds', 0):.1f}s"


@contextmanager
def progress_view(console: Console, total: int, label: str,
                  live_ok: bool = True) -> Iterator[batch.Progress]:
    """A live bar on a terminal, plain lines otherwise (or when stdout shares the terminal)."""
    if console.is_terminal and live_ok:
        view = BarView(console, total, label)
        with view.bar:
            yield view
    else:
        yield LineView(console, total, label)
