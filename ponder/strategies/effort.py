"""Effort levels: each names a strategy and its settings. The README documents this table.

Tuned on one sampling run of Qwen2.5-Coder-1.5B-Instruct on the first 100 gsm8k-dev problems
(`benchmarks/effort.py`, results in `benchmarks/results/effort-qwen1.5b.txt`; the stopping
rules by `benchmarks/tune_auto.py`, chosen on half of the problems and checked on the other):

- `low` is one chain, greedy on instruct models (the family's `single_temperature`), so it
  is never below plain greedy decoding;
- every other level starts from that same chain (`greedy_first`, asked as `low` asks it:
  `Task.lead`), so asking again with more effort builds on it from the run log;
- `medium` stops after the greedy chain when it is sure (the geometric-mean probability of
  its tokens at least 0.95), else samples one chain at a time, up to 3, until two in a row agree;
- `auto` has the same stop after the greedy chain, but when it is unsure samples 4 chains
  together (a full batch rather than rounds of one), then one more, up to 6, until the last
  two agree;
- `high` votes over the greedy chain and 9 samples decoded together: over 6 chains it was
  greedy + 8.0 points in the pooled replay (+5 live), over 10 it is +9.8 (+6.6 live on 76
  problems), in one to two minutes per question here.
Giving up on scattered answers (`give_up_after`) saved tokens but lost 7 points in the
replay (30 problems), so it stays an option, off by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ponder.errors import InputError


@dataclass(frozen=True)
class Effort:
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


SURE = {"greedy_first": True, "start": 1, "step": 1, "window": 2, "confident": 0.95,
        "confidence_measure": "mean_prob"}
"""The stop `medium` and `auto` share: the greedy chain settles alone when it is sure."""

EFFORTS: dict[str, Effort] = {
    "low": Effort("cot", {"think_cap": 1024},
                  "one chain (greedy on instruct models), thinking capped at 1024 tokens"),
    "medium": Effort(
        "adaptive", {**SURE, "max_n": 3},
        "the greedy chain; when it is unsure, samples one at a time (up to 3) until two agree",
    ),
    "high": Effort(
        "vote", {"greedy_first": True, "n": 10},
        "the greedy chain, then 9 samples decoded together, majority vote",
    ),
    "auto": Effort(
        "adaptive", {**SURE, "step": 4, "max_n": 6},
        "the greedy chain; when it is unsure, 4 samples together, then 1 more, until two agree",
    ),
}
DEFAULT_EFFORT = "medium"


def get_effort(name: str) -> Effort:
    try:
        return EFFORTS[name]
    except KeyError:
        raise InputError(f"unknown effort '{name}'", f"choose from {', '.join(EFFORTS)}") from None
