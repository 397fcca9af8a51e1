"""The run log in the commands: its options, opening it, and showing a logged answer."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ponder.cli import _options as opt
from ponder.log.session import Entry, RunLog, hit_note, switches

if TYPE_CHECKING:  # the renderer (rich.markdown) is imported only to print a summary
    from ponder.cli.render import ThinkingMode
    from ponder.events import Result
    from ponder.runner import Plan

NoLogOpt = Annotated[
    bool,
    typer.Option("--no-log", help="Do not write this run to the log (nor read it).",
                 rich_help_panel=opt.OUTPUT),
]
NoCacheOpt = Annotated[
    bool,
    typer.Option("--no-cache", help="Run afresh: neither answer from the log nor build on "
                 "its chains (the run is still logged).", rich_help_panel=opt.OUTPUT),
]

ASK_KEYS = ("question", "answer", "text", "thinking", "model", "effort", "strategy",
            "settings", "run", "usage", "seconds", "finish_reason", "interrupted", "samples",
            "votes", "summary", "summary_source")
"""The fields of `ponder ask --json` (see `ponder.runner.result_record`)."""


def open_log(command: str, err: Console, no_log: bool, no_cache: bool, *,
             reuse: bool = True) -> RunLog:
    """The command's log, per the flags and the config file; notes go to `err`."""
    def warn(text: str) -> None:
        err.print(text, style="yellow", markup=False, highlight=False, soft_wrap=True)

    return RunLog(command, switches(no_log, no_cache, reuse=reuse), warn)


def answer_from_log(entry: Entry, question: str, plan: Plan, err: Console, mode: ThinkingMode,
                    *, json_out: bool, quiet: bool) -> None:
    """Print a cached answer the way `ask` prints a fresh one, and log the lookup."""
    hit = entry.hit
    assert hit is not None
    record: dict[str, Any] = {k: hit.record[k] for k in ASK_KEYS if k in hit.record}
    record.update(question=question, effort=plan.effort)
    record = entry.finish(record)
    err.print(hit_note(hit), style="dim", markup=False, highlight=False, soft_wrap=True)
    result = hit.result()
    if json_out:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif quiet:
        sys.stdout.write((result.answer or "") + "\n")
        sys.stdout.flush()
    else:
        from ponder.cli.render import print_answer

        show_summary(err, result, hit.seconds, mode)
        print_answer(Console(), result)


def show_summary(console: Console, result: Result, seconds: float,
                 mode: ThinkingMode = "summary") -> None:
    """The collapsed thinking summary `ask` printed for `result` after `seconds`."""
    from ponder.cli.render import Renderer
    from ponder.events import ChainDone, ChainStarted

    renderer = Renderer(console, mode, clock=lambda: 0.0)
    renderer.clock = lambda: seconds
    for s in result.samples:
        renderer.handle(ChainStarted(s.chain))
        renderer.handle(ChainDone(s.chain, s.answer, s.tokens, s.finish_reason, s.confidence,
                                  s.score))
    renderer.summary(result)
