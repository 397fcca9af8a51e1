"""Confidence math: per-token confidence, sliding-window group confidence, P("yes").

Token confidence follows DeepConf (Fu et al., 2025): the mean negative logprob of the top-k
candidate tokens at a step. A peaked distribution (the model is sure) has one likely token
and k-1 very unlikely ones, so the mean is large; a flat one gives a small value. A chain's
*group* confidence is the mean token confidence over a sliding window; the chain is only
as good as its weakest stretch, so the lowest group confidence summarizes it (the tail and
the plain mean are offered too).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

TopLogprobs = Sequence[tuple[str, float]]
Measure = Literal["lowest", "tail", "mean"]
MEASURES: tuple[Measure, ...] = ("lowest", "tail", "mean")


def token_confidence(top: TopLogprobs) -> float:
    """DeepConf token confidence: -(1/k) * sum of the top-k logprobs (0 for no candidates)."""
    if not top:
        return 0.0
    return -sum(lp for _, lp in top) / len(top)


class SlidingMean:
    """Mean of the last `size` values, updated in O(1) per value."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be at least 1, got {size}")
        self.size = size
        self._values: deque[float] = deque()
        self._sum = 0.0

    def push(self, value: float) -> float:
        self._values.append(value)
        self._sum += value
        if len(self._values) > self.size:
            self._sum -= self._values.popleft()
        return self.mean

    @property
    def full(self) -> bool:
        return len(self._values) >= self.size

    @property
    def mean(self) -> float:
        return self._sum / len(self._values) if self._values else 0.0


@dataclass
class ChainConfidence:
    """Streaming confidence of one chain.

    `lowest` is the lowest mean over any full window of `window` tokens (for chains shorter
    than a window, the mean of all their tokens); `tail` the mean over the last `tail`
    tokens; `mean` the mean over every token.
    """

    window: int = 64
    tail_size: int = 256
    tokens: int = 0
    total: float = 0.0
    lowest: float | None = None
    _group: SlidingMean = field(init=False)
    _tail: SlidingMean = field(init=False)

    def __post_init__(self) -> None:
        self._group = SlidingMean(self.window)
        self._tail = SlidingMean(self.tail_size)

    def push(self, top: TopLogprobs) -> float:
        """Add one token; returns the current window (group) confidence."""
        conf = token_confidence(top)
        self.tokens += 1
        self.total += conf
        self._tail.push(conf)
        group = self._group.push(conf)
        if self._group.full:
            self.lowest = group if self.lowest is None else min(self.lowest, group)
        return group

    @property
    def window_full(self) -> bool:
        return self._group.full

    @property
    def group(self) -> float:
        return self._group.mean

    @property
    def tail(self) -> float:
        return self._tail.mean

    @property
    def mean(self) -> float:
        return self.total / self.tokens if self.tokens else 0.0

    def value(self, measure: Measure = "lowest") -> float | None:
        """The chain's confidence by `measure`; None before its first token."""
        if not self.tokens:
            return None
        if measure == "tail":
            return self.tail
        if measure == "mean":
            return self.mean
        return self.lowest if self.lowest is not None else self.mean


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default."""
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    pos = (len(data) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def keep_most_confident(confidences: Sequence[float], keep: float) -> list[int]:
    """Indices of the ceil(keep * n) most confident entries (ties: earlier first)."""
    count = max(1, math.ceil(keep * len(confidences))) if confidences else 0
    order = sorted(range(len(confidences)), key=lambda i: (-confidences[i], i))
    return sorted(order[:count])


YES_WORDS = frozenset({"yes", "correct", "true"})


def p_yes(top: TopLogprobs, words: frozenset[str] = YES_WORDS) -> float:
    """Probability mass of "yes"-like candidates (case and spaces ignored) among `top`."""
    mass = sum(math.exp(lp) for text, lp in top if text.strip().lower() in words)
    return min(1.0, mass)
