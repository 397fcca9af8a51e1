"""Effort levels: each names a strategy and its settings. The README documents this table."""

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
    "low": Effort("cot", {"think_cap": 256}, "one chain, thinking capped at 256 tokens"),
    "medium": Effort(
        "budget", {"think_cap": 1024},
        "budget forcing: thinking capped at 1024 tokens, then the answer is forced",
    ),
    "high": Effort(
        "confidence", {"n": 16, "warmup": 4, "think_cap": 2048},
        "16 chains, confidence-weighted vote; low-confidence chains stopped early",
    ),
    "auto": Effort(
        "adaptive", {"start": 3, "step": 2, "max_n": 12, "think_cap": 1024},
        "3 chains; 2 more at a time (up to 12) only while they disagree",
    ),
}
DEFAULT_EFFORT = "medium"


def get_effort(name: str) -> Effort:
    try:
        return EFFORTS[name]
    except KeyError:
        raise InputError(f"unknown effort '{name}'", f"choose from {', '.join(EFFORTS)}") from None
