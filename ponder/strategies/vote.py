"""`vote`: self-consistency (Wang et al., 2022).

n chains are decoded together (one `engine.start` with n sequences; with `greedy_first` the
first is the greedy chain, the model's single most likely answer, asked the way `low` asks
when the family's one-chain prompt differs, and decoded before the others), each answer is
extracted, equivalent answers are grouped ("0.5" = "1/2"), and the largest group wins. Ties
go to the group with the higher total confidence (each chain's geometric-mean token
probability), then to the group holding the earliest chain. `nothinking` prefills an empty,
closed thinking block (NoThinking, Ma et al. 2025): many short answers instead of long
thoughts, a cheap mode for reasoning models.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.strategies.aggregate import (
    LiveTally,
    ballots_from,
    tally,
    vote_result,
    vote_updates,
)
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.multistep import mean_probability, run_led, skip_thinking, tap
from ponder.strategies.options import MAX_CHAINS, ChainOptions


@dataclass
class VoteOptions(ChainOptions):
    n: int = 8
    greedy_first: bool = False
    nothinking: bool = False
    top_logprobs: int = 0

    @property
    def max_chains(self) -> int:
        """The `n` chains, sampled together."""
        return self.n

    def validate(self) -> None:
        require(1 <= self.n <= MAX_CHAINS, f"n must be between 1 and {MAX_CHAINS}")
        require(0 <= self.top_logprobs <= 100, "top_logprobs must be between 0 and 100")
        super().validate()


def run(task: Task, opts: VoteOptions) -> StrategyRun:
    live = LiveTally()
    sampling = task.sampling.with_(greedy_first=opts.greedy_first,
                                   top_logprobs=opts.top_logprobs)
    prefix = skip_thinking(task) if opts.nothinking else ""
    samples = yield from tap(run_led(task, opts.n, opts.chain_config(), sampling=sampling,
                                     prefix=prefix, on_token=mean_probability()),
                             vote_updates(live))
    return vote_result(task, samples, tally(ballots_from(samples)), chains=opts.n)


SPEC = StrategySpec("vote", "self-consistency: n chains, the most common answer wins",
                    VoteOptions, run)
