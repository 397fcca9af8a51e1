"""`vote`: self-consistency (Wang et al., 2022).

n chains are decoded together (one `engine.start` with n sequences; with `greedy_first` the
first is the greedy chain, the model's single most likely answer), each answer is
extracted, equivalent answers are grouped ("0.5" = "1/2"), and the largest group wins. Ties
go to the group with the higher total confidence (each chain's geometric-mean token
probability), then to the group holding the earliest chain. `nothinking` prefills an empty,
closed thinking block (NoThinking, Ma et al. 2025): many short answers instead of long
thoughts, a cheap mode for reasoning models.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ponder.events import ChainDone, Result, Sample, StrategyEvent, TokenEvent, VoteUpdate
from ponder.strategies.aggregate import Group, LiveTally, ballots_from, tally, weights
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import ChainConfig, ChainState, OnToken, run_chains
from ponder.strategies.flow import After, make_result, skip_thinking, tap

MAX_CHAINS = 256


@dataclass
class VoteOptions:
    n: int = 8
    greedy_first: bool = False
    nothinking: bool = False
    top_logprobs: int = 0
    think_cap: int | None = 1024
    answer_reserve: int = 64

    def validate(self) -> None:
        require(1 <= self.n <= MAX_CHAINS, f"n must be between 1 and {MAX_CHAINS}")
        require(0 <= self.top_logprobs <= 100, "top_logprobs must be between 0 and 100")
        require(self.think_cap is None or self.think_cap >= 1, "think_cap must be at least 1")
        require(self.answer_reserve >= 1, "answer_reserve must be at least 1")


def run(task: Task, opts: VoteOptions) -> StrategyRun:
    config = ChainConfig(think_cap=opts.think_cap, answer_reserve=opts.answer_reserve)
    live = LiveTally()
    sampling = task.sampling.with_(greedy_first=opts.greedy_first,
                                   top_logprobs=opts.top_logprobs)
    prefix = skip_thinking(task) if opts.nothinking else ""
    samples = yield from tap(run_chains(task, opts.n, config, sampling=sampling, prefix=prefix,
                                        on_token=mean_probability()), vote_updates(live))
    return vote_result(task, samples, tally(ballots_from(samples)), chains=opts.n)


def mean_probability() -> OnToken:
    """An on_token hook keeping each chain's confidence at its geometric-mean token
    probability (exp of the mean logprob), updated in O(1) per token."""
    sums: dict[int, tuple[float, int]] = {}

    def hook(st: ChainState, event: TokenEvent) -> None:
        if event.logprob is None:
            return
        total, count = sums.get(st.chain, (0.0, 0))
        total, count = total + event.logprob, count + 1
        sums[st.chain] = (total, count)
        st.confidence = math.exp(total / count)

    return hook


def vote_updates(live: LiveTally) -> After:
    """A `tap` callback: after each finished chain, the new tally."""

    def after(event: StrategyEvent) -> Iterable[StrategyEvent]:
        if isinstance(event, ChainDone):
            yield VoteUpdate(weights(live.add(event)))

    return after


def vote_result(task: Task, samples: list[Sample], groups: list[Group], **settings: object
                ) -> Result:
    """The winning group's best chain as the result; every chain's sample; the tally."""
    chosen = winner_sample(samples, groups)
    return make_result(task, chosen, samples, weights(groups), **settings)


def winner_sample(samples: list[Sample], groups: list[Group]) -> Sample | None:
    """The sample speaking for the winning group (or the first sample when none voted)."""
    by_chain = {s.chain: s for s in samples}
    if groups:
        return by_chain[groups[0].best().chain]
    return samples[0] if samples else None


SPEC = StrategySpec("vote", "self-consistency: n chains, the most common answer wins",
                    VoteOptions, run)
