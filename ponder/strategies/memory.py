"""What chains may remember across runs: the interface between `run_chains` and a log.

A chain is identified by what decides its tokens: the model file, the full prompt it
continues (prefix included) and its sampling settings with its own seed (chain k of a run
is seeded seed + k). `max_tokens` and the thinking cap are not part of it: a logged chain
is replayed through this run's limits and hooks (see :mod:`ponder.strategies.reuse`), so
a chain logged by a `low` run serves as chain 0 of a `high` run with the same sampling.
`top_logprobs` is not part of it either, but a logged chain serves only runs that ask for
no more alternatives per token than it recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ponder.engines.base import Sampling
from ponder.events import FinishReason, Sample, TokenEvent

NATURAL_ENDS: frozenset[str] = frozenset({"eos", "stop"})
"""Stream endings the model chose itself; any other ending may be continued later."""


@dataclass(frozen=True)
class PriorChain:
    """A logged chain: the tokens it sampled (injected ones included) and how they ended."""

    id: int
    events: tuple[TokenEvent, ...]
    reason: FinishReason
    top_logprobs: int = 0


@dataclass(frozen=True)
class ChainRecord:
    """A chain of this run, for the log.

    `events` is the full sampled stream (None when the chain is a plain replay of
    `reused_from`, whose stream the log already holds); `stream_reason` is how that stream
    ended, before any forced answer; `reused_tokens` were taken from the log, not sampled.
    """

    key: str
    seed: int
    sample: Sample
    events: tuple[TokenEvent, ...] | None
    stream_reason: FinishReason
    top_logprobs: int
    reused_from: int | None = None
    reused_tokens: int = 0


class ChainMemory(Protocol):
    """A store of earlier chains that a task may draw on and adds its own chains to."""

    @property
    def top_logprobs(self) -> int:
        """Alternatives per token every chain records (so later runs can replay hooks)."""
        ...

    def key(self, prompt: str, sampling: Sampling) -> str:
        """The identity of the chain that continues `prompt` with `sampling` (its seed)."""
        ...

    def prior(self, key: str, top_logprobs: int) -> PriorChain | None:
        """The most useful logged chain with this key and at least `top_logprobs`
        alternatives per token, or None."""
        ...

    def record(self, chains: list[ChainRecord]) -> None:
        """Keep this run's chains (a failure to write must not stop the run)."""
        ...
