"""`ponder strategies`: the strategies, their options (for -o key=value) and the effort table."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ponder.cli import _options as opt
from ponder.strategies import STRATEGIES
from ponder.strategies.effort import DEFAULT_EFFORT, EFFORTS
from ponder.strategies.options import ChainOptions


def _options_of(cls: type[Any]) -> dict[str, Any]:
    """A strategy's options and defaults: its own first, then those all chains share."""
    shared = {f.name for f in dataclasses.fields(ChainOptions)}
    fields = sorted(dataclasses.fields(cls), key=lambda f: f.name in shared)
    return {f.name: f.default for f in fields}


def strategies(json_out: opt.JsonOpt = False) -> None:
    """List the strategies with their options, and what each --effort level runs."""
    if json_out:
        data = {
            "strategies": {n: {"help": s.help, "options": _options_of(s.options)}
                           for n, s in STRATEGIES.items()},
            "efforts": {n: {"strategy": e.strategy, "options": e.options,
                            "description": e.description, "default": n == DEFAULT_EFFORT}
                        for n, e in EFFORTS.items()},
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    out = Console()
    table = Table(title="Strategies (--strategy NAME, -o key=value)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("what it does")
    table.add_column("options and defaults")
    for name, spec in STRATEGIES.items():
        options = ", ".join(f"{k}={v}" for k, v in _options_of(spec.options).items())
        table.add_row(name, spec.help, options)
    out.print(table)
    efforts = Table(title="Effort levels (--effort)", title_justify="left")
    for col in ("effort", "strategy", "settings", "meaning"):
        efforts.add_column(col)
    for name, effort in EFFORTS.items():
        label = f"{name} (default)" if name == DEFAULT_EFFORT else name
        settings = ", ".join(f"{k}={v}" for k, v in effort.options.items())
        efforts.add_row(label, effort.strategy, settings, effort.description)
    out.print(efforts)
