"""The effort table: each level picks a strategy and settings; overrides win."""

from __future__ import annotations

import pytest

from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError
from ponder.runner import make_plan
from ponder.strategies.effort import DEFAULT_EFFORT, EFFORTS
from tests.conftest import run_strategy, think


@pytest.mark.parametrize(
    ("effort", "strategy", "settings"),
    [
        ("low", "cot", {"think_cap": 256}),
        ("medium", "budget", {"think_cap": 1024}),
        ("high", "confidence", {"n": 16, "warmup": 4, "think_cap": 2048}),
        ("auto", "adaptive", {"start": 3, "step": 2, "max_n": 12, "think_cap": 1024}),
    ],
)
def test_each_effort_chooses_a_strategy_and_settings(
    effort: str, strategy: str, settings: dict[str, int]
) -> None:
    plan = make_plan(effort, None)
    assert plan.spec.name == strategy
    assert plan.effort == effort
    for key, value in settings.items():
        assert plan.settings()[key] == value


def test_default_effort_is_medium() -> None:
    assert DEFAULT_EFFORT == "medium"
    assert make_plan(None, None).spec.name == "budget"


def test_every_effort_has_a_description() -> None:
    assert all(e.description for e in EFFORTS.values())


def test_option_overrides_win_over_the_effort() -> None:
    plan = make_plan("high", None, {"n": "4", "window": "32"})
    assert plan.settings()["n"] == 4 and plan.settings()["window"] == 32
    assert plan.settings()["warmup"] == 4


def test_strategy_replaces_the_effort_choice_and_its_settings() -> None:
    plan = make_plan("high", "vote", {"n": "5"})
    assert plan.spec.name == "vote"
    assert plan.settings() == {"n": 5, "think_cap": 1024, "answer_reserve": 64}


def test_an_override_the_chosen_strategy_lacks_is_an_error() -> None:
    with pytest.raises(InputError, match="unknown option 'window' for strategy adaptive"):
        make_plan("auto", None, {"window": "3"})


def test_invalid_override_is_an_error() -> None:
    with pytest.raises(InputError, match="warmup must be between 1 and n"):
        make_plan("high", None, {"n": "2"})


def test_auto_samples_more_only_when_chains_disagree() -> None:
    agree = ScriptedEngine([think(4)] * 12)
    result, _ = run_strategy(agree, "adaptive", **make_plan("auto", None).settings())
    assert len(result.samples) == 3
    disagree = ScriptedEngine([think(a) for a in [4, 5, 6, 4, 4, 4, 4, 4, 4, 4, 4, 4]])
    result, _ = run_strategy(disagree, "adaptive", **make_plan("auto", None).settings())
    assert len(result.samples) > 3
    assert result.answer == "4"
