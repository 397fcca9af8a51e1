"""`--summary model` in the commands: when to ask the model for its summary, and the notes
on stderr when it is skipped (the extractive summary is shown instead)."""

from __future__ import annotations

from rich.console import Console

from ponder.cli._options import SummarySource
from ponder.errors import PonderError
from ponder.events import Result
from ponder.model_summary import skip_reason, with_summary, write_summary
from ponder.strategies.base import Task


def wants_model_summary(source: SummarySource, *, shown: bool, json_out: bool) -> bool:
    """Whether to spend tokens on a model summary: asked for, and printed (in the thinking
    summary on stderr, or in the JSON record)."""
    return source == "model" and (shown or json_out)


def add_model_summary(err: Console, task: Task, result: Result) -> Result:
    """`result` with the model's summary of its thinking, its tokens in the usage.

    No thinking (or an interrupted run): no summary call. A spent budget or time limit, an
    engine error or Ctrl-C: the result as it was, so the extractive summary is shown, with
    one note on `err`.
    """
    if result.interrupted or not result.thinking.strip():
        return result
    reason = skip_reason(task.budget)
    if reason is None:
        try:
            with err.status("Summarizing the thinking…", spinner="dots"):
                summary = write_summary(task, result)
        except KeyboardInterrupt:
            reason = "interrupted"
        except PonderError as exc:
            reason = str(exc)
        else:
            if not summary.text:
                reason = "the model wrote none"
            result = with_summary(result, summary)
    if reason is not None:
        err.print(f"ponder: note: no model summary ({reason}); the summary is extractive",
                  style="yellow", markup=False, highlight=False, soft_wrap=True)
    return result
