"""`adaptive`: adaptive consistency (Aggarwal et al., 2023).

Chains are sampled in small rounds (`start` first, then `step` at a time, each round
decoded in parallel). After every round the vote is checked: sampling stops as soon as the
leading answer can no longer be overtaken by the chains still allowed (`max_n` in all), or
when the Beta posterior probability that it is the majority reaches `threshold`. Easy
questions, where the first chains agree, cost `start` chains; only disagreement buys more.
The default threshold, 0.9, is met by 3 of 3, 5 of 6 or 6 of 8 agreeing (the paper's 0.95
needs 4 of 4 and suits larger sample budgets than a CPU affords).
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Sample, StrategyNote
from ponder.strategies.aggregate import (
    LiveTally,
    ballots_from,
    should_stop,
    tally,
    vote_result,
    vote_updates,
)
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import (
    MAX_CHAINS,
    ChainConfig,
    ChainOptions,
    mean_probability,
    run_chains,
)
from ponder.strategies.multistep import emit, tap


@dataclass
class AdaptiveOptions(ChainOptions):
    start: int = 3
    step: int = 2
    max_n: int = 12
    threshold: float = 0.9

    def validate(self) -> None:
        require(1 <= self.max_n <= MAX_CHAINS, f"max_n must be between 1 and {MAX_CHAINS}")
        require(1 <= self.start <= self.max_n, "start must be between 1 and max_n")
        require(self.step >= 1, "step must be at least 1")
        require(0.5 < self.threshold < 1.0, "threshold must be in (0.5, 1)")
        super().validate()


def run(task: Task, opts: AdaptiveOptions) -> StrategyRun:
    config = ChainConfig(think_cap=opts.think_cap, answer_reserve=opts.answer_reserve)
    live = LiveTally()
    samples: list[Sample] = []
    size, rounds, reason = opts.start, 0, "no chains left"
    while size > 0:
        rounds += 1
        started = len(samples)
        new = yield from tap(run_chains(task, size, config, first_chain=started,
                                        on_token=mean_probability()), vote_updates(live))
        samples += new
        groups = tally(ballots_from(samples))
        stop = should_stop(groups, opts.max_n - len(samples), opts.threshold)
        if stop is not None or not new or task.interrupted or task.budget.exhausted():
            reason = stop or _cut_reason(task)
            break
        size = min(opts.step, opts.max_n - len(samples))
        if _too_little_left(task, size, opts.answer_reserve):
            reason = "out of budget"
            break
        yield from emit(task, StrategyNote(f"round {rounds}: no clear winner yet; "
                                           f"sampling {size} more"))
    yield from emit(task, StrategyNote(f"stopped after {len(samples)} chains: {reason}"))
    return vote_result(task, samples, tally(ballots_from(samples)), chains=len(samples),
                       rounds=rounds, stop_reason=reason)


def _too_little_left(task: Task, chains: int, reserve: int) -> bool:
    """Whether the budget left cannot give each chain of a round room for an answer."""
    remaining = task.budget.remaining()
    return remaining is not None and remaining < chains * reserve


def _cut_reason(task: Task) -> str:
    if task.interrupted:
        return "interrupted"
    return "out of time" if task.budget.out_of_time() else "out of budget"


SPEC = StrategySpec(
    "adaptive",
    "adaptive consistency: sample in small rounds until the vote is settled",
    AdaptiveOptions,
    run,
)
