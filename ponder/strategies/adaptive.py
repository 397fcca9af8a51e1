"""`adaptive`: sample in rounds until the vote is settled (ESC and Adaptive-Consistency).

Chains are sampled in rounds (`start` first, then `step` at a time, each round decoded in
parallel; in `ponder solve` other problems' chains fill the rest of the batch). After every
round `ponder.strategies.stopping.decide` checks the vote: stop once the leader cannot be
overtaken within `max_n`, once every chain agrees and is at least `confident` sure of its
answer (with `start=1`, the greedy chain alone can settle an easy question), once the last
`window` answers agree (ESC), once the Beta posterior that the leader is the majority
reaches `threshold` (0: off), or give up once answers stay scattered after `give_up_after`
chains (0: off). With `greedy_first` the first chain is the greedy one, so an easy question
costs the greedy chain and one sample that agrees with it; `nothinking` votes on answers
given with thinking skipped. The same `decide` replays this strategy offline
(`ponder.replay`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Sample, StrategyNote
from ponder.strategies.aggregate import (
    LiveTally,
    ballots_from,
    tally,
    vote_result,
    vote_updates,
)
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import ChainConfig, Chains, run_chains
from ponder.strategies.multistep import emit, mean_probability, run_led, skip_thinking, tap
from ponder.strategies.options import MAX_CHAINS, ChainOptions
from ponder.strategies.stopping import StopRule, decide

SURE_MEASURES = ("answer_prob", "mean_prob")
"""Per-chain probabilities `confident` may test: both come from the sampled tokens'
logprobs, which every engine run records (no top-k logprobs needed)."""


@dataclass
class AdaptiveOptions(ChainOptions):
    start: int = 2
    step: int = 2
    max_n: int = 8
    window: int = 2
    threshold: float = 0.0
    give_up_after: int = 0
    give_up_share: float = 0.5
    confident: float = 0.0
    confidence_measure: str = "answer_prob"
    greedy_first: bool = False
    nothinking: bool = False

    @property
    def max_chains(self) -> int:
        """Up to `max_n` chains, when the votes keep disagreeing."""
        return self.max_n

    def validate(self) -> None:
        require(1 <= self.max_n <= MAX_CHAINS, f"max_n must be between 1 and {MAX_CHAINS}")
        require(1 <= self.start <= self.max_n, "start must be between 1 and max_n")
        require(self.step >= 1, "step must be at least 1")
        require(self.window >= 0, "window must be 0 (off) or more")
        require(self.threshold == 0.0 or 0.5 < self.threshold < 1.0,
                "threshold must be 0 (off) or in (0.5, 1)")
        require(self.give_up_after >= 0, "give_up_after must be 0 (off) or more")
        require(0.0 < self.give_up_share <= 1.0, "give_up_share must be in (0, 1]")
        require(0.0 <= self.confident < 1.0, "confident must be 0 (off) or in (0, 1)")
        require(self.confidence_measure in SURE_MEASURES,
                f"confidence_measure must be one of {', '.join(SURE_MEASURES)}")
        super().validate()

    def rule(self) -> StopRule:
        return StopRule(self.start, self.step, self.max_n, self.window, self.threshold,
                        self.give_up_after, self.give_up_share, self.confident,
                        self.confidence_measure)


def run(task: Task, opts: AdaptiveOptions) -> StrategyRun:
    config = ChainConfig(think_cap=opts.think_cap, answer_reserve=opts.answer_reserve)
    rule = opts.rule()
    live = LiveTally()
    samples: list[Sample] = []
    size, rounds, reason = opts.start, 0, "no chains left"
    prefix = skip_thinking(task) if opts.nothinking else ""
    while size > 0:
        rounds += 1
        started = len(samples)
        new = yield from tap(_round(task, size, started, config, opts, prefix),
                             vote_updates(live))
        samples += new
        verdict = decide(samples, rule)
        if verdict.stop is not None or not new or task.interrupted or task.budget.exhausted():
            reason = verdict.stop or _cut_reason(task)
            break
        size = verdict.next_size
        if _too_little_left(task, size, opts.answer_reserve):
            reason = "out of budget"
            break
        yield from emit(task, StrategyNote(f"round {rounds}: no clear winner yet; "
                                           f"sampling {size} more"))
    yield from emit(task, StrategyNote(f"stopped after {len(samples)} chains: {reason}"))
    return vote_result(task, samples, tally(ballots_from(samples)), chains=len(samples),
                       rounds=rounds, stop_reason=reason)


def _round(task: Task, size: int, started: int, config: ChainConfig, opts: AdaptiveOptions,
           prefix: str) -> Chains:
    """One round of `size` chains after the `started` ones; the first round may begin with
    the greedy chain (asked as `low` asks it: `run_led`)."""
    if opts.greedy_first and not started:
        sampling = task.sampling.with_(greedy_first=True)
        return (yield from run_led(task, size, config, sampling=sampling, prefix=prefix,
                                   on_token=mean_probability()))
    return (yield from run_chains(task, size, config, prefix=prefix, first_chain=started,
                                  on_token=mean_probability()))


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
    "adaptive consistency: sample in rounds until the vote is settled (ESC windows)",
    AdaptiveOptions,
    run,
)
