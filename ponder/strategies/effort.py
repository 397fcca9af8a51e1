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
    "medium": Effort("cot", {"think_cap": 1024}, "one chain, thinking capped at 1024 tokens"),
    "high": Effort("cot", {"think_cap": 4096}, "one chain, thinking capped at 4096 tokens"),
}
DEFAULT_EFFORT = "medium"


def get_effort(name: str) -> Effort:
    try:
        return EFFORTS[name]
    except KeyError:
        raise InputError(f"unknown effort '{name}'", f"choose from {', '.join(EFFORTS)}") from None
