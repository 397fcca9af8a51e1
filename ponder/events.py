"""Typed events and messages passed between layers (this module imports nothing of ponder).

Engines emit :class:`TokenEvent` and :class:`SequenceDone`. Strategies turn those into
chain-level events (:class:`ChainStarted`, :class:`ChainText`, :class:`ChainDone`,
:class:`VoteUpdate`, :class:`BudgetUpdate`, :class:`StrategyNote`) and finish with a
:class:`Result`. Renderers only consume events; strategies never print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

FinishReason = Literal["stop", "length", "eos", "abort", "budget", "interrupted", "time"]
Phase = Literal["thinking", "answer"]


class Message(TypedDict):
    """One chat message, as chat templates take them."""

    role: str
    content: str


@dataclass(frozen=True)
class TokenEvent:
    """One token of one sequence. `injected` tokens were written by ponder, not sampled."""

    seq: int
    text: str
    token: int = -1
    logprob: float | None = None
    top_logprobs: tuple[tuple[str, float], ...] | None = None
    injected: bool = False


@dataclass(frozen=True)
class SequenceDone:
    """A sequence finished; `text` is everything it produced (injected text included)."""

    seq: int
    reason: FinishReason
    text: str
    tokens: int


EngineEvent = TokenEvent | SequenceDone


@dataclass(frozen=True)
class ChainStarted:
    chain: int
    label: str = ""


@dataclass(frozen=True)
class ChainText:
    """New text of a chain, already split into thinking or answer.

    `moved`: this thinking text streamed earlier as answer; a closing </think> with no
    opening tag showed it was thinking (a view re-labels it rather than adding it again).
    """

    chain: int
    phase: Phase
    text: str
    tokens: int
    confidence: float | None = None
    moved: bool = False


@dataclass(frozen=True)
class ChainDone:
    chain: int
    answer: str | None
    tokens: int
    reason: FinishReason
    confidence: float | None = None
    score: float | None = None


@dataclass(frozen=True)
class VoteUpdate:
    """Current tally: normalized answer -> count or weight."""

    tally: dict[str, float]


@dataclass(frozen=True)
class BudgetUpdate:
    used: int
    budget: int | None
    elapsed: float = 0.0


@dataclass(frozen=True)
class StrategyNote:
    """A short status line from a strategy ("round 2: critique", "early stop")."""

    text: str


@dataclass
class Sample:
    """One chain's outcome, as reported in results and JSON."""

    chain: int
    answer: str | None
    text: str
    thinking: str
    tokens: int
    finish_reason: FinishReason
    confidence: float | None = None
    score: float | None = None
    stats: dict[str, float] = field(default_factory=dict)
    """Numbers the strategies decide with (see `ponder.strategies.stats`)."""
    thinking_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chain": self.chain,
            "answer": self.answer,
            "tokens": self.tokens,
            "thinking_tokens": self.thinking_tokens,
            "finish_reason": self.finish_reason,
            "confidence": self.confidence,
            "score": self.score,
        }
        if self.stats:
            out["stats"] = self.stats
        return out


@dataclass
class Result:
    """What a strategy concludes for one question."""

    answer: str | None
    text: str
    thinking: str
    finish_reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    thinking_tokens: int = 0
    samples: list[Sample] = field(default_factory=list)
    votes: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    summary: str | None = None
    """The model's own summary of its thinking (`--summary model`); None: none was written."""
    summary_tokens: int = 0
    """Tokens that summary took (counted in `completion_tokens` too)."""


StrategyEvent = (
    ChainStarted | ChainText | ChainDone | VoteUpdate | BudgetUpdate | StrategyNote | Result
)
