"""Drawing the offline replay of a sampling run (`ponder eval --samples N`, then --report)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table

from ponder.cli.tables import interval_text
from ponder.evaluation import config_label, latest, wilson
from ponder.plot import Point as PlotPoint
from ponder.replay import Point, chains_from_records, standard_points

SAMPLES_PREFIX = "samples@"


def replay_points(records: Sequence[Mapping[str, Any]]) -> list[Point]:
    """Replayed curves of the sampling runs among `records` (none when there are none)."""
    sampled = [r for r in latest(records) if config_label(r).startswith(SAMPLES_PREFIX)]
    problems = chains_from_records(sampled)
    return standard_points(problems) if problems else []


def interval(p: Point) -> tuple[float, float]:
    """A 95% Wilson interval on the estimate, counting it over the problems."""
    return wilson(round(p.accuracy * p.problems), p.problems)


def replay_table(points: Sequence[Point], *, plain: bool = False) -> Table:
    """Accuracy (95% CI) and mean tokens per question of each strategy at each k."""
    table = Table(title=f"Strategies replayed on the recorded chains "
                  f"({points[0].problems} problems)", box=box.ASCII if plain else box.ROUNDED)
    for name, justify in (("strategy", "left"), ("k", "right"), ("accuracy", "right"),
                          ("95% CI", "right"), ("tokens/question", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in points:
        table.add_row(p.strategy, str(p.k), f"{100 * p.accuracy:.1f}%",
                      interval_text(interval(p)), f"{p.tokens:,.0f}")
    return table


def replay_point(p: Point) -> PlotPoint:
    lo, hi = interval(p)
    return PlotPoint(f"{p.strategy}@{p.k}", p.tokens, p.accuracy, lo, hi)
