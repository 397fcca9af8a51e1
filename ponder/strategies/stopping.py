"""When to stop sampling more chains: one decision function for live runs and replays.

`decide` looks at the chains finished so far (in chain order) and says whether to stop and
why, or how many chains the next round should start. The rules, checked in order:

- *settled*: the leader cannot be overtaken by the chains still allowed (`max_n`);
- *confident*: every chain so far gives the same answer and the least sure of them is at
  least `confident` sure of it (`measure`, a probability recorded with each chain). With
  `start=1` this stops after the greedy chain alone when the model is sure of its answer:
  a confidence stop that needs no warm-up chains (unlike DeepConf's online threshold);
- *window* (ESC, Li et al. 2024): the last `window` answers are all the same;
- *posterior*: the Beta posterior that the leader is the majority reaches `threshold`
  (Adaptive-Consistency, Aggarwal et al. 2023);
- *give up*: after `give_up_after` chains the leader still holds less than `give_up_share`
  of the votes. Answers that stay scattered mean the model cannot solve the problem, and
  more chains rarely rescue it; the vote so far is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ponder.answers import equivalent
from ponder.events import Sample
from ponder.strategies.aggregate import (
    ballots_from,
    beta_confidence,
    cannot_be_overtaken,
    leader_share,
    tally,
)


@dataclass(frozen=True)
class StopRule:
    """Round sizes and stopping thresholds (0 turns a rule off)."""

    start: int = 2
    step: int = 2
    max_n: int = 8
    window: int = 2
    threshold: float = 0.0
    give_up_after: int = 0
    give_up_share: float = 0.5
    confident: float = 0.0
    measure: str = "answer_prob"


@dataclass(frozen=True)
class Verdict:
    stop: str | None
    """Why sampling stops (None: go on)."""
    next_size: int = 0


def decide(samples: Sequence[Sample], rule: StopRule, max_n: int | None = None) -> Verdict:
    """Stop, or the size of the next round, after the chains in `samples` (chain order)."""
    limit = rule.max_n if max_n is None else min(rule.max_n, max_n)
    remaining = limit - len(samples)
    groups = tally(ballots_from(samples))
    if groups and remaining > 0 and cannot_be_overtaken(groups, remaining):
        return Verdict("the leader cannot be overtaken")
    if rule.confident and _all_sure(samples, rule.confident, rule.measure):
        return Verdict(f"every answer agrees with {rule.measure} >= {rule.confident:g}")
    if rule.window and _window_agrees(samples, rule.window):
        return Verdict(f"the last {rule.window} answers agree")
    if rule.threshold and groups:
        second = groups[1].count if len(groups) > 1 else 0
        p = beta_confidence(groups[0].count, second)
        if p >= rule.threshold:
            return Verdict(f"P(leader is the majority) = {p:.3f} >= {rule.threshold:g}")
    if (rule.give_up_after and len(samples) >= rule.give_up_after
            and leader_share(groups) < rule.give_up_share):
        return Verdict(f"answers stay scattered after {len(samples)} chains")
    if remaining <= 0:
        return Verdict("no chains left")
    return Verdict(None, min(rule.step, remaining))


def _window_agrees(samples: Sequence[Sample], window: int) -> bool:
    last = [s.answer for s in samples[-window:]]
    if len(last) < window or any(a is None for a in last):
        return False
    return all(equivalent(last[0], a) for a in last[1:])


def _all_sure(samples: Sequence[Sample], confident: float, measure: str) -> bool:
    """Whether all chains give one answer, each with `measure` at least `confident`."""
    if not samples or any(s.answer is None for s in samples):
        return False
    first = samples[0].answer
    return all(equivalent(first, s.answer) and s.stats.get(measure, 0.0) >= confident
               for s in samples)
