"""Replaying strategies offline on chains sampled once (`ponder eval --samples N`).

One sampling run draws N chains per problem and records each chain's answer, tokens and
confidence statistics. Every voting or stopping strategy is then a function of those
chains, so its accuracy and token cost at k chains can be estimated without running the
model again: draw many random subsets (or orders) of the N chains per problem, apply the
strategy's own decision code (the same functions the live strategies call), and average
(huggingface/search-and-learn draws its curves this way). The first chain of a run may be
the greedy one (`greedy_first`); strategies that start from it keep it first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ponder.answers import equivalent
from ponder.events import Sample
from ponder.strategies.aggregate import Group, ballots_from, tally
from ponder.strategies.scoring import keep_most_confident
from ponder.strategies.stopping import StopRule, decide

KS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Chains:
    """One problem's recorded chains (chain 0 greedy when `greedy` is true)."""

    id: str
    reference: str
    samples: tuple[Sample, ...]
    greedy: bool = False

    @property
    def sampled(self) -> tuple[Sample, ...]:
        return self.samples[1:] if self.greedy else self.samples


def chains_from_records(records: Iterable[Mapping[str, Any]]) -> list[Chains]:
    """The problems of a sampling run that have a reference and at least one chain."""
    out = []
    for r in records:
        raw = r.get("samples") or []
        if r.get("reference") is None or not raw or r.get("status") != "ok":
            continue
        samples = tuple(_sample(s) for s in raw)
        greedy = bool((r.get("settings") or {}).get("greedy_first"))
        out.append(Chains(str(r["id"]), str(r["reference"]), samples, greedy))
    return out


def pooled_samples(runs: Iterable[Iterable[Mapping[str, Any]]]) -> dict[str, list[Sample]]:
    """Each problem's sampled chains from the `vote` records of several live runs, to join
    a sampling run's pool.

    Runs of the same settings seed chain k alike (seed + k), so a larger run repeats the
    smaller one's chains: a chain number already taken for a problem from an earlier run is
    skipped. The greedy chain (chain 0 of a `greedy_first` run) is never pooled.
    """
    pool: dict[str, list[Sample]] = {}
    for records in runs:
        for problem in chains_from_records(r for r in records if r.get("strategy") == "vote"):
            taken = pool.setdefault(problem.id, [])
            seen = {s.chain for s in taken}
            taken += [s for s in problem.sampled if s.chain not in seen]
    return pool


def _sample(raw: Mapping[str, Any]) -> Sample:
    stats = dict(raw.get("stats") or {})
    return Sample(int(raw["chain"]), raw.get("answer"), "", "", int(raw.get("tokens", 0)),
                  raw.get("finish_reason", "stop"), stats.get("mean_prob", raw.get("confidence")),
                  stats=stats, thinking_tokens=int(raw.get("thinking_tokens", 0)))


Picked = tuple[str | None, int]
"""A policy's answer and the tokens it spent."""
Policy = Callable[[Sequence[Sample]], Picked]


def _renumber(samples: Sequence[Sample]) -> list[Sample]:
    """Chains as a run would have numbered them (their order is the draw's order)."""
    return [replace(s, chain=i) for i, s in enumerate(samples)]


def _winner(groups: Sequence[Group]) -> str | None:
    return groups[0].best().answer if groups else None


def vote(samples: Sequence[Sample]) -> Picked:
    """Self-consistency, with `vote`'s tie-breaks."""
    ordered = _renumber(samples)
    return _winner(tally(ballots_from(ordered))), sum(s.tokens for s in samples)


def weighted(keep: float, measure: str = "lowest") -> Policy:
    """DeepConf: keep the `keep` most confident chains, vote weighted by confidence."""

    def policy(samples: Sequence[Sample]) -> Picked:
        ordered = [replace(s, confidence=s.stats.get(measure, 0.0))
                   for s in _renumber(samples)]
        ballots = ballots_from(ordered, "confidence")
        kept = keep_most_confident([b.weight for b in ballots], keep)
        groups = tally([ballots[i] for i in kept])
        return _winner(groups), sum(s.tokens for s in samples)

    return policy


def most_confident(measure: str = "lowest") -> Policy:
    """Best-of-k: the single chain with the highest confidence."""

    def policy(samples: Sequence[Sample]) -> Picked:
        answered = [s for s in samples if s.answer is not None]
        best = max(answered, key=lambda s: s.stats.get(measure, 0.0), default=None)
        return (best.answer if best else None), sum(s.tokens for s in samples)

    return policy


def stopping(rule: StopRule) -> Policy:
    """A stopping strategy replayed in order: rounds of chains until `decide` stops."""

    def policy(samples: Sequence[Sample]) -> Picked:
        ordered = _renumber(samples)
        used, size = 0, min(rule.start, len(ordered))
        while size > 0:
            used += size
            verdict = decide(ordered[:used], rule, len(ordered))
            if verdict.stop:
                break
            size = verdict.next_size
        return _winner(tally(ballots_from(ordered[:used]))), sum(s.tokens
                                                                for s in ordered[:used])

    return policy


