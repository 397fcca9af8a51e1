"""`best-of-n`: n chains, each scored by a verifier; the highest-scored answer wins.

The default verifier is the model itself asked whether the solution is correct, scored by
P("yes") (see :mod:`ponder.strategies.verifiers`). `select=weighted` sums the scores of
equivalent answers instead of taking the single best chain. Verifier calls are paid from
the same --budget as the chains: one token per call is kept back while the chains run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import BudgetUpdate, ChainDone, Sample, StrategyNote
from ponder.strategies.aggregate import LiveTally, ballots_from, tally, vote_updates, weights
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import run_chains
from ponder.strategies.multistep import (
    Events,
    emit,
    holding,
    judge,
    make_result,
    mean_probability,
    solution_text,
    tap,
)
from ponder.strategies.options import MAX_CHAINS, ChainOptions
from ponder.strategies.verifiers import (
    NEUTRAL,
    VERIFIERS,
    Verifier,
    make_verifier,
    tokens_per_call,
)

SELECTIONS = ("best", "weighted")


@dataclass
class BestOfNOptions(ChainOptions):
    n: int = 4
    verifier: str = "self"
    top_logprobs: int = 10
    select: str = "best"

    @property
    def max_chains(self) -> int:
        """The `n` candidate chains, sampled together."""
        return self.n

    def validate(self) -> None:
        require(1 <= self.n <= MAX_CHAINS, f"n must be between 1 and {MAX_CHAINS}")
        require(self.verifier in VERIFIERS,
                f"unknown verifier '{self.verifier}': choose from {', '.join(VERIFIERS)}")
        require(1 <= self.top_logprobs <= 100, "top_logprobs must be between 1 and 100")
        require(self.select in SELECTIONS, f"select must be one of {', '.join(SELECTIONS)}")
        super().validate()


def run(task: Task, opts: BestOfNOptions) -> StrategyRun:
    verifier = make_verifier(opts.verifier, opts.top_logprobs)
    with holding(task.budget, opts.n * tokens_per_call(verifier)):
        samples = yield from tap(run_chains(task, opts.n, opts.chain_config(),
                                            on_token=mean_probability()),
                                 vote_updates(LiveTally()))
    yield from score_all(task, verifier, samples)
    chosen = pick(samples, opts.select)
    votes = weights(tally(ballots_from(samples, "score")))
    return make_result(task, chosen, samples, votes, verifier=opts.verifier,
                       scored=sum(s.score is not None for s in samples))


def score_all(task: Task, verifier: Verifier, samples: list[Sample]) -> Events:
    """Score every sample that states an answer; report each score as it comes."""
    for s in samples:
        if s.answer is None or task.interrupted:
            continue
        yield from emit(task, StrategyNote(f"verifying chain {s.chain + 1}"))
        s.score = judge(task, verifier, task.question, solution_text(s))
        yield from emit(task, ChainDone(s.chain, s.answer, s.tokens, s.finish_reason,
                                        s.confidence, s.score),
                        BudgetUpdate(task.budget.used, task.budget.tokens,
                                     task.budget.elapsed()))


def pick(samples: list[Sample], select: str) -> Sample | None:
    """The best-scored sample with an answer; ties go to the larger group of equivalent
    answers, then to the earlier chain. `weighted`: the group with the highest score sum."""
    answered = [s for s in samples if s.answer is not None]
    if not answered:
        return samples[0] if samples else None
    groups = tally(ballots_from(answered, "score" if select == "weighted" else "count"))
    if select == "weighted":
        best = groups[0].ballots
        return max((s for s in answered if s.chain in {b.chain for b in best}),
                   key=lambda s: (_score(s), -s.chain))
    size = {b.chain: g.count for g in groups for b in g.ballots}
    return min(answered, key=lambda s: (-_score(s), -size[s.chain], s.chain))


def _score(s: Sample) -> float:
    return NEUTRAL if s.score is None else s.score


SPEC = StrategySpec(
    "best-of-n",
    "n chains scored by a verifier (the model's P(yes) by default); the best wins",
    BestOfNOptions,
    run,
)
