"""`ponder ask`: answer one question, streaming a digest of the thinking."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ponder import textinput
from ponder.cli import _options as opt
from ponder.cli._runlog import NoCacheOpt, NoLogOpt, answer_from_log, open_log
from ponder.engines import EngineOptions, default_engine
from ponder.errors import InputError
from ponder.log.keys import Request
from ponder.runner import make_plan, parse_overrides

if TYPE_CHECKING:  # imported where a fresh run needs them: a cache hit does without
    from ponder.cli.render import Renderer, ThinkingMode
    from ponder.events import Result
    from ponder.log.session import RunLog

CLOCK = time.monotonic

QuestionArg = Annotated[
    list[str] | None,
    typer.Argument(help="The question (or use --file, or pipe it on stdin).", show_default=False),
]
ThinkingOpt = Annotated[
    str,
    typer.Option("--thinking", help="How to show thinking: summary, full or hidden.",
                 rich_help_panel=opt.OUTPUT),
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only the extracted final answer; nothing on "
                 "stderr.", rich_help_panel=opt.OUTPUT),
]


def ask(
    question: QuestionArg = None,
    file: opt.FileOpt = None,
    model: opt.ModelOpt = None,
    effort: opt.EffortOpt = None,
    strategy: opt.StrategyOpt = None,
    option: opt.OptionOpt = None,
    budget: opt.BudgetOpt = None,
    time_limit: opt.TimeOpt = None,
    seed: opt.SeedOpt = 0,
    temperature: opt.TemperatureOpt = None,
    thinking: ThinkingOpt = "summary",
    summary: opt.SummaryOpt = "extractive",
    json_out: opt.JsonOpt = False,
    quiet: QuietOpt = False,
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
    """Ask a question; the answer goes to stdout, the thinking digest to stderr."""
    text = read_question(question, file)
    mode = _thinking_mode(thinking)
    source = opt.parse_summary(summary)
    plan = make_plan(effort, strategy, parse_overrides(option or []))
    seconds = opt.parse_duration(time_limit)
    err = Console(stderr=True, quiet=quiet)
    options = EngineOptions(model, gpu_layers, ctx, threads, base_url=base_url,
                            api_key_env=api_key_env, optimize=optimize)
    log = open_log("ask", err, no_log, no_cache)
    request = Request(plan, seed, temperature, budget, seconds, ctx)
    entry = log.lookup(text, request, engine or default_engine(), options)
    if entry is not None and entry.hit is not None:  # answered before any model is loaded
        answer_from_log(entry, text, plan, err, mode, json_out=json_out, quiet=quiet)
        return
    _fresh(text, request, log, err, mode, engine, options, source, json_out=json_out,
           quiet=quiet)


def _fresh(text: str, request: Request, log: RunLog, err: Console, mode: ThinkingMode,
           engine: str | None, options: EngineOptions, source: opt.SummarySource, *,
           json_out: bool, quiet: bool) -> None:
    """Load the model and think (unless the loaded model's key finds the answer logged)."""
    from ponder.cli._engine import load, sampling_for
    from ponder.cli._summary import add_model_summary, wants_model_summary
    from ponder.cli.render import Renderer
    from ponder.runner import drive, make_task, result_record, run_plan

    plan = request.plan
    loaded = load(err, engine, options)
    sampling = sampling_for(loaded, request.seed, request.temperature,
                            single_chain=plan.spec.single_chain)
    task = make_task(text, loaded, sampling, budget=request.budget, seconds=request.seconds,
                     clock=CLOCK, single_chain=plan.spec.single_chain)
    entry = log.begin(task, loaded, request)
    if entry.hit is not None:
        answer_from_log(entry, text, plan, err, mode, json_out=json_out, quiet=quiet)
        return
    started = CLOCK()
    with Renderer(err, mode, clock=CLOCK) as renderer:
        result = drive(run_plan(task, plan), renderer.handle)
    if wants_model_summary(source, shown=mode == "summary" and not quiet, json_out=json_out):
        result = add_model_summary(renderer.console, task, result)
    elapsed = CLOCK() - started
    record = entry.finish(result_record(text, result, loaded, plan, elapsed), result)
    _emit(record, result, renderer, json_out=json_out, quiet=quiet)
    if result.interrupted:
        raise typer.Exit(130)


def _emit(record: dict[str, Any], result: Result, renderer: Renderer, *, json_out: bool,
          quiet: bool) -> None:
    from ponder.cli.render import print_answer

    out = Console()
    if json_out:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif quiet:
        sys.stdout.write((result.answer or "") + "\n")
        sys.stdout.flush()
    else:
        renderer.summary(result)
        print_answer(out, result)
    if result.interrupted:
        renderer.console.print("ponder: interrupted; the answer above is what was produced "
                               "so far", style="yellow")
    elif result.answer is None and not result.text:
        renderer.console.print("ponder: the model gave no answer", style="yellow")


def _thinking_mode(value: str) -> ThinkingMode:
    if value not in ("summary", "full", "hidden"):
        raise InputError(f"--thinking {value!r} is not one of summary, full, hidden")
    return value  # type: ignore[return-value]


def read_question(words: list[str] | None, file: Path | None) -> str:
    """The question from the arguments, --file (or '-'), or piped stdin: UTF-8 text with
    no control characters, and not empty."""
    if words and file is not None:
        raise InputError("give the question as arguments or with --file, not both")
    if words:
        text, where = textinput.check(" ".join(words), "the question"), "the question"
    elif file is not None and str(file) != "-":
        text, where = textinput.decode(_read_bytes(file), str(file)), str(file)
    elif file is not None or not sys.stdin.isatty():
        text, where = textinput.decode(textinput.read_stdin(), "stdin"), "stdin"
    else:
        raise InputError("no question given", "pass it as an argument, with --file, or on stdin")
    if not text.strip():
        raise InputError(f"{where} is empty", "give a question to answer")
    return text.strip()


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
