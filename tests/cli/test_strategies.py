from __future__ import annotations

import json

from typer.testing import CliRunner

from ponder.cli import app
from ponder.strategies import STRATEGIES
from ponder.strategies.effort import EFFORTS

runner = CliRunner()


def test_strategies_lists_every_strategy_and_effort() -> None:
    result = runner.invoke(app, ["strategies"])
    assert result.exit_code == 0
    for name in STRATEGIES:
        assert name in result.stdout
    for name in EFFORTS:
        assert name in result.stdout
    assert "think_cap=" in result.stdout


def test_strategies_json_matches_the_registry() -> None:
    data = json.loads(runner.invoke(app, ["strategies", "--json"]).stdout)
    assert set(data["strategies"]) == set(STRATEGIES)
    assert data["strategies"]["vote"]["options"]["n"] >= 2
    assert data["efforts"]["low"]["strategy"] == EFFORTS["low"].strategy
    assert sum(e["default"] for e in data["efforts"].values()) == 1
