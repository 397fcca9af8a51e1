"""The terminal renderer: consumes strategy events, draws progress on stderr.

Summary mode shows a live digest (one line for one chain, a panel for many) and afterwards
an extractive summary of how the thinking reached the answer (:mod:`ponder.summary`), or
the model's own (`--summary model`, :mod:`ponder.model_summary`);
full mode streams the thinking dimmed; hidden mode shows a spinner. The answer itself goes
to stdout through :func:`print_answer`. Math in answers and summaries is drawn readably
(:mod:`ponder.cli.mathtext`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ponder.cli.mathtext import to_markdown, to_text
from ponder.events import (
    BudgetUpdate,
    ChainDone,
    ChainStarted,
    ChainText,
    Result,
    StrategyEvent,
    StrategyNote,
    VoteUpdate,
)
from ponder.model_summary import lines_of
from ponder.summary import summarize

ThinkingMode = Literal["summary", "full", "hidden"]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_ROWS = 12


@dataclass
class ChainView:
    chain: int
    label: str = ""
    tokens: int = 0
    phase: str = "thinking"
    status: str = "running"
    answer: str | None = None
    confidence: float | None = None
    tail: str = ""
    thought: int = 0


DIGEST_WORDS = 3
"""The live digest skips shorter sentences (numbered-list markers, "So, 121.")."""


def latest_sentence(text: str, min_words: int = 1) -> str:
    """The last complete sentence in `text` with at least `min_words` words (empty if none
    is complete yet); list markers such as "2." are not worth a digest line."""
    parts = _SENTENCE_END.split(text.strip())
    complete = parts[:-1] if len(parts) > 1 else []
    if not complete and text.rstrip().endswith((".", "!", "?")):
        complete = parts
    for part in reversed(complete):
        words = part.split()
        if len(words) >= min_words:
            return " ".join(words)
    return ""


class Renderer:
    """Draws strategy events on `console` (stderr). Use as a context manager."""

    def __init__(
        self,
        console: Console,
        mode: ThinkingMode = "summary",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.mode = mode
        self.clock = clock
        self.started = clock()
        self.chains: dict[int, ChainView] = {}
        self.tally: dict[str, float] = {}
        self.used = 0
        self.budget: int | None = None
        self.note = ""
        self.thinking_tokens = 0
        self._live: Live | None = None
        self._streamed_phase: str | None = None
        self._thinker: int | None = None
        """The chain whose thinking arrived last: its latest sentence is the live digest."""

    def __enter__(self) -> Renderer:
        if self.console.is_terminal and self.mode != "full":
            self._live = Live(self, console=self.console, transient=True,
                              refresh_per_second=8, redirect_stdout=False,
                              redirect_stderr=False)
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def handle(self, event: StrategyEvent) -> None:
        if isinstance(event, ChainStarted):
            self.chains[event.chain] = ChainView(event.chain, event.label)
        elif isinstance(event, ChainText):
            self._on_text(event)
        elif isinstance(event, ChainDone):
            view = self.chains.setdefault(event.chain, ChainView(event.chain))
            view.status = event.reason
            view.answer, view.tokens = event.answer, event.tokens
            view.confidence = event.confidence
        elif isinstance(event, VoteUpdate):
            self.tally = dict(event.tally)
        elif isinstance(event, BudgetUpdate):
            self.used, self.budget = event.used, event.budget
        elif isinstance(event, StrategyNote):
            self.note = event.text

    def _on_text(self, event: ChainText) -> None:
        view = self.chains.setdefault(event.chain, ChainView(event.chain))
        if event.moved:  # the text streamed so far as answer was thinking
            self.thinking_tokens += max(0, event.tokens - view.thought)
            view.thought = event.tokens
        elif event.phase == "thinking" and view.phase == "thinking":
            self.thinking_tokens += max(0, event.tokens - view.tokens)
            view.thought += max(0, event.tokens - view.tokens)
        view.tokens, view.phase, view.confidence = event.tokens, event.phase, event.confidence
        if event.phase == "thinking":
            view.tail = (view.tail + event.text)[-600:]
            self._thinker = event.chain
        if self.mode == "full":
            self._stream(event)

    def _stream(self, event: ChainText) -> None:
        if len(self.chains) > 1 or event.phase != "thinking":
            return
        if self._streamed_phase is None:
            self.console.print("Thinking…", style="bold dim")
            self._streamed_phase = "thinking"
        self.console.print(event.text, style="dim", end="", markup=False, highlight=False)

    def __rich__(self) -> RenderableType:
        elapsed = self.clock() - self.started
        if self.mode == "hidden" or not self.chains:
            return Spinner("dots", Text(f"Thinking… {elapsed:.0f}s", style="dim"))
        if len(self.chains) == 1:
            return self._one_line(next(iter(self.chains.values())), elapsed)
        return self._panel(elapsed)

    def _one_line(self, view: ChainView, elapsed: float) -> RenderableType:
        verb = "Thinking" if view.phase == "thinking" else "Answering"
        line = Text(f"{verb} · {elapsed:.1f}s · {view.tokens} tokens", style="bold")
        sentence = latest_sentence(view.tail, DIGEST_WORDS)
        if sentence and view.phase == "thinking":
            line.append(" · ", style="dim")
            line.append_text(to_text(sentence, style="dim"))
        line.truncate(max(20, self.console.width - 3), overflow="ellipsis")
        return Spinner("dots", line)

    def _chain_table(self) -> Table:
        table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
        for col in ("chain", "state", "tokens", "conf", "answer"):
            table.add_column(col, style="dim" if col == "chain" else None,
                             justify="right" if col in ("tokens", "conf") else "left")
        views = list(self.chains.values())[-MAX_ROWS:]
        for v in views:
            state = v.phase if v.status == "running" else v.status
            conf = "" if v.confidence is None else f"{v.confidence:.2f}"
            table.add_row(f"#{v.chain + 1}", state, str(v.tokens), conf, v.answer or "")
        return table

    def _digest(self) -> Text | None:
        """The latest sentence of the chain thinking most recently, while one thinks."""
        view = self.chains.get(self._thinker) if self._thinker is not None else None
        if view is None or view.status != "running" or view.phase != "thinking":
            return None
        sentence = latest_sentence(view.tail, DIGEST_WORDS)
        if not sentence:
            return None
        line = Text(f"#{view.chain + 1} ", style="dim")
        line.append_text(to_text(sentence, style="dim"))
        line.truncate(max(20, self.console.width - 3), overflow="ellipsis")
        return line

    def _panel(self, elapsed: float) -> RenderableType:
        parts: list[RenderableType] = [self._chain_table()]
        if self.tally:
            parts.append(tally_bars(self.tally, self.console.width))
        digest = self._digest()
        if digest is not None:
            parts.append(digest)
        budget = f"/{self.budget:,}" if self.budget else ""
        footer = f"{self.used:,}{budget} tokens · {elapsed:.1f}s"
        if self.note:
            footer += f" · {self.note}"
        parts.append(Spinner("dots", Text(footer, style="dim")))
        return Group(*parts)

    def summary(self, result: Result) -> None:
        """Print the collapsed summary of how the answer was reached (stderr)."""
        if self.mode == "full" and self._streamed_phase:
            self.console.print()
        elapsed = self.clock() - self.started
        tokens = result.thinking_tokens or self.thinking_tokens
        chains = len(self.chains)
        head = f"Thought for {elapsed:.1f}s · {tokens:,} thinking tokens"
        if chains > 1:
            head += f" · {chains} chains · {result.completion_tokens:,} tokens in all"
        if result.interrupted:
            head += " · interrupted"
        if result.summary and self.mode == "summary":
            head += f" · summarized by the model in {result.summary_tokens} tokens"
        self.console.print(Text(head, style="bold dim"))
        if chains > 1:
            self.console.print(self._chain_table())
            if result.votes:
                self.console.print(tally_bars(result.votes, self.console.width))
        if self.mode == "summary":  # after a vote: how the chosen chain got there
            for line in summary_lines(result):
                self.console.print(summary_line(line, self.console.width))


def summary_lines(result: Result) -> list[str]:
    """The summary of how the thinking reached the answer: the model's own when it wrote
    one (`--summary model`), else the extractive one."""
    if result.summary:
        return lines_of(result.summary)
    return summarize(result.thinking, result.answer)


def summary_line(line: str, width: int) -> Text:
    """One line of the thinking summary, math readable, cut to the terminal's width."""
    head = "  " if line.startswith("→") else "  • "
    text = to_text(head + line, style="dim")
    text.truncate(max(20, width - 1), overflow="ellipsis")
    return text


def tally_bars(tally: dict[str, float], width: int) -> RenderableType:
    """One bar per candidate answer, longest first."""
    total = sum(tally.values()) or 1.0
    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    table.add_column(justify="right", max_width=24, overflow="ellipsis")
    table.add_column()
    table.add_column(justify="right")
    bar_width = max(10, min(40, width - 40))
    for answer, weight in sorted(tally.items(), key=lambda kv: -kv[1]):
        filled = round(bar_width * weight / total)
        bar = Text("█" * filled, style="green") + Text("░" * (bar_width - filled), style="dim")
        table.add_row(answer, bar, f"{weight:g}")
    return table


def print_answer(console: Console, result: Result) -> None:
    """The answer text on stdout: Markdown with readable math in a terminal, the model's
    raw text otherwise."""
    text = result.text.strip() or (result.answer or "")
    if not text:
        return
    if console.is_terminal:
        console.print(Markdown(to_markdown(text)))
    else:
        console.file.write(text + "\n")
        console.file.flush()
