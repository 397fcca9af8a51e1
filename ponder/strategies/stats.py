"""Per-chain statistics recorded with every sample, so that strategies can be replayed offline.

A finished chain is summarized by the numbers the strategies decide with:

- `mean_prob`: the geometric-mean probability of its sampled tokens (vote's tie-break);
- `lowest`, `tail`, `mean`: DeepConf's lowest sliding-window group confidence, the mean over
  the last tokens, and the mean over all tokens (only when top-k logprobs were requested);
- `answer_prob`: the mean probability of the tokens that spell the final answer, a cheap
  signal of how sure the model was of the answer itself (Kadavath et al.-style).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ponder.strategies.scoring import ChainConfidence, TopLogprobs

Piece = tuple[str, float | None]
"""A token's text and its logprob (None for text ponder injected)."""


def chain_stats(
    pieces: Sequence[Piece],
    tops: Sequence[TopLogprobs],
    answer: str | None,
    *,
    window: int = 64,
    tail: int = 256,
) -> dict[str, float]:
    """The statistics of one chain (keys absent when the engine gave no logprobs)."""
    stats: dict[str, float] = {}
    sampled = [lp for _, lp in pieces if lp is not None]
    if sampled:
        stats["mean_prob"] = round(math.exp(sum(sampled) / len(sampled)), 6)
    if tops:
        conf = ChainConfidence(window, tail)
        for top in tops:
            conf.push(top)
        for measure in ("lowest", "tail", "mean"):
            value = conf.value(measure)
            if value is not None:
                stats[measure] = round(value, 6)
    prob = answer_probability(pieces, answer)
    if prob is not None:
        stats["answer_prob"] = round(prob, 6)
    return stats


def answer_probability(pieces: Sequence[Piece], answer: str | None) -> float | None:
    """Mean probability of the sampled tokens overlapping the answer's last occurrence."""
    if not answer:
        return None
    text = "".join(t for t, _ in pieces)
    start = text.rfind(answer)
    if start < 0:
        return None
    end = start + len(answer)
    probs: list[float] = []
    pos = 0
    for piece, lp in pieces:
        nxt = pos + len(piece)
        if lp is not None and nxt > start and pos < end:
            probs.append(math.exp(lp))
        pos = nxt
        if pos >= end:
            break
    return sum(probs) / len(probs) if probs else None
