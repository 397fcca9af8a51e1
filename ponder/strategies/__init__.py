"""The strategy registry: one line per strategy module."""

from __future__ import annotations

import difflib
from typing import Any

from ponder.errors import InputError
from ponder.strategies import adaptive, beam, best_of_n, budget, confidence, cot, mcts, refine, vote
from ponder.strategies.base import StrategySpec

STRATEGIES: dict[str, StrategySpec[Any]] = {
    spec.name: spec
    for spec in (
        cot.SPEC,
        budget.SPEC,
        vote.SPEC,
        confidence.SPEC,
        adaptive.SPEC,
        best_of_n.SPEC,
        beam.SPEC,
        refine.SPEC,
        mcts.SPEC,
    )
}


def get_strategy(name: str) -> StrategySpec[Any]:
    try:
        return STRATEGIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
        hint = f"did you mean {close[0]}?" if close else f"choose from {', '.join(STRATEGIES)}"
        raise InputError(f"unknown strategy '{name}'", hint) from None
