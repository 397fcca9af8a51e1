"""The engine protocol every backend implements.

An engine turns a prompt (already rendered through the model's chat template) into one or
more continuations. `Engine.start` returns a :class:`Generation`: an iterator of token
events tagged with the sequence index, plus control hooks that strategies call between
events (abort, inject, fork). Hooks take effect before the next decode step. The
non-streaming :func:`generate` is a fold over that stream.

Contract shared by every engine:
- The text streamed for a sequence always concatenates to its `SequenceDone.text` (text that
  may begin a stop string is held back until it is decided).
- An end-of-generation token yields a TokenEvent with empty text; it counts as sampled.
- `TokenEvent.logprob` is the chosen token's log-probability from the raw logits when the
  engine can compute it (None otherwise), whatever `top_logprobs` asks for.
- One generation per thread at a time: an engine may close a generation the calling thread
  still has open when it calls `start` again. Engines that are safe to use from several
  threads at once (generations running side by side) say so with `thread_safe`, and
  `capacity` says how many sequences they decode at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from ponder.events import EngineEvent, FinishReason, Message, SequenceDone, TokenEvent

__all__ = ["Completion", "Engine", "Generation", "Message", "Sampling", "fold", "generate"]


@dataclass(frozen=True)
class Sampling:
    """Sampling settings for every sequence of one generation.

    Sequence *i* is seeded with ``seed + i`` so that the same seed and n reproduce the same
    texts. ``top_logprobs`` > 0 asks for the k most likely tokens at every step.
    ``greedy_first`` decodes sequence 0 greedily and samples the others: a vote then
    holds the model's single most likely chain (engines that cannot, sample it).
    """

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    seed: int = 0
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0
    greedy_first: bool = False

    def with_(self, **changes: object) -> Sampling:
        return replace(self, **changes)  # type: ignore[arg-type]


@runtime_checkable
class Generation(Protocol):
    """A running generation of one or more sequences of the same prompt."""

    def __iter__(self) -> Iterator[EngineEvent]: ...

    def abort(self, seq: int, reason: FinishReason = "abort") -> None:
        """Finish `seq` before its next token; it yields a SequenceDone with `reason`."""

    def inject(self, seq: int, text: str) -> None:
        """Append `text` to `seq` as if the model had written it (emitted as injected tokens).

        Injected tokens do not count towards `max_tokens` or the budget.
        """

    def fork(self, seq: int, k: int) -> list[int]:
        """Clone live sequence `seq` into `k` new sequences; returns their indices.

        Children inherit the parent's text and token count and are seeded `seed + index`,
        so they diverge from the parent and from each other.
        """
        ...

    def close(self) -> None:
        """Stop everything and release the engine's slots."""


@runtime_checkable
class Engine(Protocol):
    """A loaded model able to render chats and stream continuations."""

    @property
    def model_name(self) -> str: ...

    @property
    def context_length(self) -> int: ...

    @property
    def thread_safe(self) -> bool:
        """Whether `start` may be called from several threads at once."""
        ...

    @property
    def capacity(self) -> int:
        """How many sequences the engine decodes at once (its slots or connections)."""
        ...

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        """Render messages with the model's own chat template, generation prompt added."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def start(
        self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
    ) -> Generation:
        """Begin `n` continuations of `prompt`.

        `budget` caps the sampled tokens of all sequences together (forks included): when
        fewer tokens remain than live sequences, the extra ones finish with reason "budget".
        Requests that cannot fit the context raise ContextOverflowError before decoding.
        """
        ...

    def close(self) -> None: ...


@dataclass
class Completion:
    """A finished sequence, folded from its events."""

    seq: int
    text: str = ""
    tokens: int = 0
    finish_reason: FinishReason = "stop"
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[tuple[tuple[str, float], ...]] = field(default_factory=list)


def fold(events: Iterator[EngineEvent]) -> list[Completion]:
    """Collect a stream of engine events into completions, ordered by sequence index."""
    done: dict[int, Completion] = {}
    for event in events:
        comp = done.setdefault(event.seq, Completion(seq=event.seq))
        if isinstance(event, TokenEvent):
            if not event.injected:
                if event.logprob is not None:
                    comp.logprobs.append(event.logprob)
                if event.top_logprobs is not None:
                    comp.top_logprobs.append(event.top_logprobs)
        elif isinstance(event, SequenceDone):
            comp.text = event.text
            comp.tokens = event.tokens
            comp.finish_reason = event.reason
    return [done[k] for k in sorted(done)]


def generate(
    engine: Engine, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
) -> list[Completion]:
    """Non-streaming generation: a fold over `engine.start(...)`."""
    gen = engine.start(prompt, sampling, n=n, budget=budget)
    try:
        return fold(iter(gen))
    finally:
        gen.close()
