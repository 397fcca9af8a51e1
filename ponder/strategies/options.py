"""Options every chain-of-thought strategy shares: a base for their options classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ponder.strategies.base import require
from ponder.strategies.chains import ChainConfig

MAX_CHAINS = 256
"""The most chains a strategy may run for one question."""


@dataclass
class ChainOptions:
    """The options every chain-of-thought strategy shares (a base for their options):
    the thinking cap of each chain and the tokens kept back so that a chain cut short
    can still state an answer."""

    think_cap: int | None = 1024
    answer_reserve: int = 64

    @property
    def max_chains(self) -> int:
        """The most chains the strategy runs at once for one question: one, unless a
        strategy's options say more (see :class:`ponder.strategies.base.StrategyOptions`)."""
        return 1

    def validate(self) -> None:
        require(self.think_cap is None or self.think_cap >= 1, "think_cap must be at least 1")
        require(self.answer_reserve >= 1, "answer_reserve must be at least 1")

    def chain_config(self, **changes: Any) -> ChainConfig:
        """The ChainConfig of these options, with `changes` (a label, answer_tokens, ...)."""
        return ChainConfig(think_cap=self.think_cap, answer_reserve=self.answer_reserve,
                           **changes)
