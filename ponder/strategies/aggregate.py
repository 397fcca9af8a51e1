"""Vote aggregation and stopping rules, apart from any search, and the vote's events and
result.

Answers are grouped by mathematical equivalence (:func:`ponder.answers.group_answers`), so
"1/2", "0.5" and "\\frac{1}{2}" are one candidate. Each ballot carries a weight (1 for a plain
vote, a confidence or verifier score otherwise). Ties are broken deterministically: higher
weight, then higher total confidence, then the group holding the earliest chain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ponder.answers import group_answers
from ponder.events import ChainDone, Result, Sample, StrategyEvent, VoteUpdate
from ponder.strategies.base import Task
from ponder.strategies.multistep import After, make_result


@dataclass(frozen=True)
class Ballot:
    """One chain's vote."""

    chain: int
    answer: str
    weight: float = 1.0
    confidence: float | None = None


@dataclass(frozen=True)
class Group:
    """Equivalent answers: `key` is the normalized form the tally shows."""

    key: str
    ballots: tuple[Ballot, ...]

    @property
    def weight(self) -> float:
        return sum(b.weight for b in self.ballots)

    @property
    def count(self) -> int:
        return len(self.ballots)

    @property
    def confidence(self) -> float:
        return sum(b.confidence or 0.0 for b in self.ballots)

    @property
    def first_chain(self) -> int:
        return min(b.chain for b in self.ballots)

    def best(self) -> Ballot:
        """The member that speaks for the group: most confident, then earliest."""
        return min(self.ballots, key=lambda b: (-(b.confidence or 0.0), -b.weight, b.chain))


def tally(ballots: Sequence[Ballot]) -> list[Group]:
    """Groups of equivalent answers, strongest first (the deterministic tie-break order)."""
    grouped = group_answers([b.answer for b in ballots])
    groups = [Group(key, tuple(ballots[i] for i in idx)) for key, idx in grouped.items()]
    return sorted(groups, key=_rank)


def _rank(g: Group) -> tuple[float, float, int]:
    return (-g.weight, -g.confidence, g.first_chain)


def weights(groups: Iterable[Group]) -> dict[str, float]:
    """The tally as VoteUpdate and Result.votes carry it: answer -> weight."""
    return {g.key: round(g.weight, 6) for g in groups}


def ballots_from(
    samples: Iterable[Sample], weight: str = "count", exclude: frozenset[str] = frozenset()
) -> list[Ballot]:
    """Ballots of samples that state an answer; `weight` is count, confidence or score.

    Samples whose finish reason is in `exclude` (e.g. early-stopped chains) do not vote.
    """
    out = []
    for s in samples:
        if s.answer is None or s.finish_reason in exclude:
            continue
        w = 1.0
        if weight == "confidence":
            w = s.confidence or 0.0
        elif weight == "score":
            w = s.score or 0.0
        out.append(Ballot(s.chain, s.answer, w, s.confidence))
    return out


def leader_share(groups: Sequence[Group]) -> float:
    """The leading group's share of all weight (0 when there are no votes)."""
    total = sum(g.weight for g in groups)
    return groups[0].weight / total if groups and total > 0 else 0.0


def beta_confidence(leader: int, runner_up: int) -> float:
    """P(p > 1/2) for p ~ Beta(leader + 1, runner_up + 1).

    The Beta stopping criterion of Adaptive-Consistency (Aggarwal et al., 2023): the
    posterior probability that the leading answer is the true majority between the top two.
    For integer parameters, P(X > 1/2) = P(Binomial(a + b - 1, 1/2) <= a - 1).
    """
    a, b = leader + 1, runner_up + 1
    n = a + b - 1
    return float(sum(math.comb(n, j) for j in range(a))) / float(2**n)


def cannot_be_overtaken(groups: Sequence[Group], remaining: int) -> bool:
    """True when even `remaining` more votes, all for the runner-up, could not catch up."""
    if not groups:
        return False
    second = groups[1].count if len(groups) > 1 else 0
    return groups[0].count > second + remaining


class LiveTally:
    """The tally as chains finish: feed it ChainDone events, read its groups.

    `weighted` counts each ballot with the chain's confidence instead of 1; chains whose
    finish reason is in `exclude` (early-stopped ones) do not vote. A chain that finishes
    again (its answer forced after a cut) replaces its earlier ballot.
    """

    def __init__(self, weighted: bool = False,
                 exclude: frozenset[str] = frozenset({"abort"})) -> None:
        self.weighted = weighted
        self.exclude = exclude
        self._ballots: dict[int, Ballot] = {}
        self.groups: list[Group] = []

    def add(self, done: ChainDone) -> list[Group]:
        self._ballots.pop(done.chain, None)
        if done.answer is not None and done.reason not in self.exclude:
            weight = (done.confidence or 0.0) if self.weighted else 1.0
            self._ballots[done.chain] = Ballot(done.chain, done.answer, weight, done.confidence)
        self.groups = tally(list(self._ballots.values()))
        return self.groups

    @property
    def votes(self) -> int:
        return len(self._ballots)


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
