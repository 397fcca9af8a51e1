"""Effort levels: each names a strategy and its settings. The README documents this table.

Tuned on one sampling run of Qwen2.5-Coder-1.5B-Instruct on the first 100 gsm8k-dev problems
(`benchmarks/effort.py`, results in `benchmarks/results/effort-qwen1.5b.txt`: plain greedy
70.0%, low 72.0%, medium 73.9%, high 77.0%, auto 76.5%):

- `low` is one chain, greedy on instruct models (the family's `single_temperature`), so it
  is never below plain greedy decoding;
- `medium` adds one sampled chain to the greedy one and two more only when they disagree;
- `high` votes over the greedy chain and sampled ones, decoded together in one batch;
- `auto` samples in rounds of two after the greedy chain until two answers in a row agree.
  Giving up on scattered answers (`give_up_after`) saved tokens but lost 7 points in the
  replay (30 problems), and the `confident` stop on the greedy chain alone fell to about
  greedy's accuracy (`benchmarks/tune_auto.py`), so both stay options, off by default.
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


EFFORTS: dict[str, Effort] = {
    "low": Effort("cot", {"think_cap": 1024},
                  "one chain (greedy on instruct models), thinking capped at 1024 tokens"),
    "medium": Effort(
        "adaptive",
        {"greedy_first": True, "start": 2, "step": 2, "max_n": 4, "window": 2},
        "the greedy chain and one sample; two more only when they disagree",
    ),
    "high": Effort(
        "vote", {"greedy_first": True, "n": 6},
        "the greedy chain and 5 samples decoded together, majority vote",
    ),
    "auto": Effort(
        "adaptive",
        {"greedy_first": True, "start": 2, "step": 2, "max_n": 6, "window": 2},
        "greedy chain and one sample; 2 more at a time (up to 6) until two in a row agree",
    ),
}
DEFAULT_EFFORT = "medium"


def get_effort(name: str) -> Effort:
    try:
        return EFFORTS[name]
    except KeyError:
        raise InputError(f"unknown effort '{name}'", f"choose from {', '.join(EFFORTS)}") from None
