"""`vote`: self-consistency (Wang et al., 2022).

n chains are decoded together (one `engine.start` with n sequences), each answer is
extracted, equivalent answers are grouped ("0.5" = "1/2"), and the largest group wins. Ties
go to the group with the higher total confidence (each chain's geometric-mean token
probability), then to the group holding the earliest chain.
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
from ponder.strategies.chains import MAX_CHAINS, ChainOptions, mean_probability, run_chains
from ponder.strategies.multistep import tap


@dataclass
class VoteOptions(ChainOptions):
    n: int = 8

    def validate(self) -> None:
        require(1 <= self.n <= MAX_CHAINS, f"n must be between 1 and {MAX_CHAINS}")
        super().validate()


def run(task: Task, opts: VoteOptions) -> StrategyRun:
    live = LiveTally()
    samples = yield from tap(run_chains(task, opts.n, opts.chain_config(),
                                        on_token=mean_probability()), vote_updates(live))
    return vote_result(task, samples, tally(ballots_from(samples)), chains=opts.n)


SPEC = StrategySpec("vote", "self-consistency: n chains, the most common answer wins",
                    VoteOptions, run)
