"""The tables `ponder eval` and `ponder solve` print, drawn from evaluation summaries."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table

from ponder.evaluation import Summary


def percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def interval_text(ci: tuple[float, float] | None) -> str:
    return "—" if ci is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def number(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def accuracy_text(s: Summary) -> str:
    """'3/4 = 75.0% (95% CI 30.1–95.4%)', or '—' without references."""
    if s.accuracy is None:
        return "—"
    return f"{s.correct}/{s.scored} = {percent(s.accuracy)} (95% CI {interval_text(s.interval)})"


def eval_table(summaries: Sequence[Summary], *, plain: bool = False) -> Table:
    """One row per configuration: accuracy and CI, costs, and tokens per correct answer."""
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, title="Evaluation",
                  title_justify="left", pad_edge=False, caption_justify="left",
                  caption="tokens, secs: mean per question · tok/correct: tokens per right answer")
    table.add_column("config")
    for col in ("n", "correct", "accuracy", "95% CI", "tokens", "secs", "tok/correct"):
        table.add_column(col, justify="right", no_wrap=True)
    show_errors = any(s.errors or s.interrupted for s in summaries)
    if show_errors:
        table.add_column("errors", justify="right")
    for s in summaries:
        row = [s.label, str(s.scored or s.ran), str(s.correct) if s.scored else "—",
               percent(s.accuracy), interval_text(s.interval), number(s.mean_tokens, 1),
               number(s.mean_seconds, 2), number(s.tokens_per_correct, 1)]
        if show_errors:
            row.append(_error_cell(s))
        table.add_row(*row)
    return table


def _error_cell(s: Summary) -> str:
    cell = str(s.errors)
    return cell + (f" (+{s.interrupted} interrupted)" if s.interrupted else "")


def run_table(s: Summary, *, elapsed: float, run_tokens: int, skipped: int = 0,
              plain: bool = False, out: str | None = None) -> Table:
    """The summary `ponder solve` prints at the end of a run. Seconds per problem is the
    mean time each took; tokens/s is this run's throughput (`run_tokens` over `elapsed`),
    which counts problems solved side by side once."""
    table = Table(box=None if plain else box.SIMPLE, show_header=False,
                  title="Summary", title_justify="left", pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    parts = [f"{s.problems} in all", f"{s.ran} answered"]
    parts += [f"{n} {what}" for n, what in ((s.errors, "errors"),
                                           (s.interrupted, "interrupted"),
                                           (skipped, "from an earlier run")) if n]
    table.add_row("problems", ", ".join(parts))
    if s.scored:
        table.add_row("accuracy", accuracy_text(s))
    table.add_row("tokens", f"{s.tokens:,} generated, {number(s.mean_tokens, 1)} per problem")
    if s.correct:
        table.add_row("per correct", f"{number(s.tokens_per_correct, 1)} tokens")
    rate = run_tokens / elapsed if elapsed > 0 else None
    table.add_row("time", f"{elapsed:.1f}s this run, {number(s.mean_seconds, 2)}s per "
                  f"problem, {number(rate, 1)} tokens/s")
    if out:
        table.add_row("records", out)
    return table
