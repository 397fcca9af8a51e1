"""`confidence`: DeepConf-style confidence-weighted voting with online early stop
(Fu et al., 2025, "Deep Think with Confidence").

Every token's confidence is the mean negative logprob of its top-k candidates; a chain's
group confidence is the mean over a sliding window of `window` tokens. First `warmup`
chains run to the end; the threshold is the (1 - keep) percentile of their lowest group
confidences. Then the remaining chains run together; one whose window confidence falls
below the threshold is aborted (the engine gives its slot to the next waiting chain), and
once the leading answer holds `consensus` of the confidence-weighted vote the rest are
stopped too. Finished chains vote with their confidence as weight, after keeping only
the `keep` most confident share of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ponder.events import (
    ChainDone,
    FinishReason,
    Sample,
    StrategyEvent,
    StrategyNote,
    TokenEvent,
    VoteUpdate,
)
from ponder.strategies.aggregate import (
    Group,
    LiveTally,
    ballots_from,
    leader_share,
    tally,
    vote_result,
    weights,
)
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import ChainConfig, ChainState, run_chains
from ponder.strategies.multistep import After, emit, tap
from ponder.strategies.options import MAX_CHAINS, ChainOptions
from ponder.strategies.scoring import (
    MEASURES,
    ChainConfidence,
    Measure,
    keep_most_confident,
    percentile,
)

EARLY_STOP: FinishReason = "abort"


@dataclass
class ConfidenceOptions(ChainOptions):
    n: int = 16
    warmup: int = 4
    window: int = 64
    top_logprobs: int = 5
    keep: float = 0.9
    measure: str = "lowest"
    tail: int = 256
    consensus: float = 0.95
    early_stop: bool = True

    @property
    def max_chains(self) -> int:
        """Up to `n` chains at once."""
        return self.n

    def validate(self) -> None:
        require(1 <= self.n <= MAX_CHAINS, f"n must be between 1 and {MAX_CHAINS}")
        require(1 <= self.warmup <= self.n, "warmup must be between 1 and n")
        require(self.window >= 1, "window must be at least 1 token")
        require(self.tail >= 1, "tail must be at least 1 token")
        require(2 <= self.top_logprobs <= 100, "top_logprobs must be between 2 and 100")
        require(0.0 < self.keep <= 1.0, "keep must be in (0, 1]: the share of chains kept")
        require(self.measure in MEASURES, f"measure must be one of {', '.join(MEASURES)}")
        require(0.5 < self.consensus <= 1.0, "consensus must be in (0.5, 1]")
        super().validate()


@dataclass
class Online:
    """What the token hook needs to know: the threshold, and whether to stop everything."""

    opts: ConfidenceOptions
    threshold: float | None = None
    warm: bool = False
    stop_all: bool = False
    trackers: dict[int, ChainConfidence] = field(default_factory=dict)

    def on_token(self, st: ChainState, event: TokenEvent) -> FinishReason | None:
        if event.top_logprobs is None:
            return None
        tracker = self.trackers.get(st.chain)
        if tracker is None:
            tracker = self.trackers[st.chain] = ChainConfidence(self.opts.window,
                                                                self.opts.tail)
        group = tracker.push(event.top_logprobs)
        st.confidence = tracker.value(self._measure)
        if self.stop_all:
            return EARLY_STOP
        if (self.opts.early_stop and self.threshold is not None and tracker.window_full
                and group < self.threshold):
            return EARLY_STOP
        return None

    @property
    def _measure(self) -> Measure:
        return self.opts.measure  # type: ignore[return-value]

    def lowest(self, chain: int) -> float | None:
        tracker = self.trackers.get(chain)
        return tracker.value("lowest") if tracker else None


def run(task: Task, opts: ConfidenceOptions) -> StrategyRun:
    config = ChainConfig(think_cap=opts.think_cap, answer_reserve=opts.answer_reserve)
    sampling = task.sampling.with_(top_logprobs=opts.top_logprobs)
    online = Online(opts)
    live = LiveTally(weighted=True)
    after = _after(online, live)
    samples = yield from tap(run_chains(task, opts.warmup, config, sampling=sampling,
                                        on_token=online.on_token), after)
    online.threshold = warmup_threshold(online, samples, opts.keep)
    online.warm = True
    rest = opts.n - opts.warmup
    if rest and _agreed(live, opts):
        yield from emit(task, StrategyNote(f"warm-up chains agree; {rest} chains saved"))
        rest = 0
    if rest and online.threshold is not None:
        yield from emit(task, StrategyNote(f"early-stop threshold {online.threshold:.3f}"))
    if rest:
        samples += yield from tap(
            run_chains(task, rest, config, sampling=sampling, first_chain=opts.warmup,
                       on_token=online.on_token), after)
    groups = final_groups(samples, opts.keep)
    return vote_result(task, samples, groups, chains=len(samples),
                       threshold=online.threshold,
                       stopped_early=sum(s.finish_reason == EARLY_STOP for s in samples))


def _after(online: Online, live: LiveTally) -> After:
    """After each finished chain: the weighted tally, a note on early stops, and the
    consensus check that stops the remaining chains."""

    def after(event: StrategyEvent) -> Iterable[StrategyEvent]:
        if not isinstance(event, ChainDone):
            return
        if event.reason == EARLY_STOP and not online.stop_all:
            low = online.lowest(event.chain)
            yield StrategyNote(f"chain {event.chain + 1} stopped early: confidence "
                               f"{low or 0.0:.3f} < {online.threshold or 0.0:.3f}")
        yield VoteUpdate(weights(live.add(event)))
        if online.warm and not online.stop_all and _agreed(live, online.opts):
            online.stop_all = True
            yield StrategyNote(f"consensus {leader_share(live.groups):.0%}; stopping the rest")

    return after


def _agreed(live: LiveTally, opts: ConfidenceOptions) -> bool:
    """DeepConf's adaptive stop: enough votes and the leader's weighted share >= consensus."""
    return (opts.consensus < 1.0 and live.votes >= opts.warmup
            and leader_share(live.groups) >= opts.consensus)


def warmup_threshold(online: Online, samples: list[Sample], keep: float) -> float | None:
    """The (1 - keep) percentile of the warm-up chains' lowest group confidences."""
    values = [v for s in samples if s.finish_reason != "interrupted"
              for v in [online.lowest(s.chain)] if v is not None]
    return percentile(values, 100.0 * (1.0 - keep)) if values else None


def final_groups(samples: list[Sample], keep: float) -> list[Group]:
    """Confidence-weighted vote of the `keep` most confident finished chains.

    Early-stopped chains do not vote; if no other chain states an answer, every chain
    with an answer does (the answer comes from what there is).
    """
    ballots = ballots_from(samples, "confidence", exclude=frozenset({EARLY_STOP}))
    if not ballots:
        ballots = ballots_from(samples, "confidence")
    if not any(b.weight > 0 for b in ballots):  # no logprobs from this engine: plain vote
        ballots = [replace(b, weight=1.0) for b in ballots]
    kept = keep_most_confident([b.weight for b in ballots], keep)
    return tally([ballots[i] for i in kept])


SPEC = StrategySpec(
    "confidence",
    "DeepConf: confidence-weighted vote, low-confidence chains stopped early",
    ConfidenceOptions,
    run,
)