@dataclass
class Point:
    """A strategy's estimated accuracy and mean tokens at k chains, over `problems`."""

    strategy: str
    k: int
    accuracy: float
    tokens: float
    problems: int

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "k": self.k, "accuracy": round(self.accuracy, 4),
                "tokens": round(self.tokens, 1), "problems": self.problems}


@dataclass
class Replay:
    """Subsampling estimates for a set of problems; `draws` random draws per problem."""

    problems: Sequence[Chains]
    draws: int = 200
    seed: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def curve(self, name: str, policy: Policy, k: int, *, with_greedy: bool = False) -> Point:
        """`policy` on k chains: random k-subsets of the sampled chains in random order,
        led by the greedy chain when `with_greedy` (then k counts it). Accuracy and tokens
        are averaged over the draws of each problem, then over problems."""
        usable = [p for p in self.problems if not with_greedy or p.greedy]
        take = k - 1 if with_greedy else k
        acc = tokens = 0.0
        for p in usable:
            pool = list(p.sampled)
            if not 0 <= take <= len(pool):
                raise ValueError(f"problem {p.id}: {k} chains asked, {len(pool)} recorded")
            draws = 1 if take == 0 else self.draws
            right = used = 0
            for _ in range(draws):
                chosen = self._rng.sample(pool, take)
                answer, spent = policy([p.samples[0], *chosen] if with_greedy else chosen)
                right += equivalent(answer, p.reference)
                used += spent
            acc += right / draws
            tokens += used / draws
        n = len(usable)
        return Point(name, k, acc / n if n else 0.0, tokens / n if n else 0.0, n)


def first(samples: Sequence[Sample]) -> Picked:
    """The first chain alone (greedy when it leads the draw)."""
    return samples[0].answer, samples[0].tokens


@dataclass(frozen=True)
class Curve:
    """A named strategy replayed at each k it applies to."""

    name: str
    policy: Callable[[int], Policy]
    min_k: int = 2
    with_greedy: bool = False
    max_k: int = 256


def _fixed(policy: Policy) -> Callable[[int], Policy]:
    return lambda _k: policy


def _rule(**fields: Any) -> Callable[[int], Policy]:
    return lambda k: stopping(StopRule(max_n=k, **fields))


CURVES: tuple[Curve, ...] = (
    Curve("first", _fixed(first), min_k=1, max_k=1),
    Curve("vote", _fixed(vote)),
    Curve("vote+greedy", _fixed(vote), with_greedy=True),
    Curve("deepconf-90", _fixed(weighted(0.9))),
    Curve("deepconf-10", _fixed(weighted(0.1))),
    Curve("best-conf", _fixed(most_confident())),
    Curve("adaptive", _rule(start=3, step=2, window=0, threshold=0.9)),
    Curve("esc+greedy", _rule(start=2, step=2, window=2), with_greedy=True),
)


def standard_points(problems: Sequence[Chains], *, draws: int = 200, seed: int = 0,
                    ks: Sequence[int] = KS) -> list[Point]:
    """Every curve of CURVES at every k the recorded chains allow (greedy first, if any)."""
    replay = Replay(problems, draws, seed)
    sampled = min((len(p.sampled) for p in problems), default=0)
    has_greedy = bool(problems) and all(p.greedy for p in problems)
    points = []
    if has_greedy:
        points.append(replay.curve("greedy", first, 1, with_greedy=True))
    for curve in CURVES:
        if curve.with_greedy and not has_greedy:
            continue
        room = sampled + (1 if curve.with_greedy else 0)
        for k in sorted({*ks, room}):
            if curve.min_k <= k <= min(room, curve.max_k):
                points.append(replay.curve(curve.name, curve.policy(k), k,
                                           with_greedy=curve.with_greedy))
    return points


@dataclass(frozen=True)
class Replayable:
    """How a live plan is replayed: its policy, its chains, and whether the greedy one leads."""

    policy: Policy
    k: int
    with_greedy: bool


def replayable(strategy: str, options: Any) -> Replayable:
    """The replay of a `cot`, `vote` or `adaptive` plan (ValueError for other strategies).

    `cot` is replayed as the recorded greedy chain: it stands for one chain at the family's
    single-chain temperature, which is greedy for the instruct models this is tuned on.
    """
    greedy = bool(getattr(options, "greedy_first", False))
    if strategy == "cot":
        return Replayable(first, 1, True)
    if strategy == "vote":
        return Replayable(vote, int(options.n), greedy)
    if strategy == "adaptive":
        return Replayable(stopping(options.rule()), int(options.max_n), greedy)
    raise ValueError(f"strategy {strategy} cannot be replayed from recorded chains")
