"""Progress of a run on stderr: a live bar on a terminal, one plain line per problem else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
from rich.progress import Progress as RichProgress

from ponder.batch import Progress
from ponder.cli.tables import percent
from ponder.events import BudgetUpdate, StrategyEvent
from ponder.problems import Problem
from ponder.records import Record

CLOCK = time.monotonic

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
                  live_ok: bool = True) -> Iterator[Progress]:
    """A live bar on a terminal, plain lines otherwise (or when stdout shares the terminal)."""
    if console.is_terminal and live_ok:
        view = BarView(console, total, label)
        with view.bar:
            yield view
    else:
        yield LineView(console, total, label)
