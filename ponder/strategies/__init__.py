"""The strategy registry: one line per strategy module.

A strategy's module is imported when the strategy is asked for by name (`ponder ask -e low`
answered from the log imports `cot` alone); `STRATEGIES` imports them all.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from ponder.errors import InputError
from ponder.strategies.base import StrategySpec

MODULES: dict[str, str] = {
    "cot": "cot",
    "budget": "budget",
    "vote": "vote",
    "confidence": "confidence",
    "adaptive": "adaptive",
    "best-of-n": "best_of_n",
    "beam": "beam",
    "refine": "refine",
    "mcts": "mcts",
}
"""Each strategy's name and the module whose `SPEC` it is, in the order they are listed."""


def get_strategy(name: str) -> StrategySpec[Any]:
    if name not in MODULES:
        close = difflib.get_close_matches(name, list(MODULES), n=1)
        hint = f"did you mean {close[0]}?" if close else f"choose from {', '.join(MODULES)}"
        raise InputError(f"unknown strategy '{name}'", hint)
    spec: StrategySpec[Any] = importlib.import_module(f"ponder.strategies.{MODULES[name]}").SPEC
    return spec


def __getattr__(name: str) -> Any:
    if name == "STRATEGIES":  # every strategy, by name (imports them all)
        return {strategy: get_strategy(strategy) for strategy in MODULES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
